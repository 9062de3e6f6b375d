// Queries on the uploads table (reservations). All SQL lives in src/db.
import type { Tx } from './sql.js';

export type UploadState = 'pending' | 'committed' | 'aborted' | 'expired' | 'rejected';

export interface UploadRow {
  messageId: string;
  senderDid: string;
  convoId: string;
  blobKey: string;
  size: number;
  md5: string | null;
  sha256: string | null;
  contentType: string;
  multipartUploadId: string | null;
  partSize: number | null;
  state: UploadState;
  createdAt: Date;
  commitDeadline: Date;
}


function toUpload(r: Record<string, unknown>): UploadRow {
  return {
    messageId: r.message_id as string,
    senderDid: r.sender_did as string,
    convoId: r.convo_id as string,
    blobKey: r.blob_key as string,
    size: r.size as number,
    md5: (r.md5 as string | null) ?? null,
    sha256: (r.sha256 as string | null) ?? null,
    contentType: r.content_type as string,
    multipartUploadId: (r.multipart_upload_id as string | null) ?? null,
    partSize: (r.part_size as number | null) ?? null,
    state: r.state as UploadState,
    createdAt: r.created_at as Date,
    commitDeadline: r.commit_deadline as Date,
  };
}

export async function countPendingUploads(sql: Tx, senderDid: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from uploads where sender_did = ${senderDid} and state = 'pending'`;
  return row?.n ?? 0;
}

export async function insertUpload(sql: Tx, u: Omit<UploadRow, 'state'>): Promise<void> {
  await sql`
    insert into uploads (message_id, sender_did, convo_id, blob_key, size, md5, sha256, content_type,
                         multipart_upload_id, part_size, state, created_at, commit_deadline, updated_at)
    values (${u.messageId}, ${u.senderDid}, ${u.convoId}, ${u.blobKey}, ${u.size}, ${u.md5}, ${u.sha256},
            ${u.contentType}, ${u.multipartUploadId}, ${u.partSize}, 'pending', ${u.createdAt},
            ${u.commitDeadline}, ${u.createdAt})`;
}

export async function getUpload(sql: Tx, messageId: string): Promise<UploadRow | null> {
  const [row] = await sql`select * from uploads where message_id = ${messageId}`;
  return row ? toUpload(row) : null;
}

/** Locks the row for the rest of the transaction (commit, abort and expiry serialise on it). */
export async function getUploadForUpdate(sql: Tx, messageId: string): Promise<UploadRow | null> {
  const [row] = await sql`select * from uploads where message_id = ${messageId} for update`;
  return row ? toUpload(row) : null;
}

/** Moves a pending upload to a final state; false when it was no longer pending. */
export async function finishUpload(sql: Tx, messageId: string, state: Exclude<UploadState, 'pending'>, at: Date): Promise<boolean> {
  const rows = await sql`
    update uploads set state = ${state}, updated_at = ${at}
    where message_id = ${messageId} and state = 'pending'
    returning message_id`;
  return rows.length === 1;
}

/** Serialises one sender's reservations within a transaction, so the pending cap is exact. */
export async function lockSenderQuota(sql: Tx, senderDid: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${'quota:' + senderDid}, 0))`;
}

/** Records that a finished, uncommitted upload's bytes are gone from the bucket. */
export async function markCleaned(sql: Tx, messageId: string, at: Date): Promise<void> {
  await sql`update uploads set cleaned_at = ${at} where message_id = ${messageId} and state <> 'pending' and state <> 'committed'`;
}
