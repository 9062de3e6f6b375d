// Queries of the reconciliation pass. Every one is a single bounded statement: the pass never
// holds a transaction open while it talks to the bucket (no network I/O inside a transaction: a
// slow bucket must not hold locks).
import type { Tx } from './sql.js';


/** An uncommitted reservation whose bytes (object or multipart upload) must be removed. */
export interface UploadToClean {
  messageId: string;
  blobKey: string;
  size: number;
  multipartUploadId: string | null;
  updatedAt: Date;
}

export interface MessageToDelete {
  id: string;
  blobKey: string;
  size: number;
  /** The column the page is ordered by (created_at or fully_acked_at): the keyset cursor. */
  at: Date;
}

export interface KeyedMessage {
  id: string;
  blobKey: string;
  createdAt: Date;
  fullyAckedAt: Date | null;
}

/** A position in a listing ordered by (timestamp, id); null starts from the beginning. */
export type Cursor = { at: Date; id: string } | null;

const toClean = (r: Record<string, unknown>): UploadToClean => ({
  messageId: r.message_id as string,
  blobKey: r.blob_key as string,
  size: r.size as number,
  multipartUploadId: (r.multipart_upload_id as string | null) ?? null,
  updatedAt: r.updated_at as Date,
});

/**
 * Marks up to `limit` pending uploads whose deadline is before `cutoff` as expired. A concurrent
 * commit holds the row lock: this statement waits for it, re-reads the row, and skips it when
 * the commit won (state is no longer 'pending'). Returns only the rows it changed.
 */
export async function expirePendingUploads(sql: Tx, args: { cutoff: Date; at: Date; limit: number }): Promise<UploadToClean[]> {
  const rows = await sql`
    update uploads set state = 'expired', updated_at = ${args.at}
    where message_id in (
      select message_id from uploads
      where state = 'pending' and commit_deadline < ${args.cutoff}
      order by commit_deadline
      limit ${args.limit})
    and state = 'pending'
    returning message_id, blob_key, size, multipart_upload_id, updated_at`;
  return rows.map(toClean);
}

/** What expirePendingUploads would mark, without marking (dry run). Ordered by deadline, then id. */
export async function listExpirableUploads(sql: Tx, args: { cutoff: Date; after: Cursor; limit: number }): Promise<(UploadToClean & { commitDeadline: Date })[]> {
  const after = args.after === null ? sql`` : sql`and (commit_deadline, message_id) > (${args.after.at}, ${args.after.id})`;
  const rows = await sql`
    select message_id, blob_key, size, multipart_upload_id, updated_at, commit_deadline from uploads
    where state = 'pending' and commit_deadline < ${args.cutoff} ${after}
    order by commit_deadline, message_id limit ${args.limit}`;
  return rows.map((r) => ({ ...toClean(r), commitDeadline: r.commit_deadline as Date }));
}

/**
 * Finished, never committed uploads whose bytes may still be in the bucket and that no URL can
 * write again (urls_valid_until passed), in (updated_at, id) order.
 */
export async function listUncleanedUploads(sql: Tx, args: { now: Date; after: Cursor; limit: number }): Promise<UploadToClean[]> {
  const after = args.after === null ? sql`` : sql`and (updated_at, message_id) > (${args.after.at}, ${args.after.id})`;
  const rows = await sql`
    select message_id, blob_key, size, multipart_upload_id, updated_at from uploads
    where state in ('aborted', 'expired', 'rejected') and cleaned_at is null and urls_valid_until <= ${args.now} ${after}
    order by updated_at, message_id limit ${args.limit}`;
  return rows.map(toClean);
}

export async function markUploadsCleaned(sql: Tx, messageIds: readonly string[], at: Date): Promise<number> {
  if (messageIds.length === 0) return 0;
  const rows = await sql`
    update uploads set cleaned_at = ${at}
    where message_id = any(${sql.array(messageIds as string[])}::uuid[]) and cleaned_at is null
      and state in ('aborted', 'expired', 'rejected') and urls_valid_until <= ${at}
    returning message_id`;
  return rows.length;
}

/**
 * Deletes up to `limit` finished upload rows created before `before`. Uncommitted ones only once
 * their bytes are gone (cleaned_at): the row is what tells the sweep where those bytes are.
 * Committed ones only once their message is gone: a message committed late in its window outlives
 * its reservation's retention date, and its replays need the row.
 */
export async function pruneFinishedUploads(sql: Tx, args: { before: Date; limit: number; dryRun: boolean }): Promise<number> {
  if (args.dryRun) {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from (
        select 1 from uploads
        where state <> 'pending' and created_at < ${args.before}
          and (cleaned_at is not null
               or (state = 'committed' and not exists (select 1 from messages m where m.id = uploads.message_id)))
        limit ${args.limit}) t`;
    return row?.n ?? 0;
  }
  const rows = await sql`
    delete from uploads where message_id in (
      select message_id from uploads
      where state <> 'pending' and created_at < ${args.before}
          and (cleaned_at is not null
               or (state = 'committed' and not exists (select 1 from messages m where m.id = uploads.message_id)))
      order by created_at
      limit ${args.limit})
    returning message_id`;
  return rows.length;
}

/**
 * Hours of the byte quota ledger that have left every sender's rolling window (before `before`):
 * nothing reads them again. Oldest first, at most `limit`.
 */
export async function pruneQuotaHours(sql: Tx, args: { before: Date; limit: number; dryRun: boolean }): Promise<number> {
  if (args.dryRun) {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from (select 1 from upload_quota_hours where hour < ${args.before} limit ${args.limit}) t`;
    return row?.n ?? 0;
  }
  const rows = await sql`
    delete from upload_quota_hours where (sender_did, hour) in (
      select sender_did, hour from upload_quota_hours where hour < ${args.before} order by hour limit ${args.limit})
    returning 1`;
  return rows.length;
}

const toMessage = (r: Record<string, unknown>): MessageToDelete => ({
  id: r.id as string,
  blobKey: r.blob_key as string,
  size: r.size as number,
  at: r.at as Date,
});

/** Messages whose `column` is before `before`, in (column, id) order, after the keyset cursor. */
async function listMessagesBefore(
  sql: Tx,
  column: 'created_at' | 'fully_acked_at',
  args: { before: Date; after: Cursor; limit: number },
): Promise<MessageToDelete[]> {
  const col = sql(column);
  const after = args.after === null ? sql`` : sql`and (${col}, id) > (${args.after.at}, ${args.after.id})`;
  const rows = await sql`
    select id, blob_key, size, ${col} as at from messages
    where ${col} < ${args.before} ${after}
    order by ${col}, id limit ${args.limit}`;
  return rows.map(toMessage);
}

/** Messages created before `before`, in (created_at, id) order. */
export const listMessagesPastRetention = (sql: Tx, args: { before: Date; after: Cursor; limit: number }) =>
  listMessagesBefore(sql, 'created_at', args);

/** Messages every recipient acknowledged before `before`, in (fully_acked_at, id) order. */
export const listFullyAckedMessages = (sql: Tx, args: { before: Date; after: Cursor; limit: number }) =>
  listMessagesBefore(sql, 'fully_acked_at', args);

/** Deletes message rows (recipient rows cascade). */
export async function deleteMessages(sql: Tx, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const rows = await sql`delete from messages where id = any(${sql.array(ids as string[])}::uuid[]) returning id`;
  return rows.length;
}

/**
 * Messages whose blob key lies in (lo, hi], in key order, after `afterKey`. Blob keys are
 * `m/yyyy/mm/dd/<uuid>` with lowercase hex: punctuation sits at the same places in every key,
 * so any collation orders them as the bucket listing does (byte order) and the unique index
 * on blob_key serves the range.
 */
export async function messagesInKeyRange(sql: Tx, args: { lo: string; hi: string; afterKey: string | null; limit: number }): Promise<KeyedMessage[]> {
  const from = args.afterKey ?? args.lo;
  const rows = await sql`
    select id, blob_key, created_at, fully_acked_at from messages
    where blob_key > ${from} and blob_key <= ${args.hi}
    order by blob_key limit ${args.limit}`;
  return rows.map((r) => ({
    id: r.id as string,
    blobKey: r.blob_key as string,
    createdAt: r.created_at as Date,
    fullyAckedAt: (r.fully_acked_at as Date | null) ?? null,
  }));
}

/**
 * Of `keys`, those that belong to a message or to an upload that may still become one. A committed
 * upload whose message is gone owns nothing: bytes written there again (a URL still valid after an
 * early deletion) are strays.
 */
export async function keysWithLiveRows(sql: Tx, keys: readonly string[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const arr = sql.array(keys as string[]);
  const rows = await sql<{ blob_key: string }[]>`
    select blob_key from messages where blob_key = any(${arr}::text[])
    union
    select blob_key from uploads where blob_key = any(${arr}::text[]) and state = 'pending'`;
  return new Set(rows.map((r) => r.blob_key));
}

export interface AuditPosition {
  /** The last key the audit handled; null: the start of the window. */
  afterKey: string | null;
  /** Missing objects found so far in this cycle. */
  missing: number;
}

export async function getAuditPosition(sql: Tx, name: string): Promise<AuditPosition> {
  const [row] = await sql<{ after_key: string | null; missing: number }[]>`select after_key, missing from audit_positions where name = ${name}`;
  return { afterKey: row?.after_key ?? null, missing: row?.missing ?? 0 };
}

export async function saveAuditPosition(sql: Tx, name: string, p: AuditPosition): Promise<void> {
  await sql`
    insert into audit_positions (name, after_key, missing, updated_at) values (${name}, ${p.afterKey}, ${p.missing}, now())
    on conflict (name) do update set after_key = excluded.after_key, missing = excluded.missing, updated_at = excluded.updated_at`;
}
