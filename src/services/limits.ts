// The broker's limits, and how much of them the caller uses: open uploads and bytes reserved today.
import type { Caller } from '../auth.js';
import type { Limits } from '../client/wire.js';
import type { AppContext } from '../context.js';
import { senderUsage } from '../db/uploads.js';

export async function describeLimits(app: AppContext, caller: Caller): Promise<Limits> {
  const c = app.config;
  const usage = await senderUsage(app.sql, caller.did, app.clock.now());
  const quota = c.maxBytesPerDay > 0 ? c.maxBytesPerDay : null;
  return {
    max_message_bytes: c.maxMessageBytes,
    multipart_threshold_bytes: c.multipartThresholdBytes,
    part_size_bytes: c.partSizeBytes,
    max_recipients: c.maxRecipients,
    upload_url_ttl_seconds: c.uploadUrlTtlSeconds,
    download_url_ttl_seconds: c.downloadUrlTtlSeconds,
    commit_window_seconds: c.commitWindowSeconds,
    max_pending_uploads: c.maxPendingUploads,
    pending_uploads: usage.pendingUploads,
    max_bytes_per_day: quota,
    bytes_reserved: quota === null ? null : usage.bytesReserved,
    bytes_available: quota === null ? null : Math.max(0, quota - usage.bytesReserved),
  };
}
