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
 * A sender's open uploads (sql/00003 `open_uploads`: pending ones still inside their window, and
 * finished uncommitted ones whose URLs still work, since an aborted upload's URL could otherwise be
 * used again and again) and the bytes it reserved in the rolling day (sql/00007 `quota_used`).
 */
export async function senderUsage(sql: Tx, senderDid: string, now: Date): Promise<{ pendingUploads: number; bytesReserved: number }> {
  const [row] = await sql<{ n: string; used: string }[]>`
    select open_uploads(${senderDid}, ${now}, null) as n, quota_used(${senderDid}, ${now}) as used`;
  return { pendingUploads: Number(row?.n ?? 0), bytesReserved: Number(row?.used ?? 0) };
}

export interface ReserveRules {
  enforceMembership: boolean;
  maxPending: number;
  /** The byte quota per rolling day; 0: none (nothing is counted). */
  maxBytesPerDay: number;
}

export type ReserveOutcome =
  | { outcome: 'created' | 'forbidden' | 'rate_limited' }
  /** `retryAfter`: seconds until the reservation fits the quota. */
  | { outcome: 'over_quota'; retryAfter: number };

/**
 * The whole reservation in one statement (sql/00007 `reserve_upload`): membership, then under the
 * sender's advisory lock the byte quota, the pending cap, the insert and the quota charge. A
 * refusal writes nothing and charges nothing.
 */
export async function reserveUploadRow(sql: Tx, u: Omit<UploadRow, 'state'>, rules: ReserveRules): Promise<ReserveOutcome> {
  const [row] = await sql<{ outcome: ReserveOutcome['outcome']; retry_after: number | null }[]>`
    select outcome, retry_after from reserve_upload(
      ${u.messageId}, ${u.senderDid}, ${u.convoId}, ${u.blobKey}, ${u.size}, ${u.md5}, ${u.sha256},
      ${u.contentType}, ${u.multipartUploadId}, ${u.partSize}, ${u.createdAt}, ${u.commitDeadline},
      ${u.urlsValidUntil}, ${rules.enforceMembership}, ${rules.maxPending}, ${rules.maxBytesPerDay})`;
  return outcome(row!.outcome, row!.retry_after);
}

function outcome(o: ReserveOutcome['outcome'], retryAfter: number | null): ReserveOutcome {
  return o === 'over_quota' ? { outcome: o, retryAfter: retryAfter! } : { outcome: o };
}

/**
 * What `reserveUploadRow` would answer now for `size` bytes, without the lock, the insert or the
 * charge: multipart reservations ask first, before they create a multipart upload in the store.
 */
export async function reservationAllowed(
  sql: Tx,
  req: { senderDid: string; convoId: string; size: number; now: Date },
  rules: ReserveRules,
): Promise<ReserveOutcome> {
  const { senderDid, convoId, size, now } = req;
  const [row] = await sql<{ member: boolean; wait: number; open: number }[]>`
    select (not ${rules.enforceMembership}::boolean
            or exists (select 1 from convo_members where convo_id = ${convoId} and member_did = ${senderDid})) as member,
           case when ${rules.maxBytesPerDay}::bigint > 0
                then quota_wait(${senderDid}, ${now}, ${size}, ${rules.maxBytesPerDay}) else 0 end as wait,
           open_uploads(${senderDid}, ${now}, ${rules.maxPending}) as open`;
  if (!row!.member) return outcome('forbidden', null);
  if (row!.wait > 0) return outcome('over_quota', row!.wait);
  return outcome(Number(row!.open) >= rules.maxPending ? 'rate_limited' : 'created', null);
}

export async function getUpload(sql: Tx, messageId: string): Promise<UploadRow | null> {
  const [row] = await sql`select * from uploads where message_id = ${messageId}`;
  return row ? toUpload(row) : null;
}

export interface CommitCandidate {
  upload: UploadRow;
  /** Under enforced membership: is the uploader a member now (always true when not enforced). */
  senderIsMember: boolean;
  /** Under enforced membership: is any of the given recipients not a member now. */
  hasOutsiders: boolean;
  /** Multipart: the declared part MD5s in part order (upload_parts), possibly fewer than the parts. */
  partMd5s: string[];
}

/**
 * The upload a commit is about, with the membership answers the commit would get now: one
 * statement before the HEAD, so a refused commit fails early. The commit itself asks again under
 * the conversation's lock.
 */
export async function getUploadForCommit(
  sql: Tx,
  messageId: string,
  check: { enforceMembership: boolean; recipients: readonly string[] | null },
): Promise<CommitCandidate | null> {
  const enforce = check.enforceMembership;
  const recipients = check.recipients === null ? null : sql.array([...check.recipients]);
  const [row] = await sql`
    select u.*,
      (not ${enforce}::boolean
       or exists (select 1 from convo_members m where m.convo_id = u.convo_id and m.member_did = u.sender_did)) as sender_is_member,
      (${enforce}::boolean and exists (
         select 1 from unnest(${recipients}::text[]) d
         where not exists (select 1 from convo_members m where m.convo_id = u.convo_id and m.member_did = d))) as has_outsiders,
      (select coalesce(array_agg(p.md5 order by p.part_number), '{}') from upload_parts p where p.message_id = u.message_id) as part_md5s
    from uploads u where u.message_id = ${messageId}`;
  if (!row) return null;
  return {
    upload: toUpload(row),
    senderIsMember: row.sender_is_member as boolean,
    hasOutsiders: row.has_outsiders as boolean,
    partMd5s: row.part_md5s as string[],
  };
}

/** Moves a pending upload to a final state; false when it was no longer pending. */
export async function finishUpload(sql: Tx, messageId: string, state: Exclude<UploadState, 'pending'>, at: Date): Promise<boolean> {
  const rows = await sql`
    update uploads set state = ${state}, updated_at = ${at}
    where message_id = ${messageId} and state = 'pending'
    returning message_id`;
  return rows.length === 1;
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
