import { Type } from './typebox.js';
import { PENDING_PAGE_DEFAULT, PENDING_PAGE_MAX } from '../client/wire.js';
import type * as wire from '../client/wire.js';
import { anyObject, convoId, did, integer, nullable, object, string, time, uuid, type Assert, type Same } from './common.js';

/** The recipient cap is a configuration value, so this schema is built per app. */
export const commitBody = (maxRecipients: number) =>
  object({
    message_id: uuid,
    recipients: Type.Optional(Type.Array(did, { minItems: 1, maxItems: maxRecipients, uniqueItems: true })),
    metadata: Type.Optional(anyObject),
  });

export const commitResponse = object({
  message_id: uuid,
  convo_id: string,
  sender_did: string,
  blob_key: string,
  size: integer,
  created_at: time,
  recipient_count: integer,
});

export const pendingQuery = object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: PENDING_PAGE_MAX, default: PENDING_PAGE_DEFAULT })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  convo_id: Type.Optional(convoId),
});

export const pendingResponse = object({
  messages: Type.Array(object({ message_id: uuid, convo_id: string, sender_did: did, size: integer, created_at: time })),
  cursor: nullable(string),
});

export const messageResponse = object({
  message_id: uuid,
  convo_id: string,
  sender_did: did,
  size: integer,
  md5: nullable(string),
  sha256: nullable(string),
  created_at: time,
  metadata: Type.Unsafe<Record<string, unknown> | null>({ type: ['object', 'null'] }),
  download: object({ url: string, expires_at: time }),
});

export const ackManyBody = object({
  message_ids: Type.Array(uuid, { minItems: 1, maxItems: 500, uniqueItems: true }),
});
export const ackManyResponse = object({ acked: Type.Array(uuid), not_found: Type.Array(uuid) });

// The type checker holds these schemas to the wire contract.
type Checks = [
  Assert<Same<ReturnType<typeof commitBody>, wire.CommitRequest>>,
  Assert<Same<typeof commitResponse, wire.CommittedMessage>>,
  Assert<Same<typeof pendingQuery, wire.PendingQuery>>,
  Assert<Same<typeof pendingResponse, wire.PendingPage>>,
  Assert<Same<typeof messageResponse, wire.MessageInfo>>,
  Assert<Same<typeof ackManyBody, wire.AckRequest>>,
  Assert<Same<typeof ackManyResponse, wire.AckResult>>,
];
