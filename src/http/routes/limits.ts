import { describeLimits } from '../../services/limits.js';
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
    handle: async ({ app, caller }) => ({ status: 200, body: await describeLimits(app, caller) }),
  }),
];
