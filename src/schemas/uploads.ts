import { Type } from './typebox.js';
import type * as wire from '../client/wire.js';
import { MAX_ETAG_CHARS, MAX_PARTS } from '../config.js';
import { constant, convoId, integer, md5, object, oneOfValues, sha256, string, stringMap, time, uuid, type Assert, type Same } from './common.js';

export const reserveBody = object({
  convo_id: convoId,
  size: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  md5: Type.Optional(md5),
  sha256: Type.Optional(sha256),
  // Ciphertext is opaque: a type a browser would render (text/html, image/svg+xml) is never stored.
  content_type: Type.Optional(oneOfValues(['application/octet-stream', 'message/mls'])),
  // Multipart only: the MD5 of every part in order (parts of limits.part_size_bytes); each part URL then signs it.
  part_md5s: Type.Optional(Type.Array(md5, { minItems: 1, maxItems: MAX_PARTS })),
});

export const urlsBody = object({
  part_numbers: Type.Optional(
    Type.Array(Type.Integer({ minimum: 1, maximum: MAX_PARTS }), { minItems: 1, maxItems: 100, uniqueItems: true }),
  ),
  // The MD5 of each part of part_numbers, in the same order; the URLs sign them.
  part_md5s: Type.Optional(Type.Array(md5, { minItems: 1, maxItems: 100 })),
});

export const completeBody = object({
  parts: Type.Array(
    object({ part_number: Type.Integer({ minimum: 1, maximum: MAX_PARTS }), etag: Type.String({ minLength: 1, maxLength: MAX_ETAG_CHARS }) }),
    { minItems: 1, maxItems: MAX_PARTS },
  ),
});

const putInstructions = object({ method: constant('PUT'), url: string, headers: stringMap });
const multipartInstructions = object({
  method: constant('MULTIPART'),
  part_size: integer,
  part_count: integer,
  parts: Type.Array(object({ part_number: integer, url: string, headers: stringMap })),
});
const uploadInstructions = Type.Unsafe<(typeof putInstructions)['static'] | (typeof multipartInstructions)['static']>({
  oneOf: [putInstructions, multipartInstructions],
});

export const reserveResponse = object({
  message_id: uuid,
  blob_key: string,
  state: constant('pending'),
  commit_deadline: time,
  expires_at: time,
  upload: uploadInstructions,
});
export const urlsResponse = object({ expires_at: time, upload: uploadInstructions });
export const completeResponse = object({ message_id: uuid, size: integer });
export const uploadResponse = object({
  message_id: uuid,
  state: oneOfValues(['pending', 'committed', 'aborted', 'expired', 'rejected']),
  size: integer,
  convo_id: string,
  commit_deadline: time,
});

// The type checker holds these schemas to the wire contract.
type Checks = [
  Assert<Same<typeof reserveBody, wire.ReserveRequest>>,
  Assert<Same<typeof urlsBody, wire.UrlsRequest>>,
  Assert<Same<typeof completeBody, wire.CompleteRequest>>,
  Assert<Same<typeof reserveResponse, wire.Reservation>>,
  Assert<Same<typeof urlsResponse, wire.FreshUrls>>,
  Assert<Same<typeof completeResponse, wire.CompletedUpload>>,
  Assert<Same<typeof uploadResponse, wire.UploadInfo>>,
];
