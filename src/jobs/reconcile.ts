// One reconciliation pass: a plain function of the context and a clock reading, so the scheduler,
// the CLI and the tests all call it directly.
// Order of every deletion: make the row say "not live" first (expired), or pick only rows that
// can never become live again (past retention, fully acked, already finished); then delete the
// bytes; then record it (cleaned_at) or drop the rows. A pass that dies anywhere in between
// leaves rows that the next pass picks up again, so it is idempotent and resumable.
import type { AppContext } from '../context.js';
import { recordReconcileOutcome } from '../metrics.js';
import {
  deleteMessages,
  expirePendingUploads,
  listExpirableUploads,
  listFullyAckedMessages,
  listMessagesPastRetention,
  listUncleanedUploads,
  markUploadsCleaned,
  pruneFinishedUploads,
  pruneQuotaHours,
  type Cursor,
  type MessageToDelete,
  type UploadToClean,
} from '../db/reconcile.js';
import { tryLease, type Lease } from '../db/leases.js';
import { cutoffs } from '../lifecycle.js';
import { countingStore, proceed, type Pass } from './reconcile-pass.js';
import { add, describe, emptyReport, type Category, type Progress, type ReconcileReport } from './reconcile-report.js';
import { auditBucket } from './reconcile-scan.js';

/** Rows per statement and keys per DeleteObjects request (the store allows 1000). */
export const BATCH = 500;
/** Default cap on items one category handles per pass; the next pass continues. */
export const DEFAULT_LIMIT = 10_000;
export const SKIPPED_LOCKED = 'another pass holds the lease';
/** The reconcile lease's lifetime; renewed every third of it while the pass runs. */
export const LEASE_TTL_SECONDS = 60;
export const RECONCILE_LEASE = 'reconcile';

export interface ReconcileOptions {
  /** The clock reading to work from; default app.clock.now(). */
  now?: Date;
  /** Count what would be done, change nothing. */
  dryRun?: boolean;
  /** Most items one category handles in this pass (default DEFAULT_LIMIT). */
  limit?: number;
  /** Stops the pass between batches (scheduler shutdown). */
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Objects per listing request (1000; tests use small pages to prove paging). */
  pageSize?: number;
  /** Rows per statement (BATCH; tests lower it to prove batching). */
  batch?: number;
  /**
   * The bucket audit instead of the routine pass: strays and missing objects, walked incrementally
   * from the stored position (RECONCILE_AUDIT_CRON, `npm run reconcile -- --audit`).
   */
  audit?: boolean;
  /** Audit: most keys listed in this pass (default AUDIT_MAX_KEYS); the next audit continues. */
  maxKeys?: number;
}

/** Keys one audit pass lists at most: 1000 LIST requests. */
export const AUDIT_MAX_KEYS = 1_000_000;

export async function reconcile(app: AppContext, options: ReconcileOptions = {}): Promise<ReconcileReport> {
  const started = Date.now();
  const now = options.now ?? app.clock.now();
  const dryRun = options.dryRun ?? false;
  const limit = options.limit ?? DEFAULT_LIMIT;
  const report = emptyReport(now, dryRun, limit, options.audit ? 'audit' : 'routine');
  const pass: Pass = {
    // Every store request of the pass is counted in its report.
    app: { ...app, store: countingStore(app.store, report.storeOps) },
    leaseHeld: async () => true,
    now,
    dryRun,
    limit,
    pageSize: options.pageSize ?? 1000,
    maxKeys: options.maxKeys ?? AUDIT_MAX_KEYS,
    batch: Math.min(options.batch ?? BATCH, 1000),
    report,
    signal: options.signal,
    onProgress: options.onProgress,
  };

  let lease: Lease | null;
  try {
    lease = await tryLease(app.sql, RECONCILE_LEASE, LEASE_TTL_SECONDS);
  } catch (err) {
    recordReconcileOutcome(app.metrics, 'error', (Date.now() - started) / 1000);
    throw err;
  }
  if (lease === null) {
    report.skipped = SKIPPED_LOCKED;
    report.complete = false;
    recordReconcileOutcome(app.metrics, 'skipped', null);
    app.log.info({ reconcile: report }, `reconcile pass skipped: ${SKIPPED_LOCKED}`);
    return report;
  }
  pass.leaseHeld = lease.held;
  report.startedAt = new Date().toISOString();
  try {
    if (options.audit) await phase(pass, 'strays', auditBucket);
    else await routine(pass);
  } finally {
    report.finishedAt = new Date().toISOString();
    await lease.release();
  }
  report.durationMs = Date.now() - started;
  record(app, report);
  return report;
}

/**
 * From the rows alone: every key that can hold bytes was reserved through a row first, so expired,
 * aborted, rejected, retained-out and acknowledged objects are found without listing the bucket.
 */
async function routine(pass: Pass): Promise<void> {
  const { app, now } = pass;
  await phase(pass, 'expired_uploads', expireUploads);
  await phase(pass, 'cleaned_uploads', sweepUploads);
  await phase(pass, 'retention', (p) =>
    removeMessages(p, 'retention', (after, n) => listMessagesPastRetention(app.sql, { before: cutoffs(app.config, now).retention, after, limit: n })),
  );
  if (app.config.deleteAfterAck) {
    await phase(pass, 'acked', (p) =>
      removeMessages(p, 'acked', (after, n) => listFullyAckedMessages(app.sql, { before: cutoffs(app.config, now).acked, after, limit: n })),
    );
  }
  await phase(pass, 'pruned_uploads', pruneUploads);
  await phase(pass, 'quota_hours', pruneQuota);
}

/** Metrics and the pass's one log line. */
function record(app: AppContext, r: ReconcileReport): void {
  const outcome = r.errors.length > 0 ? 'error' : r.dryRun ? 'dry_run' : 'ok';
  recordReconcileOutcome(app.metrics, outcome, r.durationMs / 1000);
  if (!r.dryRun) {
    const tallies: [Category, { count: number; bytes?: number }][] = [
      ['expired_uploads', r.expiredUploads],
      ['cleaned_uploads', r.cleanedUploads],
      ['pruned_uploads', r.prunedUploads],
      ['quota_hours', r.prunedQuotaHours],
      ['retention', r.retention],
      ['acked', r.acked],
      ['strays', r.strays],
      ['missing', r.missing],
    ];
    for (const [category, t] of tallies) {
      app.metrics.reconcileItems.inc({ category }, t.count);
      if (t.bytes) app.metrics.reconcileBytes.inc({ category }, t.bytes);
    }
    if (r.errors.length === 0) app.metrics.reconcileLastSuccess.set(Date.now() / 1000);
  }
  // Missing objects and failures are what an operator must see: the whole line goes out at error.
  if (r.missing.count > 0 || r.errors.length > 0) {
    app.log.error({ reconcile: r }, `reconcile pass: ${r.missing.count} missing objects, ${r.errors.length} errors`);
  } else {
    app.log.info({ reconcile: r }, 'reconcile pass');
  }
}

/** Runs one category; an error ends that category only, and the next pass retries it. */
async function phase(pass: Pass, category: Category, run: (p: Pass) => Promise<void>): Promise<void> {
  if (!(await proceed(pass))) return;
  try {
    await run(pass);
  } catch (err) {
    pass.report.complete = false;
    pass.report.errors.push({ category, message: describe(err) });
  }
}

async function expireUploads(p: Pass): Promise<void> {
  const { app, report } = p;
  const cutoff = cutoffs(app.config, p.now).expiry;
  let remaining = p.limit;
  let after: Cursor = null;
  while (remaining > 0 && (await proceed(p))) {
    const n = Math.min(p.batch, remaining);
    if (p.dryRun) {
      const rows = await listExpirableUploads(app.sql, { cutoff, after, limit: n });
      if (rows.length === 0) return;
      add(report.expiredUploads, rows);
      add(report.cleanedUploads, rows);
      remaining -= rows.length;
      const last = rows[rows.length - 1]!;
      after = { at: last.commitDeadline, id: last.messageId };
      continue;
    }
    // Marked first, committed to the database, and only then are the bytes touched.
    const rows = await expirePendingUploads(app.sql, { cutoff, at: p.now, limit: n });
    if (rows.length === 0) return;
    add(report.expiredUploads, rows);
    remaining -= rows.length;
    await cleanUploads(p, rows);
  }
  p.report.complete = false;
}

async function sweepUploads(p: Pass): Promise<void> {
  let remaining = p.limit;
  let after: Cursor = null;
  while (remaining > 0 && (await proceed(p))) {
    const rows = await listUncleanedUploads(p.app.sql, { now: p.now, after, limit: Math.min(p.batch, remaining) });
    if (rows.length === 0) return;
    const last = rows[rows.length - 1]!;
    after = { at: last.updatedAt, id: last.messageId };
    remaining -= rows.length;
    if (p.dryRun) add(p.report.cleanedUploads, rows);
    else await cleanUploads(p, rows);
  }
  p.report.complete = false;
}

/** Removes the bytes of finished uploads, then records which are gone (cleaned_at). */
async function cleanUploads(p: Pass, rows: readonly UploadToClean[]): Promise<void> {
  const { store } = p.app;
  const failed = new Set<string>();
  let lastError = '';
  // Stale multipart uploads are found from our own rows: R2's emulator cannot list them.
  for (const r of rows) {
    if (r.multipartUploadId === null) continue;
    try {
      await store.abortMultipart(r.blobKey, r.multipartUploadId);
    } catch (err) {
      failed.add(r.blobKey);
      lastError = describe(err);
    }
  }
  // Every key, multipart or not: a completed multipart upload leaves an object behind.
  const result = await store.deleteMany(rows.map((r) => r.blobKey));
  for (const f of result.failed) {
    failed.add(f.key);
    lastError = f.code;
  }
  const done = rows.filter((r) => !failed.has(r.blobKey));
  await markUploadsCleaned(p.app.sql, done.map((r) => r.messageId), p.now);
  add(p.report.cleanedUploads, done);
  if (failed.size > 0) {
    p.report.complete = false;
    p.report.errors.push({ category: 'cleaned_uploads', message: `${failed.size} objects not removed (${lastError}); the next pass retries` });
  }
}

/** Deletes the objects of a list of messages, then the rows of those whose object is gone. */
async function removeMessages(
  p: Pass,
  category: 'retention' | 'acked',
  list: (after: Cursor, limit: number) => Promise<MessageToDelete[]>,
): Promise<void> {
  const tally = category === 'retention' ? p.report.retention : p.report.acked;
  let remaining = p.limit;
  let after: Cursor = null;
  while (remaining > 0 && (await proceed(p))) {
    const rows = await list(after, Math.min(p.batch, remaining));
    if (rows.length === 0) return;
    const last = rows[rows.length - 1]!;
    // Keyset: rows whose object could not be deleted stay, and this pass moves past them.
    after = { at: last.at, id: last.id };
    remaining -= rows.length;
    if (p.dryRun) {
      add(tally, rows);
      continue;
    }
    const { failed } = await p.app.store.deleteMany(rows.map((r) => r.blobKey));
    const failedKeys = new Set(failed.map((f) => f.key));
    const done = rows.filter((r) => !failedKeys.has(r.blobKey));
    await deleteMessages(p.app.sql, done.map((r) => r.id));
    add(tally, done);
    if (failed.length > 0) {
      p.report.complete = false;
      p.report.errors.push({ category, message: `${failed.length} objects not deleted (${failed[0]!.code}); their rows stay for the next pass` });
    }
  }
  p.report.complete = false;
}

async function pruneUploads(p: Pass): Promise<void> {
  const before = cutoffs(p.app.config, p.now).retention;
  let remaining = p.limit;
  while (remaining > 0 && (await proceed(p))) {
    const n = Math.min(p.batch, remaining);
    const pruned = await pruneFinishedUploads(p.app.sql, { before, limit: p.dryRun ? remaining : n, dryRun: p.dryRun });
    p.report.prunedUploads.count += pruned;
    remaining -= pruned;
    if (p.dryRun || pruned < n) return;
  }
  p.report.complete = false;
}

/** Hours of the byte quota ledger that no reservation counts any more. */
async function pruneQuota(p: Pass): Promise<void> {
  const before = cutoffs(p.app.config, p.now).quotaHours;
  let remaining = p.limit;
  while (remaining > 0 && (await proceed(p))) {
    const n = Math.min(p.batch, remaining);
    const pruned = await pruneQuotaHours(p.app.sql, { before, limit: p.dryRun ? remaining : n, dryRun: p.dryRun });
    p.report.prunedQuotaHours.count += pruned;
    remaining -= pruned;
    if (p.dryRun || pruned < n) return;
  }
  p.report.complete = false;
}
