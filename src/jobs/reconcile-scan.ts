// The bucket audit: strays and missing objects, in one walk over the bucket: each day prefix
// `m/yyyy/mm/dd/` of the retention window is listed page by page, and each page is merged with the
// message rows whose keys fall in the same key range. Memory holds one page of keys and one batch of
// rows, never the bucket. One ListObjectsV2 (Class A) per 1000 objects is the whole cost: no HEADs.
// Routine passes never list; the audit runs on its own schedule and a bounded number of keys a pass.
import { getAuditPosition, keysWithLiveRows, messagesInKeyRange, saveAuditPosition, type KeyedMessage } from '../db/reconcile.js';
import { dayPrefix } from '../ids.js';
import type { ListedObject } from '../store/store.js';
import { cutoffs, DAY_MS, EXPIRY_MARGIN_MS, messageDeletableAfter } from '../lifecycle.js';
import { proceed, type Pass } from './reconcile-pass.js';
import { add, MAX_REPORTED_IDS } from './reconcile-report.js';
/** The keys the broker writes; anything else under a day prefix has no row by construction. */
const KEY_RE = /^m\/\d{4}\/\d{2}\/\d{2}\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Above every key under a prefix: key characters after it are [0-9a-f-], all below 'g'. */
const PREFIX_END = 'g';

/** `m/<yyyy>/<mm>/<dd>/`: the part of a blob key that names its reservation's UTC date. */
export const keyPrefixOfDay = (d: Date): string => `m/${dayPrefix(d)}`;

/**
 * The day prefixes that can hold a live message's object: keys carry the reservation date, and a
 * reservation commits up to the commit window (+ margin) after it, so the window starts that much
 * before the retention cut-off. Oldest first: key order, so one stored key is the whole position.
 */
export function scanDays(p: Pass): string[] {
  const first = cutoffs(p.app.config, p.now).retention.getTime() - p.app.config.commitWindowSeconds * 1000 - EXPIRY_MARGIN_MS;
  const days: string[] = [];
  for (let d = Math.floor(p.now.getTime() / DAY_MS) * DAY_MS; d + DAY_MS > first; d -= DAY_MS) days.push(keyPrefixOfDay(new Date(d)));
  return days.reverse();
}

/** The stored position's name: one audit walk per database. */
const AUDIT = 'bucket';

/**
 * The audit: strays and missing objects, by listing the bucket. Incremental: it continues after the
 * stored position, lists at most `maxKeys` keys (whole pages), and stores where it stopped; a walk
 * that reaches the newest day finishes a cycle, sets the missing-objects gauge for the whole
 * cycle, and the next audit starts over at the oldest day of the window.
 */
export async function auditBucket(p: Pass): Promise<void> {
  const stored = await getAuditPosition(p.app.sql, AUDIT);
  const days = scanDays(p);
  // A position older than the window (retention moved on) restarts at the window's first day.
  let after = stored.afterKey !== null && stored.afterKey >= days[0]! ? stored.afterKey : null;
  let missing = after === null ? 0 : stored.missing;
  let strayBudget = p.limit;
  let listedHere = 0;
  const save = async (afterKey: string | null) => {
    p.report.audit = { position: afterKey, cycleComplete: afterKey === null };
    if (!p.dryRun) await saveAuditPosition(p.app.sql, AUDIT, { afterKey, missing: afterKey === null ? 0 : missing });
  };
  for (const prefix of days) {
    if (after !== null && after >= prefix + PREFIX_END) continue; // a day already walked
    let next: string | null = null;
    let lo = after !== null && after > prefix ? after : prefix;
    do {
      if (listedHere >= p.maxKeys) {
        p.report.complete = false;
        return save(lo);
      }
      if (!(await proceed(p))) return save(lo);
      // Never past the bound: the last page of a pass asks only for what is left of it.
      const maxKeys = Math.min(p.pageSize, p.maxKeys - listedHere);
      const page = await p.app.store.list({ prefix, next, startAfter: lo === prefix ? null : lo, maxKeys });
      next = page.next;
      listedHere += page.objects.length;
      p.report.listed += page.objects.length;
      p.onProgress?.({ phase: 'strays', prefix, listed: p.report.listed });
      // The range this page answers for: up to its last key, or to the end of the prefix.
      const lastKey = [...page.objects].reverse().find((o) => KEY_RE.test(o.key))?.key;
      const hi = next === null ? prefix + PREFIX_END : (lastKey ?? lo);
      const withMessage = await mergeMessages(p, page.objects, lo, hi, (m) => {
        missing++;
        p.report.missing.count++;
        if (p.report.missing.messageIds.length < MAX_REPORTED_IDS) p.report.missing.messageIds.push(m.id);
      });
      lo = hi;
      strayBudget -= await removeStrays(p, page.objects, withMessage, strayBudget);
    } while (next !== null);
    after = prefix + PREFIX_END;
  }
  // Only a walk that covered the whole window may say how many are missing.
  if (!p.dryRun) p.app.metrics.reconcileMissing.set(missing);
  await save(null);
}

/** Message rows keyed in (lo, hi]: returns the listed keys that have one, reports the rest. */
async function mergeMessages(
  p: Pass,
  objects: readonly ListedObject[],
  lo: string,
  hi: string,
  onMissing: (m: KeyedMessage) => void,
): Promise<Set<string>> {
  const listed = new Set(objects.map((o) => o.key));
  const withMessage = new Set<string>();
  if (hi <= lo) return withMessage;
  // A message committed after this page was listed had its object HEADed at commit: only rows
  // older than the margin can be judged against the listing.
  const judged = p.now.getTime() - EXPIRY_MARGIN_MS;
  const due = (m: KeyedMessage) => messageDeletableAfter(p.app.config, m) < p.now;
  let afterKey: string | null = null;
  for (;;) {
    const rows = await messagesInKeyRange(p.app.sql, { lo, hi, afterKey, limit: p.batch });
    for (const m of rows) {
      if (listed.has(m.blobKey)) withMessage.add(m.blobKey);
      // Rows due for deletion (retention, acked) may have lost their object to an interrupted pass.
      else if (m.createdAt.getTime() < judged && !due(m)) onMissing(m);
    }
    if (rows.length < p.batch) return withMessage;
    afterKey = rows[rows.length - 1]!.blobKey;
  }
}

/** Deletes the page's objects that have no live row and are older than the commit window + margin. */
async function removeStrays(p: Pass, objects: readonly ListedObject[], withMessage: Set<string>, budget: number): Promise<number> {
  const old = cutoffs(p.app.config, p.now).stray;
  const candidates = objects.filter((o) => !withMessage.has(o.key) && o.lastModified < old);
  if (candidates.length === 0 || budget <= 0) {
    if (candidates.length > 0) p.report.complete = false;
    return 0;
  }
  // An upload that is pending (or committed) owns its key; finished uncommitted ones never will.
  const live = await keysWithLiveRows(p.app.sql, candidates.map((o) => o.key));
  let strays = candidates.filter((o) => !live.has(o.key));
  if (strays.length > budget) {
    strays = strays.slice(0, budget);
    p.report.complete = false;
  }
  if (strays.length === 0) return 0;
  if (p.dryRun) {
    add(p.report.strays, strays);
    return strays.length;
  }
  const { failed } = await p.app.store.deleteMany(strays.map((o) => o.key));
  const failedKeys = new Set(failed.map((f) => f.key));
  add(p.report.strays, strays.filter((o) => !failedKeys.has(o.key)));
  if (failed.length > 0) {
    p.report.complete = false;
    p.report.errors.push({ category: 'strays', message: `${failed.length} stray objects not deleted (${failed[0]!.code})` });
  }
  return strays.length;
}
