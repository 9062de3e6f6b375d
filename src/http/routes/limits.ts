import { countPendingUploads } from '../../db/uploads.js';
import { defineRoute, type RouteDef } from '../route.js';

const limitsSchema = {
  type: 'object',
  properties: Object.fromEntries(
    [
      'max_message_bytes',
      'multipart_threshold_bytes',
      'part_size_bytes',
      'max_recipients',
      'upload_url_ttl_seconds',
      'download_url_ttl_seconds',
      'commit_window_seconds',
      'max_pending_uploads',
      'pending_uploads',
    ].map((k) => [k, { type: 'integer' }]),
  ),
};

export const limitsRoutes = (): RouteDef[] => [
  defineRoute({
    method: 'GET',
    path: '/api/v1/limits',
    summary: "The broker's limits and the caller's pending upload count",
    tag: 'limits',
    auth: true,
    responses: { 200: { description: 'Limits', schema: limitsSchema } },
    handle: async ({ app, caller }) => {
      const c = app.config;
      return {
        status: 200,
        body: {
          max_message_bytes: c.maxMessageBytes,
          multipart_threshold_bytes: c.multipartThresholdBytes,
          part_size_bytes: c.partSizeBytes,
          max_recipients: c.maxRecipients,
          upload_url_ttl_seconds: c.uploadUrlTtlSeconds,
          download_url_ttl_seconds: c.downloadUrlTtlSeconds,
          commit_window_seconds: c.commitWindowSeconds,
          max_pending_uploads: c.maxPendingUploads,
          pending_uploads: await countPendingUploads(app.sql, caller.did, app.clock.now()),
        },
      };
    },
  }),
];
