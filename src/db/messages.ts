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

export type CommitStatus =
  | 'created'
  | 'replay'
  | 'rejected'
  | 'expired'
  | 'not_found'
  | 'sender_not_member'
  | 'recipient_not_member'
  | 'no_recipients'
  | 'too_many_recipients';

export interface CommitArgs {
  messageId: string;
  commitDigest: string;
  metadata: Record<string, unknown> | null;
  /** null: every member of the conversation but the sender. */
  recipients: readonly string[] | null;
  enforceMembership: boolean;
  maxRecipients: number;
  now: Date;
}

/**
 * The commit's transaction as one statement (sql/00003 `commit_message`): locks the upload row,
 * checks its state and (enforced) membership under the conversation's shared lock, then writes the
 * message row, every recipient row and the upload's state. Only 'created' writes anything.
 */
export async function commitMessageRows(sql: Tx, c: CommitArgs): Promise<{ status: CommitStatus; recipientCount: number }> {
  // One array parameter for the recipients whatever their count: a parameter per row would hit the
  // protocol's 65,535-parameter limit at 32k recipients.
  const [row] = await sql<{ status: CommitStatus; recipient_count: number }[]>`
    select status, recipient_count from commit_message(
      ${c.messageId}, ${c.commitDigest}, ${c.metadata === null ? null : sql.json(c.metadata as never)},
      ${c.recipients === null ? null : sql.array([...c.recipients])}, ${c.enforceMembership},
      ${c.maxRecipients}, ${c.now})`;
  return { status: row!.status, recipientCount: row!.recipient_count };
}

/** A committed message with its recipient count, for a replayed commit's answer. */
export async function getMessageWithRecipientCount(sql: Tx, id: string): Promise<{ message: MessageRow; recipientCount: number } | null> {
  const [row] = await sql`
    select m.*, (select count(*)::int from message_recipients r where r.message_id = m.id) as recipient_count
    from messages m where m.id = ${id}`;
  return row ? { message: toMessage(row), recipientCount: row.recipient_count as number } : null;
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

/** One pending message as PostgreSQL sends it: created_at as whole milliseconds since the epoch. */
export interface PendingRow {
  id: string;
  convo_id: string;
  sender_did: string;
  size: number;
  created_ms: number;
}

export interface PendingPageRows {
  /** Oldest first. */
  rows: PendingRow[];
  /** The last message id of the page when more follow; null on the last page. */
  nextAfter: string | null;
}

/**
 * A keyset page of a recipient's undelivered messages in id (time) order. PostgreSQL sends plain
 * columns and the broker spells the answer: building the page's JSON in PostgreSQL (json_agg,
 * to_char) cost the database ~360 µs a page, more than finding the rows, and the database is the
 * part that does not scale out; created_at comes as milliseconds rather than a timestamp the driver
 * would parse into a Date (README, "Performance").
 */
export async function pendingPage(
  sql: Tx,
  args: { recipientDid: string; after: string | null; convoId: string | null; limit: number },
): Promise<PendingPageRows> {
  // Optional conditions as fragments, not "$1 is null or …": a generic plan of the latter cannot
  // start the index scan at the cursor, and deep pages would walk every earlier row.
  // The bound is repeated on m.id: the planner does not carry it across the join by itself, and
  // without it a merge join walks messages from the first row up to the cursor.
  const after = args.after === null ? sql`` : sql`and r.message_id > ${args.after}::uuid and m.id > ${args.after}::uuid`;
  const convo = args.convoId === null ? sql`` : sql`and m.convo_id = ${args.convoId}`;
  // One row more than the page tells whether another page follows. floor: whole milliseconds as
  // the driver's Date would keep them (a seeded row may hold microseconds).
  const rows = await sql<PendingRow[]>`
    select m.id, m.convo_id, m.sender_did, m.size, floor(extract(epoch from m.created_at) * 1000)::int8 as created_ms
    from message_recipients r
    join messages m on m.id = r.message_id
    where r.recipient_did = ${args.recipientDid}
      and not r.delivered
      ${after}
      ${convo}
    order by r.message_id
    limit ${args.limit + 1}`;
  if (rows.length <= args.limit) return { rows, nextAfter: null };
  const page = rows.slice(0, args.limit);
  return { rows: page, nextAfter: page[page.length - 1]!.id };
}

/**
 * Marks deliveries for one recipient and stamps messages whose every recipient has now acked, in one
 * statement (sql/00003 `ack_messages`: the message rows are locked first, in id order, so two
 * recipients acking at once cannot both miss the last ack). Returns the ids the caller is a
 * recipient of (newly or already acked).
 */
export async function ackMessages(sql: Tx, recipientDid: string, ids: readonly string[], at: Date): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`select id from ack_messages(${recipientDid}, ${sql.array([...ids])}::uuid[], ${at}) as id`;
  return rows.map((r) => r.id);
}
