// Messages and their recipients.
import type { Tx } from './sql.js';

export interface MessageRow {
  id: string;
  convoId: string;
  senderDid: string;
  blobKey: string;
  size: number;
  md5: string | null;
  sha256: string | null;
  metadata: Record<string, unknown> | null;
  commitDigest: string;
  createdAt: Date;
  fullyAckedAt: Date | null;
}

function toMessage(r: Record<string, unknown>): MessageRow {
  return {
    id: r.id as string,
    convoId: r.convo_id as string,
    senderDid: r.sender_did as string,
    blobKey: r.blob_key as string,
    size: r.size as number,
    md5: (r.md5 as string | null) ?? null,
    sha256: (r.sha256 as string | null) ?? null,
    metadata: (r.metadata as Record<string, unknown> | null) ?? null,
    commitDigest: r.commit_digest as string,
    createdAt: r.created_at as Date,
    fullyAckedAt: (r.fully_acked_at as Date | null) ?? null,
  };
}

/** The message row and all recipient rows, with one multi-row insert for the recipients. */
export async function insertMessageWithRecipients(sql: Tx, m: Omit<MessageRow, 'fullyAckedAt'>, recipients: readonly string[]): Promise<void> {
  await sql`
    insert into messages (id, convo_id, sender_did, blob_key, size, md5, sha256, metadata, commit_digest, created_at)
    values (${m.id}, ${m.convoId}, ${m.senderDid}, ${m.blobKey}, ${m.size}, ${m.md5}, ${m.sha256},
            ${m.metadata === null ? null : sql.json(m.metadata as never)}, ${m.commitDigest}, ${m.createdAt})`;
  // One statement and one array parameter, whatever the count: a parameter per row would hit the
  // protocol's 65,535-parameter limit at 32k recipients.
  await sql`
    insert into message_recipients (message_id, recipient_did)
    select ${m.id}::uuid, unnest(${sql.array([...recipients])}::text[])`;
}

export async function getMessage(sql: Tx, id: string): Promise<MessageRow | null> {
  const [row] = await sql`select * from messages where id = ${id}`;
  return row ? toMessage(row) : null;
}

export async function countRecipients(sql: Tx, id: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from message_recipients where message_id = ${id}`;
  return row?.n ?? 0;
}

/** The message when `did` is its sender or one of its recipients; null otherwise (or absent). */
export async function getMessageVisibleTo(sql: Tx, id: string, did: string): Promise<MessageRow | null> {
  const [row] = await sql`
    select m.* from messages m
    where m.id = ${id}
      and (m.sender_did = ${did}
           or exists (select 1 from message_recipients r where r.message_id = m.id and r.recipient_did = ${did}))`;
  return row ? toMessage(row) : null;
}

export interface PendingItem {
  messageId: string;
  convoId: string;
  senderDid: string;
  size: number;
  createdAt: Date;
}

/** A keyset page of a recipient's undelivered messages in id (time) order. */
export async function pendingPage(
  sql: Tx,
  args: { recipientDid: string; after: string | null; convoId: string | null; limit: number },
): Promise<PendingItem[]> {
  // Optional conditions as fragments, not "$1 is null or …": a generic plan of the latter cannot
  // start the index scan at the cursor, and deep pages would walk every earlier row.
  // The bound is repeated on m.id: the planner does not carry it across the join by itself, and
  // without it a merge join walks messages from the first row up to the cursor.
  const after = args.after === null ? sql`` : sql`and r.message_id > ${args.after}::uuid and m.id > ${args.after}::uuid`;
  const convo = args.convoId === null ? sql`` : sql`and m.convo_id = ${args.convoId}`;
  const rows = await sql`
    select m.id, m.convo_id, m.sender_did, m.size, m.created_at
    from message_recipients r
    join messages m on m.id = r.message_id
    where r.recipient_did = ${args.recipientDid}
      and not r.delivered
      ${after}
      ${convo}
    order by r.message_id
    limit ${args.limit}`;
  return rows.map((r) => ({
    messageId: r.id as string,
    convoId: r.convo_id as string,
    senderDid: r.sender_did as string,
    size: r.size as number,
    createdAt: r.created_at as Date,
  }));
}

/**
 * Marks deliveries for one recipient and stamps messages whose every recipient has now acked.
 * Returns the ids the caller is a recipient of (newly or already acked). The message rows are
 * locked first, in id order, so two recipients acking at once cannot both miss the last ack.
 */
export async function ackMessages(sql: Tx, recipientDid: string, ids: readonly string[], at: Date): Promise<string[]> {
  const mine = await sql<{ id: string }[]>`
    select m.id from messages m
    where m.id = any(${sql.array([...ids])}::uuid[])
      and exists (select 1 from message_recipients r where r.message_id = m.id and r.recipient_did = ${recipientDid})
    order by m.id
    for update of m`;
  const found = mine.map((r) => r.id);
  if (found.length === 0) return [];
  await sql`
    update message_recipients set delivered = true, delivered_at = ${at}
    where message_id = any(${sql.array(found)}::uuid[]) and recipient_did = ${recipientDid} and not delivered`;
  await sql`
    update messages m set fully_acked_at = ${at}
    where m.id = any(${sql.array(found)}::uuid[])
      and m.fully_acked_at is null
      and not exists (select 1 from message_recipients r where r.message_id = m.id and not r.delivered)`;
  return found;
}
