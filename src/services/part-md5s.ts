// Verified multipart parts: the MD5s a client declares for its parts are signed into every part
// URL (the store refuses other bytes), and at commit the object's multipart ETag is compared with
// them. No Koa and no store calls here.
import { createHash } from 'node:crypto';
import type { AppContext } from '../context.js';
import type { PartMd5 } from '../db/upload-parts.js';
import type { UploadRow } from '../db/uploads.js';
import { invalidField } from '../errors.js';

/** The ETag a store gives a completed multipart object: hex MD5 of the parts' binary MD5s, "-N". */
export function multipartEtag(md5s: readonly string[]): string {
  const h = createHash('md5');
  for (const m of md5s) h.update(Buffer.from(m, 'base64'));
  return `${h.digest('hex')}-${md5s.length}`;
}

const MULTIPART_ETAG = /^[0-9a-f]{32}-\d+$/;

/** Reservation: `part_md5s` must name every part of a multipart upload (and only of one). */
export function reservedPartMd5s(partMd5sInput: readonly string[] | undefined, partCount: number | null): PartMd5[] {
  if (partMd5sInput === undefined) return [];
  if (partCount === null) {
    throw invalidField('body', '/part_md5s', 'not multipart', 'body/part_md5s applies to multipart uploads only (size above multipart_threshold_bytes).');
  }
  if (partMd5sInput.length !== partCount) {
    throw invalidField('body', '/part_md5s', `must have ${partCount} items`, `body/part_md5s must hold the MD5 of each of the ${partCount} parts of part_size_bytes.`);
  }
  return partMd5sInput.map((md5, i) => ({ partNumber: i + 1, md5 }));
}

/** /urls: `part_md5s` pairs with `part_numbers`, item by item. */
export function requestedPartMd5s(partNumbers: readonly number[] | undefined, partMd5sInput: readonly string[] | undefined): PartMd5[] {
  if (partMd5sInput === undefined) return [];
  if (partNumbers === undefined || partNumbers.length !== partMd5sInput.length) {
    throw invalidField('body', '/part_md5s', 'must pair with part_numbers', 'body/part_md5s must hold one MD5 for each of body/part_numbers, in the same order.');
  }
  return partNumbers.map((partNumber, i) => ({ partNumber, md5: partMd5sInput[i]! }));
}

/**
 * Whether a completed multipart object is the one the declared part MD5s describe (`declared`: in
 * part order): true or false when every part has one, null when some part has none (then only the
 * size is known). A store whose ETag is not of the multipart form cannot be checked this way: null, logged.
 */
export function multipartObjectMatches(app: AppContext, u: UploadRow, etag: string, declared: readonly string[]): boolean | null {
  // Part numbers are unique and at most the part count, so as many MD5s as parts means parts 1..N.
  if (declared.length < Math.ceil(u.size / u.partSize!)) return null;
  const actual = etag.toLowerCase();
  if (!MULTIPART_ETAG.test(actual)) {
    app.log.warn({ messageId: u.messageId, etag }, 'the store gave a multipart object an ETag that is not an MD5 of part MD5s; parts not compared');
    return null;
  }
  return multipartEtag(declared) === actual;
}
