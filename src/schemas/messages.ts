import { convoId, did, object, time, uuid } from './common.js';

/** The recipient cap is a configuration value, so this schema is built per app. */
export const commitBody = (maxRecipients: number) =>
  object(
    {
      message_id: uuid,
      recipients: { type: 'array', minItems: 1, maxItems: maxRecipients, uniqueItems: true, items: did },
      metadata: { type: 'object' },
    },
    ['message_id'],
  );

export const commitResponse = object(
  {
    message_id: uuid,
    convo_id: { type: 'string' },
    sender_did: { type: 'string' },
    blob_key: { type: 'string' },
    size: { type: 'integer' },
    created_at: time,
    recipient_count: { type: 'integer' },
  },
  ['message_id', 'convo_id', 'sender_did', 'blob_key', 'size', 'created_at', 'recipient_count'],
);

export const pendingQuery = object({
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
  cursor: { type: 'string', minLength: 1, maxLength: 200 },
  convo_id: convoId,
});

export const pendingResponse = object(
  {
    messages: {
      type: 'array',
      items: object({ message_id: uuid, convo_id: { type: 'string' }, sender_did: did, size: { type: 'integer' }, created_at: time }),
    },
    cursor: { type: ['string', 'null'] },
  },
  ['messages', 'cursor'],
);

export const messageResponse = object({
  message_id: uuid,
  convo_id: { type: 'string' },
  sender_did: did,
  size: { type: 'integer' },
  md5: { type: ['string', 'null'] },
  sha256: { type: ['string', 'null'] },
  created_at: time,
  metadata: { type: ['object', 'null'] },
  download: object({ url: { type: 'string' }, expires_at: time }, ['url', 'expires_at']),
});

export const ackManyBody = object(
  { message_ids: { type: 'array', minItems: 1, maxItems: 500, uniqueItems: true, items: uuid } },
  ['message_ids'],
);
export const ackManyResponse = object(
  { acked: { type: 'array', items: uuid }, not_found: { type: 'array', items: uuid } },
  ['acked', 'not_found'],
);
