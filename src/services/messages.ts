// Commit (HEAD, then one statement), pending pages, fetch and acknowledgement.
import { createHash } from 'node:crypto';
import type { Caller } from '../auth.js';
import {
  PENDING_PAGE_DEFAULT,
  type AckResult,
  type CommitRequest,
  type CommittedMessage,
  type MessageInfo,
  type PendingMessage,
  type PendingPage,
  type PendingQuery,
} from '../client/wire.js';
import { isoMillis } from '../clock.js';
import type { AppContext } from '../context.js';
import {
  ackMessages,
  commitMessageRows,
  getMessageVisibleTo,
  getMessageWithRecipientCount,
  pendingPage,
  type MessageRow,
} from '../db/messages.js';
import { finishUpload, getUpload, getUploadForCommit } from '../db/uploads.js';
import { conflict, forbidden, invalidField, invalidRequest, notFound, uploadExpired, uploadIncomplete, uploadMismatch } from '../errors.js';
import { messageDeletableAfter } from '../lifecycle.js';
import { multipartObjectMatches } from './part-md5s.js';
import { discardBytes } from './uploads.js';

export const MAX_METADATA_BYTES = 4096;
/** Deeper JSON would overflow the stack of every recursive reader (stringify, canonical form, jsonb). */
export const MAX_METADATA_DEPTH = 32;

/** Nesting depth of a parsed JSON value, without recursion. */
function depthOf(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > MAX_METADATA_DEPTH) return max;
    for (const child of Object.values(v as object)) stack.push([child, d + 1]);
  }
  return max;
}

/** Canonical JSON (sorted keys) so that equal requests digest equally. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * What a replay must repeat: the recipients as requested (sorted; omitted stays omitted, since the
 * members may have changed since) and the metadata, where an empty object is the same as none.
 */
function commitDigest(input: CommitRequest): string {
  const recipients = input.recipients ? [...input.recipients].sort() : null;
  const metadata = input.metadata === undefined || Object.keys(input.metadata).length === 0 ? null : input.metadata;
  return createHash('sha256').update(canonical({ recipients, metadata })).digest('base64');
}

function answer(m: Pick<MessageRow, 'id' | 'convoId' | 'senderDid' | 'blobKey' | 'size' | 'createdAt'>, recipientCount: number): CommittedMessage {
  return {
    message_id: m.id,
    convo_id: m.convoId,
    sender_did: m.senderDid,
    blob_key: m.blobKey,
    size: m.size,
    created_at: m.createdAt.toISOString(),
    recipient_count: recipientCount,
  };
}

async function replay(app: AppContext, id: string, digest: string): Promise<CommittedMessage> {
  const found = await getMessageWithRecipientCount(app.sql, id);
  if (found === null) throw uploadExpired(); // committed, then removed by retention
  if (found.message.commitDigest !== digest) throw conflict('This message was already committed with other recipients or metadata.');
  return answer(found.message, found.recipientCount);
}

const senderNotMember = () => forbidden('The sender is not a member of this conversation.');
// One answer whatever the mix: a caller learns nothing about who else is a member.
const recipientNotMember = () => forbidden('Every recipient must be a member of this conversation.');
const noRecipients = () => invalidRequest('The conversation has no other members to deliver to.');
const tooManyRecipients = (max: number) =>
  invalidField('body', '/recipients', `must have at most ${max} items`, `At most ${max} recipients per message.`);

/** What the request alone decides, before any round trip. */
function checkCommitInput(app: AppContext, input: CommitRequest): void {
  if (input.metadata !== undefined && depthOf(input.metadata) > MAX_METADATA_DEPTH) {
    throw invalidField('body', '/metadata', `nests deeper than ${MAX_METADATA_DEPTH} levels`, `body/metadata may nest at most ${MAX_METADATA_DEPTH} levels deep.`);
  }
  if (input.metadata !== undefined && Buffer.byteLength(JSON.stringify(input.metadata)) > MAX_METADATA_BYTES) {
    throw invalidField('body', '/metadata', `exceeds ${MAX_METADATA_BYTES} bytes`, `body/metadata must serialize to at most ${MAX_METADATA_BYTES} bytes.`);
  }
  if (input.recipients === undefined && app.config.membership !== 'enforce') {
    throw invalidField('body', '/recipients', 'is required', 'body/recipients is required when membership is not enforced.');
  }
  if (input.recipients !== undefined && input.recipients.length > app.config.maxRecipients) throw tooManyRecipients(app.config.maxRecipients);
}

/**
 * Invariants 1–3: the object is HEADed (size, and the MD5 of a single PUT or, when every part's
 * MD5 was declared, the multipart ETag) before anything is written; then the message row, every recipient row and the upload's state change happen in one
 * statement that holds the upload row's lock, so concurrent commits yield one row set. Round
 * trips: the upload row with the membership answers (fail early), the HEAD, the commit statement.
 */
export async function commitMessage(app: AppContext, caller: Caller, input: CommitRequest): Promise<{ created: boolean; body: CommittedMessage }> {
  checkCommitInput(app, input);
  const enforceMembership = app.config.membership === 'enforce';
  const recipients = input.recipients ?? null;
  const found = await getUploadForCommit(app.sql, input.message_id, { enforceMembership, recipients });
  // Uploads a caller may see: its own, or any for a service. Anything else is "not found".
  if (found === null || (found.upload.senderDid !== caller.did && !caller.isService)) throw notFound('upload');
  const u = found.upload;
  const digest = commitDigest(input);
  if (u.state === 'committed') return { created: false, body: await replay(app, u.messageId, digest) };
  if (u.state === 'rejected') throw uploadMismatch();
  if (u.state !== 'pending' || app.clock.now() > u.commitDeadline) {
    throw uploadExpired();
  }
  if (!found.senderIsMember) throw senderNotMember();
  if (found.hasOutsiders) throw recipientNotMember();

  const head = await app.store.head(u.blobKey);
  if (head === null) {
    // Between our read and the HEAD, the upload may have been expired or aborted (and its object
    // removed), or committed by a concurrent call: answer what is true now, not "retry later".
    const current = await getUpload(app.sql, u.messageId);
    if (current?.state === 'committed') return { created: false, body: await replay(app, u.messageId, digest) };
    if (current === null || current.state !== 'pending') throw current?.state === 'rejected' ? uploadMismatch() : uploadExpired();
    throw uploadIncomplete();
  }
  const md5Hex = u.md5 === null ? null : Buffer.from(u.md5, 'base64').toString('hex');
  const partsMatch = u.multipartUploadId !== null && head.size === u.size ? multipartObjectMatches(app, u, head.etag, found.partMd5s) : null;
  if (head.size !== u.size || (md5Hex !== null && head.etag.toLowerCase() !== md5Hex) || partsMatch === false) {
    // Not the declared bytes: the upload is rejected first (no commit can win after that), then
    // the object goes. A concurrent commit that already won keeps its (verified) object.
    if (await finishUpload(app.sql, u.messageId, 'rejected', app.clock.now())) {
      await discardBytes(app, u);
      throw uploadMismatch();
    }
    return commitMessage(app, caller, input);
  }

  const now = app.clock.now();
  const { status, recipientCount } = await commitMessageRows(app.sql, {
    messageId: u.messageId,
    commitDigest: digest,
    metadata: input.metadata ?? null,
    recipients,
    enforceMembership,
    maxRecipients: app.config.maxRecipients,
    now,
  });
  switch (status) {
    case 'created':
      break;
    case 'replay':
      return { created: false, body: await replay(app, u.messageId, digest) };
    case 'rejected':
      throw uploadMismatch();
    case 'expired':
      throw uploadExpired();
    case 'not_found':
      throw notFound('upload');
    case 'sender_not_member':
      throw senderNotMember();
    case 'recipient_not_member':
      throw recipientNotMember();
    case 'no_recipients':
      throw noRecipients();
    case 'too_many_recipients':
      throw tooManyRecipients(app.config.maxRecipients);
  }
  app.metrics.messagesCommitted.inc();
  const message = { id: u.messageId, convoId: u.convoId, senderDid: u.senderDid, blobKey: u.blobKey, size: u.size, createdAt: now };
  return { created: true, body: answer(message, recipientCount) };
}

/** Cursors are opaque to clients: a versioned wrapper around the last message id of a page. */
export function encodeCursor(messageId: string): string {
  return Buffer.from(`v1:${messageId}`).toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const m = /^v1:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(text);
  if (!m) throw invalidField('query', '/cursor', 'is malformed', 'query/cursor is not a cursor this API issued.');
  return m[1]!;
}

/** A page of the caller's pending messages, oldest first, with the cursor of the next page. */
export async function listPending(app: AppContext, caller: Caller, q: PendingQuery): Promise<PendingPage> {
  const limit = q.limit ?? PENDING_PAGE_DEFAULT;
  const after = q.cursor === undefined ? null : decodeCursor(q.cursor);
  const page = await pendingPage(app.sql, { recipientDid: caller.did, after, convoId: q.convo_id ?? null, limit });
  const messages = new Array<PendingMessage>(page.rows.length);
  for (let i = 0; i < page.rows.length; i++) {
    const r = page.rows[i]!;
    messages[i] = { message_id: r.id, convo_id: r.convo_id, sender_did: r.sender_did, size: r.size, created_at: isoMillis(r.created_ms) };
  }
  return { messages, cursor: page.nextAfter === null ? null : encodeCursor(page.nextAfter) };
}

/**
 * A download URL never outlives the object: it is cut at the moment reconciliation may delete the
 * message (retention, or the grace after every recipient acked). A message already due is gone.
 */
async function download(app: AppContext, m: MessageRow) {
  const now = app.clock.now();
  const left = Math.floor((messageDeletableAfter(app.config, m).getTime() - now.getTime()) / 1000);
  if (left < 1) throw notFound('message');
  const p = await app.store.presignGet({ key: m.blobKey, now, expiresIn: Math.min(app.config.downloadUrlTtlSeconds, left) });
  return { url: p.url, expires_at: p.expiresAt.toISOString() };
}

/** Sender or recipient only; anyone else gets the same 404 as for an unknown id. */
async function visibleMessage(app: AppContext, caller: Caller, id: string): Promise<MessageRow> {
  const m = await getMessageVisibleTo(app.sql, id, caller.did);
  if (m === null) throw notFound('message');
  return m;
}

export async function describeMessage(app: AppContext, caller: Caller, id: string): Promise<MessageInfo> {
  const m = await visibleMessage(app, caller, id);
  return {
    message_id: m.id,
    convo_id: m.convoId,
    sender_did: m.senderDid,
    size: m.size,
    md5: m.md5,
    sha256: m.sha256,
    created_at: m.createdAt.toISOString(),
    metadata: m.metadata,
    download: await download(app, m),
  };
}

export async function blobUrl(app: AppContext, caller: Caller, id: string): Promise<string> {
  return (await download(app, await visibleMessage(app, caller, id))).url;
}

export async function ackOne(app: AppContext, caller: Caller, id: string): Promise<void> {
  const acked = await ackMessages(app.sql, caller.did, [id], app.clock.now());
  if (acked.length === 0) throw notFound('message');
  app.metrics.acks.inc();
}

export async function ackMany(app: AppContext, caller: Caller, ids: string[]): Promise<AckResult> {
  const acked = new Set(await ackMessages(app.sql, caller.did, ids, app.clock.now()));
  app.metrics.acks.inc(acked.size);
  return { acked: ids.filter((id) => acked.has(id)), not_found: ids.filter((id) => !acked.has(id)) };
}
