import { MAX_ETAG_CHARS, MAX_PARTS } from '../config.js';
import { convoId, md5, object, sha256, time, uuid } from './common.js';

export const reserveBody = object(
  {
    convo_id: convoId,
    size: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    md5,
    sha256,
    // Ciphertext is opaque: a type a browser would render (text/html, image/svg+xml) is never stored.
    content_type: { enum: ['application/octet-stream', 'message/mls'] },
  },
  ['convo_id', 'size'],
);

export const urlsBody = object({
  part_numbers: { type: 'array', minItems: 1, maxItems: 100, uniqueItems: true, items: { type: 'integer', minimum: 1, maximum: MAX_PARTS } },
});

export const completeBody = object(
  {
    parts: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_PARTS,
      items: object({ part_number: { type: 'integer', minimum: 1, maximum: MAX_PARTS }, etag: { type: 'string', minLength: 1, maxLength: MAX_ETAG_CHARS } }, [
        'part_number',
        'etag',
      ]),
    },
  },
  ['parts'],
);

const headers = { type: 'object', additionalProperties: { type: 'string' } };
const uploadInstructions = {
  oneOf: [
    object({ method: { const: 'PUT' }, url: { type: 'string' }, headers }, ['method', 'url', 'headers']),
    object(
      {
        method: { const: 'MULTIPART' },
        part_size: { type: 'integer' },
        part_count: { type: 'integer' },
        parts: { type: 'array', items: object({ part_number: { type: 'integer' }, url: { type: 'string' }, headers }) },
      },
      ['method', 'part_size', 'part_count', 'parts'],
    ),
  ],
};

export const reserveResponse = object(
  { message_id: uuid, blob_key: { type: 'string' }, state: { const: 'pending' }, commit_deadline: time, expires_at: time, upload: uploadInstructions },
  ['message_id', 'blob_key', 'state', 'commit_deadline', 'expires_at', 'upload'],
);
export const urlsResponse = object({ expires_at: time, upload: uploadInstructions }, ['expires_at', 'upload']);
export const completeResponse = object({ message_id: uuid, size: { type: 'integer' } }, ['message_id', 'size']);
export const uploadResponse = object(
  {
    message_id: uuid,
    state: { enum: ['pending', 'committed', 'aborted', 'expired', 'rejected'] },
    size: { type: 'integer' },
    convo_id: { type: 'string' },
    commit_deadline: time,
  },
  ['message_id', 'state', 'size', 'convo_id', 'commit_deadline'],
);
