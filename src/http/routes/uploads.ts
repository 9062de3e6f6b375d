import { completeBody, completeResponse, reserveBody, reserveResponse, uploadResponse, urlsBody, urlsResponse } from '../../schemas/uploads.js';
import { messageIdParams } from '../../schemas/common.js';
import { abortUpload, completeUpload, describeUpload, refreshUrls, reserveUpload } from '../../services/uploads.js';
import { MAX_BODY_BYTES } from '../body.js';
import { defineRoute, type RouteDef } from '../route.js';

export const uploadRoutes = (): RouteDef[] => [
  defineRoute({
    method: 'POST',
    path: '/api/v1/uploads',
    summary: 'Reserve an upload and get presigned URL(s) to PUT the ciphertext straight to the bucket',
    tag: 'uploads',
    auth: true,
    body: reserveBody,
    errors: { 403: 'Forbidden: not a member of the conversation', 404: 'NotFound: no such conversation visible to the caller', 413: 'PayloadTooLarge: the declared size is above max_message_bytes, or above max_bytes_per_day (it can never fit: do not retry)', 429: 'RateLimited: the rate, or max_pending_uploads open uploads; QuotaExceeded: the size does not fit max_bytes_per_day now (Retry-After: seconds until it does, up to 25 h); both have Retry-After' },
    responses: { 201: { description: 'Reserved', schema: reserveResponse } },
    handle: async ({ app, caller, body }) => ({ status: 201, body: await reserveUpload(app, caller, body) }),
  }),
  defineRoute({
    method: 'POST',
    path: '/api/v1/uploads/:message_id/urls',
    summary: 'Fresh upload URLs for a pending upload (resume, or parts beyond the first 100)',
    tag: 'uploads',
    auth: true,
    params: messageIdParams,
    body: urlsBody,
    errors: { 409: 'Conflict: the upload is already committed', 410: 'UploadExpired: past the commit deadline, aborted or rejected' },
    responses: { 200: { description: 'Fresh URLs', schema: urlsResponse } },
    handle: async ({ app, caller, body, params }) => ({
      status: 200,
      body: await refreshUrls(app, caller, params.message_id, body.part_numbers, body.part_md5s),
    }),
  }),
  defineRoute({
    method: 'POST',
    path: '/api/v1/uploads/:message_id/complete',
    summary: 'Complete a multipart upload with the part ETags',
    tag: 'uploads',
    auth: true,
    params: messageIdParams,
    body: completeBody,
    errors: { 410: 'UploadExpired: past the commit deadline, or the multipart upload is gone' },
    maxBodyBytes: MAX_BODY_BYTES, // up to 1,000 part ETags of the store's own making
    responses: { 200: { description: 'Completed', schema: completeResponse } },
    handle: async ({ app, caller, body, params }) => ({ status: 200, body: await completeUpload(app, caller, params.message_id, body.parts) }),
  }),
  defineRoute({
    method: 'GET',
    path: '/api/v1/uploads/:message_id',
    summary: "An upload's state (uploader or service)",
    tag: 'uploads',
    auth: true,
    params: messageIdParams,
    responses: { 200: { description: 'The upload', schema: uploadResponse } },
    handle: async ({ app, caller, params }) => ({ status: 200, body: await describeUpload(app, caller, params.message_id) }),
  }),
  defineRoute({
    method: 'DELETE',
    path: '/api/v1/uploads/:message_id',
    summary: 'Abort a pending upload (uploader only); its object or multipart upload is removed',
    tag: 'uploads',
    auth: true,
    params: messageIdParams,
    errors: { 409: 'Conflict: the upload is already committed' },
    responses: { 204: { description: 'Aborted' } },
    handle: async ({ app, caller, params }) => {
      await abortUpload(app, caller, params.message_id);
      return { status: 204 };
    },
  }),
];
