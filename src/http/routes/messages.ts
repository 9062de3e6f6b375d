import type { Config } from '../../config.js';
import { messageIdParams } from '../../schemas/common.js';
import { ackManyBody, ackManyResponse, commitBody, commitResponse, messageResponse, pendingQuery, pendingResponse } from '../../schemas/messages.js';
import { ackMany, ackOne, blobUrl, commitMessage, describeMessage, listPending } from '../../services/messages.js';
import { toAppError } from '../error-handler.js';
import { commitBodyBytes } from '../body.js';
import { defineRoute, type RouteDef } from '../route.js';

export const messageRoutes = (config: Readonly<Config>): RouteDef[] => [
  defineRoute({
    method: 'POST',
    path: '/api/v1/messages',
    summary: 'Commit an uploaded ciphertext: verify the object, then write the message and recipient rows at once',
    tag: 'messages',
    auth: true,
    body: commitBody(config.maxRecipients),
    errors: { 403: 'Forbidden: not the uploader nor a service, or a recipient is not a member', 404: 'NotFound: no such upload visible to the caller', 409: 'UploadIncomplete (the object is not in the bucket yet: retry after the PUT) or Conflict (a replay with other recipients or metadata)', 410: 'UploadExpired: past the commit deadline', 422: 'UploadMismatch: the object differs from the declaration; it was deleted' },
    maxBodyBytes: commitBodyBytes(config.maxRecipients),
    responses: {
      201: { description: 'Committed', schema: commitResponse },
      200: { description: 'Already committed with the same recipients and metadata (replay)', schema: commitResponse },
    },
    handle: async ({ app, caller, body }) => {
      try {
        const r = await commitMessage(app, caller, body);
        app.metrics.commits.inc({ outcome: r.created ? 'committed' : 'replayed' });
        return { status: r.created ? 201 : 200, body: r.body };
      } catch (err) {
        app.metrics.commits.inc({ outcome: toAppError(err)?.code ?? 'InternalError' });
        throw err;
      }
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/api/v1/messages/pending',
    summary: "The caller's undelivered messages, oldest first",
    tag: 'messages',
    auth: true,
    query: pendingQuery,
    responses: { 200: { description: 'A page', schema: pendingResponse } },
    handle: async ({ app, caller, query }) => ({ status: 200, body: await listPending(app, caller, query) }),
  }),
  defineRoute({
    method: 'POST',
    path: '/api/v1/messages/ack',
    summary: 'Acknowledge delivery of many messages',
    tag: 'messages',
    auth: true,
    body: ackManyBody,
    maxBodyBytes: 32 * 1024, // 500 ids
    responses: { 200: { description: 'Which were acknowledged', schema: ackManyResponse } },
    handle: async ({ app, caller, body }) => ({ status: 200, body: await ackMany(app, caller, body.message_ids) }),
  }),
  defineRoute({
    method: 'GET',
    path: '/api/v1/messages/:message_id',
    summary: 'Message metadata and a presigned download URL (sender or recipient)',
    tag: 'messages',
    auth: true,
    params: messageIdParams,
    responses: { 200: { description: 'The message', schema: messageResponse } },
    handle: async ({ app, caller, params }) => ({ status: 200, body: await describeMessage(app, caller, params.message_id) }),
  }),
  defineRoute({
    method: 'GET',
    path: '/api/v1/messages/:message_id/blob',
    summary: 'Redirect (302) to a presigned download URL',
    tag: 'messages',
    auth: true,
    params: messageIdParams,
    responses: { 302: { description: 'Location: the presigned GET URL' } },
    handle: async ({ app, caller, params }) => ({ status: 302, location: await blobUrl(app, caller, params.message_id) }),
  }),
  defineRoute({
    method: 'POST',
    path: '/api/v1/messages/:message_id/ack',
    summary: 'Acknowledge delivery (recipient)',
    tag: 'messages',
    auth: true,
    params: messageIdParams,
    responses: { 204: { description: 'Acknowledged' } },
    handle: async ({ app, caller, params }) => {
      await ackOne(app, caller, params.message_id);
      return { status: 204 };
    },
  }),
];
