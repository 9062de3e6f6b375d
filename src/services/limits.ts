// The broker's limits, and how many uploads the caller holds open against them.
import type { Caller } from '../auth.js';
import type { Limits } from '../client/wire.js';
import type { AppContext } from '../context.js';
import { countPendingUploads } from '../db/uploads.js';

export async function describeLimits(app: AppContext, caller: Caller): Promise<Limits> {
  const c = app.config;
  return {
    max_message_bytes: c.maxMessageBytes,
    multipart_threshold_bytes: c.multipartThresholdBytes,
    part_size_bytes: c.partSizeBytes,
    max_recipients: c.maxRecipients,
    upload_url_ttl_seconds: c.uploadUrlTtlSeconds,
    download_url_ttl_seconds: c.downloadUrlTtlSeconds,
    commit_window_seconds: c.commitWindowSeconds,
    max_pending_uploads: c.maxPendingUploads,
    pending_uploads: await countPendingUploads(app.sql, caller.did, app.clock.now()),
  };
}
