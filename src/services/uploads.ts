// Reservations: reserve → presigned PUT (or multipart part URLs) → complete → commit elsewhere.
// No Koa and no SQL text here; the store is called only outside transactions.
import type { Caller } from '../auth.js';
import type { CompletedPart, CompletedUpload, FreshUrls, Reservation, ReserveRequest, UploadInfo, UploadInstructions } from '../client/wire.js';
import type { AppContext } from '../context.js';
import {
  closeUrls,
  extendUrls,
  finishUpload,
  getUpload,
  markCleaned,
  reservationAllowed,
  reserveUploadRow,
  type ReserveOutcome,
  type UploadRow,
} from '../db/uploads.js';
import { conflict, forbidden, invalidField, invalidRequest, notFound, payloadTooLarge, quotaExceeded, rateLimited, uploadExpired } from '../errors.js';
import { blobKeyFor, uuidv7 } from '../ids.js';
import { declarePartMd5s, partMd5s } from '../db/upload-parts.js';
import { StoreRejected, type PresignedRequest } from '../store/store.js';
import { requestedPartMd5s, reservedPartMd5s } from './part-md5s.js';

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
/** At most this many part URLs in one answer (README, "API reference"). */
export const MAX_PART_URLS = 100;

/** Uploads a caller may see: its own, or any for a service. Anything else is "not found". */
export async function visibleUpload(app: AppContext, caller: Caller, id: string, opts: { serviceMay: boolean }): Promise<UploadRow> {
  const upload = await getUpload(app.sql, id);
  if (upload === null) throw notFound('upload');
  if (upload.senderDid !== caller.did && !(opts.serviceMay && caller.isService)) throw notFound('upload');
  return upload;
}

export const partCount = (u: Pick<UploadRow, 'size' | 'partSize'>) => Math.ceil(u.size / u.partSize!);
const partLength = (u: Pick<UploadRow, 'size' | 'partSize'>, n: number) =>
  n < partCount(u) ? u.partSize! : u.size - u.partSize! * (partCount(u) - 1);

/** The parts an answer carries URLs for when the request names none. */
const firstParts = (u: Pick<UploadRow, 'size' | 'partSize'>) => Array.from({ length: Math.min(MAX_PART_URLS, partCount(u)) }, (_, i) => i + 1);

/** URL lifetime: the configured TTL, cut at the commit deadline (invariant 5). */
function urlLifetime(app: AppContext, upload: Pick<UploadRow, 'commitDeadline'>, now: Date): number {
  const untilDeadline = Math.floor((upload.commitDeadline.getTime() - now.getTime()) / 1000);
  if (untilDeadline < 1) throw uploadExpired();
  return Math.min(app.config.uploadUrlTtlSeconds, untilDeadline);
}

/**
 * Presigned URL(s) living `expiresIn` seconds; the row's urls_valid_until must already cover them.
 * `md5s`: the declared MD5 of each part that has one (signed into its URL).
 */
async function instructions(
  app: AppContext,
  u: UploadRow,
  now: Date,
  expiresIn: number,
  partNumbers: readonly number[] | null,
  md5s: ReadonlyMap<number, string>,
): Promise<{ expiresAt: Date; upload: UploadInstructions }> {
  if (u.multipartUploadId === null) {
    const p = await app.store.presignPut({ key: u.blobKey, size: u.size, md5: u.md5!, contentType: u.contentType, now, expiresIn });
    return { expiresAt: p.expiresAt, upload: { method: 'PUT', url: p.url, headers: p.headers } };
  }
  const count = partCount(u);
  const numbers = partNumbers ?? firstParts(u);
  let last: PresignedRequest | undefined;
  const parts = [];
  for (const n of numbers) {
    last = await app.store.presignPart({ key: u.blobKey, uploadId: u.multipartUploadId, partNumber: n, size: partLength(u, n), md5: md5s.get(n) ?? null, now, expiresIn });
    parts.push({ part_number: n, url: last.url, headers: last.headers });
  }
  const expiresAt = new Date(now.getTime() + expiresIn * 1000);
  return {
    expiresAt,
    upload: { method: 'MULTIPART', part_size: u.partSize!, part_count: count, parts },
  };
}

export async function reserveUpload(app: AppContext, caller: Caller, input: ReserveRequest): Promise<Reservation> {
  const { config } = app;
  if (input.size > config.maxMessageBytes) {
    throw payloadTooLarge(`Messages are limited to ${config.maxMessageBytes} bytes.`);
  }
  const multipart = input.size > config.multipartThresholdBytes;
  if (multipart && input.sha256 === undefined && config.requireSha256) {
    // Parts are checked only by size and MD5: the SHA-256 is what recipients verify the whole object against.
    throw invalidField('body', '/sha256', 'is required for a multipart upload', 'body/sha256 is required for multipart uploads (size above multipart_threshold_bytes).');
  }
  const declaredParts = reservedPartMd5s(input.part_md5s, multipart ? Math.ceil(input.size / config.partSizeBytes) : null);
  if (!multipart && input.md5 === undefined) {
    throw invalidField('body', '/md5', 'is required for a single PUT', 'body/md5 is required for uploads of up to multipart_threshold_bytes.');
  }
  if (config.maxBytesPerDay > 0 && input.size > config.maxBytesPerDay) {
    // It would not fit even on a day with nothing else reserved: waiting cannot help, so not a 429.
    throw payloadTooLarge(`A reservation is limited to the daily byte quota of ${config.maxBytesPerDay} bytes (MAX_BYTES_PER_DAY); this one can never fit.`);
  }
  const now = app.clock.now();
  const rules = { enforceMembership: config.membership === 'enforce', maxPending: config.maxPendingUploads, maxBytesPerDay: config.maxBytesPerDay };
  // A multipart upload is created in the store before its row: ask first, so a refused caller costs
  // the store nothing. The answer that counts is the reservation's own, under the sender's lock.
  if (multipart) refuse(await reservationAllowed(app.sql, { senderDid: caller.did, convoId: input.convo_id, size: input.size, now }, rules), config);

  const messageId = uuidv7(now);
  const blobKey = blobKeyFor(messageId, now);
  const contentType = input.content_type ?? DEFAULT_CONTENT_TYPE;
  const commitDeadline = new Date(now.getTime() + config.commitWindowSeconds * 1000);
  const expiresIn = urlLifetime(app, { commitDeadline }, now);
  const multipartUploadId = multipart ? await app.store.createMultipart(blobKey, contentType) : null;
  const row: UploadRow = {
    messageId,
    senderDid: caller.did,
    convoId: input.convo_id,
    blobKey,
    size: input.size,
    md5: multipart ? null : input.md5!,
    sha256: input.sha256 ?? null,
    contentType,
    multipartUploadId,
    partSize: multipart ? config.partSizeBytes : null,
    state: 'pending',
    createdAt: now,
    commitDeadline,
    urlsValidUntil: new Date(now.getTime() + expiresIn * 1000),
  };
  let outcome: ReserveOutcome | undefined;
  try {
    outcome = await reserveUploadRow(app.sql, row, rules);
  } finally {
    // A refused or failed reservation leaves no multipart upload behind.
    if (outcome?.outcome !== 'created' && multipartUploadId !== null) await app.store.abortMultipart(blobKey, multipartUploadId).catch(() => {});
  }
  refuse(outcome, config);
  // Multipart with declared part MD5s only: one more statement (single PUTs keep their one).
  await declarePartMd5s(app.sql, messageId, declaredParts);
  app.metrics.uploadsReserved.inc({ kind: multipart ? 'multipart' : 'single' });
  const md5s = new Map(declaredParts.map((p) => [p.partNumber, p.md5]));
  const { expiresAt, upload } = await instructions(app, row, now, expiresIn, null, md5s);
  return {
    message_id: messageId,
    blob_key: blobKey,
    state: 'pending',
    commit_deadline: row.commitDeadline.toISOString(),
    expires_at: expiresAt.toISOString(),
    upload,
  };
}

/** Seconds to wait at the pending-upload cap: about the time an upload takes to finish. */
const PENDING_CAP_RETRY_SECONDS = 30;

/** Maps a refused reservation to its error; 'created' passes. */
function refuse(r: ReserveOutcome, config: AppContext['config']): void {
  if (r.outcome === 'forbidden') throw forbidden('You are not a member of this conversation.');
  if (r.outcome === 'over_quota') {
    throw quotaExceeded(`This reservation would take you past your ${config.maxBytesPerDay} bytes a day (MAX_BYTES_PER_DAY); it fits again in ${r.retryAfter} seconds.`, r.retryAfter);
  }
  if (r.outcome === 'rate_limited') throw tooManyPending(config.maxPendingUploads);
}

const tooManyPending = (max: number) =>
  rateLimited(`You have ${max} uploads open: commit one, or abort one and wait for its upload URL to expire.`, PENDING_CAP_RETRY_SECONDS);

function requirePending(u: UploadRow): void {
  if (u.state === 'committed') throw conflict('This upload is already committed.');
  if (u.state !== 'pending') throw uploadExpired();
}

export async function refreshUrls(
  app: AppContext,
  caller: Caller,
  id: string,
  partNumbers: number[] | undefined,
  partMd5sInput?: string[],
): Promise<FreshUrls> {
  const u = await visibleUpload(app, caller, id, { serviceMay: false });
  requirePending(u);
  const now = app.clock.now();
  if (now > u.commitDeadline) throw uploadExpired();
  if (u.multipartUploadId === null && partNumbers !== undefined) {
    throw invalidField('body', '/part_numbers', 'not multipart', 'body/part_numbers applies to multipart uploads only.');
  }
  if (partNumbers !== undefined) {
    const count = partCount(u);
    const bad = partNumbers.findIndex((n) => n > count);
    if (bad >= 0) {
      throw invalidField('body', `/part_numbers/${bad}`, `must be at most ${count}`, `body/part_numbers/${bad} is beyond the last part (${count}).`);
    }
  }
  const declared = requestedPartMd5s(partNumbers, partMd5sInput);
  const expiresIn = urlLifetime(app, u, now);
  if (!(await extendUrls(app.sql, u.messageId, new Date(now.getTime() + expiresIn * 1000)))) {
    // It stopped being pending since we read it: committed meanwhile, or aborted or expired.
    const again = await getUpload(app.sql, u.messageId);
    throw again?.state === 'committed' ? conflict('This upload is already committed.') : uploadExpired();
  }
  let md5s = new Map<number, string>();
  if (u.multipartUploadId !== null) {
    // A part declared before keeps its MD5 in every later URL, whether or not this request repeats it.
    await declarePartMd5s(app.sql, u.messageId, declared);
    md5s = await partMd5s(app.sql, u.messageId, partNumbers ?? firstParts(u));
  }
  const { expiresAt, upload } = await instructions(app, u, now, expiresIn, partNumbers ?? null, md5s);
  return { expires_at: expiresAt.toISOString(), upload };
}

export async function completeUpload(app: AppContext, caller: Caller, id: string, parts: CompletedPart[]): Promise<CompletedUpload> {
  const u = await visibleUpload(app, caller, id, { serviceMay: false });
  if (u.multipartUploadId === null) {
    throw invalidRequest('Only multipart uploads are completed; commit a single PUT directly.');
  }
  if (u.state === 'committed') return { message_id: u.messageId, size: u.size };
  requirePending(u);
  if (app.clock.now() > u.commitDeadline) throw uploadExpired();
  const count = partCount(u);
  if (parts.length !== count || parts.some((p, i) => p.part_number !== i + 1)) {
    throw invalidField('body', '/parts', `must be parts 1..${count}`, `body/parts must list parts 1 to ${count} in order, each once.`);
  }
  // Completing twice is harmless: once the object exists with its size, the work is done.
  const head = await app.store.head(u.blobKey);
  if (head !== null && head.size === u.size) return { message_id: u.messageId, size: u.size };
  try {
    await app.store.completeMultipart(
      u.blobKey,
      u.multipartUploadId,
      // ETags copied from response headers may carry quotes or a stray CR: the store wants the value.
      parts.map((p) => ({ partNumber: p.part_number, etag: p.etag.trim().replace(/^"|"$/g, '') })),
    );
  } catch (err) {
    if (err instanceof StoreRejected) {
      if (err.storeCode === 'NoSuchUpload') throw uploadExpired();
      throw invalidField(
        'body',
        '/parts',
        err.storeCode,
        `The store refused to complete the upload (${err.storeCode}): check each part's ETag and that every part was uploaded.`,
      );
    }
    throw err;
  }
  return { message_id: u.messageId, size: u.size };
}

export async function describeUpload(app: AppContext, caller: Caller, id: string): Promise<UploadInfo> {
  const u = await visibleUpload(app, caller, id, { serviceMay: true });
  return {
    message_id: u.messageId,
    state: u.state,
    size: u.size,
    convo_id: u.convoId,
    commit_deadline: u.commitDeadline.toISOString(),
  };
}

/**
 * Abort: the row leaves `pending` first, so no commit can win afterwards; then the bytes go.
 * Uploader only: a service commits and manages membership, and has no business discarding a
 * user's upload, so it gets the stranger's 404.
 */
export async function abortUpload(app: AppContext, caller: Caller, id: string): Promise<void> {
  const u = await visibleUpload(app, caller, id, { serviceMay: false });
  if (u.state === 'committed') throw conflict('This upload is committed; it can no longer be aborted.');
  if (u.state === 'pending') {
    const now = app.clock.now();
    const moved = await finishUpload(app.sql, u.messageId, 'aborted', now);
    if (!moved) {
      const again = await getUpload(app.sql, u.messageId);
      if (again?.state === 'committed') throw conflict('This upload was committed meanwhile; it can no longer be aborted.');
      return;
    }
    await discardBytes(app, u);
  }
}

/** Deletes an uncommitted upload's object or multipart upload; the reconciler retries failures. */
export async function discardBytes(app: AppContext, u: UploadRow): Promise<void> {
  try {
    if (u.multipartUploadId !== null) {
      await app.store.abortMultipart(u.blobKey, u.multipartUploadId);
      await closeUrls(app.sql, u.messageId, app.clock.now());
    }
    await app.store.delete(u.blobKey);
    await markCleaned(app.sql, u.messageId, app.clock.now());
  } catch (err) {
    app.log.warn({ err, messageId: u.messageId }, 'could not delete the bytes of a finished upload; reconciliation will');
  }
}
