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
  /** When the last presigned URL issued for it expires (never after the commit deadline). */
  urlsValidUntil: Date;
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
    urlsValidUntil: r.urls_valid_until as Date,
  };
}

/**
 * What counts against a sender's pending cap: pending uploads still inside their window, and
 * finished uncommitted ones whose URLs still work (an aborted upload's URL could otherwise be used
 * again and again, each time storing bytes nobody counts).
 */
export async function countPendingUploads(sql: Tx, senderDid: string, now: Date): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select
      (select count(*) from uploads
        where sender_did = ${senderDid} and state = 'pending' and commit_deadline > ${now})
      + (select count(*) from uploads
        where sender_did = ${senderDid} and state in ('aborted', 'expired', 'rejected') and urls_valid_until > ${now})
      as n`;
  return Number(row?.n ?? 0);
}

export async function insertUpload(sql: Tx, u: Omit<UploadRow, 'state'>): Promise<void> {
  await sql`
    insert into uploads (message_id, sender_did, convo_id, blob_key, size, md5, sha256, content_type,
                         multipart_upload_id, part_size, state, created_at, commit_deadline, updated_at,
                         urls_valid_until)
    values (${u.messageId}, ${u.senderDid}, ${u.convoId}, ${u.blobKey}, ${u.size}, ${u.md5}, ${u.sha256},
            ${u.contentType}, ${u.multipartUploadId}, ${u.partSize}, 'pending', ${u.createdAt},
            ${u.commitDeadline}, ${u.createdAt}, ${u.urlsValidUntil})`;
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

/**
 * Records that URLs valid until `until` are about to be handed out; false when the upload is no
 * longer pending (then none may be). Done before presigning, so an abort or expiry that follows
 * always sees how long the URLs live.
 */
export async function extendUrls(sql: Tx, messageId: string, until: Date): Promise<boolean> {
  const rows = await sql`
    update uploads set urls_valid_until = greatest(urls_valid_until, ${until})
    where message_id = ${messageId} and state = 'pending'
    returning message_id`;
  return rows.length === 1;
}

/** No URL of a finished multipart upload works once the multipart upload itself is aborted. */
export async function closeUrls(sql: Tx, messageId: string, at: Date): Promise<void> {
  await sql`
    update uploads set urls_valid_until = least(urls_valid_until, ${at})
    where message_id = ${messageId} and state in ('aborted', 'expired', 'rejected')`;
}

/**
 * Records that a finished, uncommitted upload's bytes are gone from the bucket — only once no URL
 * can write them again; until then the reconciler's sweep keeps coming back.
 */
export async function markCleaned(sql: Tx, messageId: string, at: Date): Promise<void> {
  await sql`
    update uploads set cleaned_at = ${at}
    where message_id = ${messageId} and state in ('aborted', 'expired', 'rejected') and urls_valid_until <= ${at}`;
}
