// The report of one reconciliation pass.

export interface Tally {
  count: number;
  /** Bytes: declared sizes for uploads and messages, listed sizes for strays. */
  bytes: number;
}

export type Category = 'expired_uploads' | 'cleaned_uploads' | 'pruned_uploads' | 'quota_hours' | 'retention' | 'acked' | 'strays' | 'missing';

/** Requests the pass made to the bucket (each a billed operation on R2). */
export interface StoreOps {
  /** ListObjectsV2 (class A). */
  list: number;
  /** DeleteObjects requests (up to 1000 keys each) and single deletes. */
  delete: number;
  head: number;
  /** AbortMultipartUpload. */
  abort: number;
}

export interface ReconcileReport {
  /** routine: from the rows only, never lists the bucket. audit: the incremental bucket walk. */
  kind: 'routine' | 'audit';
  /** The clock reading the pass worked from (RFC 3339). */
  now: string;
  dryRun: boolean;
  /** Most items one category handles in one pass. */
  limit: number;
  /** Wall-clock times (RFC 3339) the pass held the lease: from taking it to just before release. */
  startedAt: string | null;
  finishedAt: string | null;
  /** Why the pass did nothing, or null when it ran. */
  skipped: string | null;
  /** False when a limit, a stop request or an error left work for the next pass. */
  complete: boolean;
  /** Pending uploads past commit_deadline + margin, marked expired. */
  expiredUploads: Tally;
  /** Expired, aborted or rejected uploads whose object or multipart upload was removed. */
  cleanedUploads: Tally;
  /** Finished upload rows older than the retention period, deleted. */
  prunedUploads: { count: number };
  /** Hour rows of the byte quota ledger that have left the rolling window, deleted. */
  prunedQuotaHours: { count: number };
  /** Messages older than RETENTION_DAYS: object, then rows, deleted. */
  retention: Tally;
  /** Messages every recipient acknowledged more than the grace period ago (DELETE_AFTER_ACK). */
  acked: Tally;
  /** Objects with no row, older than the commit window + margin, deleted. */
  strays: Tally;
  /** Live messages whose object is gone: reported, never deleted. */
  missing: { count: number; messageIds: string[] };
  /** Objects listed while looking for strays and missing objects (audit). */
  listed: number;
  /**
   * Audit only: the key the walk stopped after (null: it reached the end of the window and the
   * next audit starts a new cycle), and whether this pass finished a cycle.
   */
  audit: { position: string | null; cycleComplete: boolean } | null;
  storeOps: StoreOps;
  errors: { category: Category | 'lock'; message: string }[];
  durationMs: number;
}

export interface Progress {
  phase: Category;
  /** The day prefix being listed, while listing. */
  prefix?: string;
  listed: number;
}

/** The report keeps this many ids; the count is always exact. */
export const MAX_REPORTED_IDS = 100;

export function emptyReport(now: Date, dryRun: boolean, limit: number, kind: ReconcileReport['kind'] = 'routine'): ReconcileReport {
  const zero = (): Tally => ({ count: 0, bytes: 0 });
  return {
    kind,
    now: now.toISOString(),
    dryRun,
    limit,
    startedAt: null,
    finishedAt: null,
    skipped: null,
    complete: true,
    expiredUploads: zero(),
    cleanedUploads: zero(),
    prunedUploads: { count: 0 },
    prunedQuotaHours: { count: 0 },
    retention: zero(),
    acked: zero(),
    strays: zero(),
    missing: { count: 0, messageIds: [] },
    listed: 0,
    audit: null,
    storeOps: { list: 0, delete: 0, head: 0, abort: 0 },
    errors: [],
    durationMs: 0,
  };
}

export function add(t: Tally, items: readonly { size: number }[]): void {
  t.count += items.length;
  for (const i of items) t.bytes += i.size;
}

/** A one-line description of an error for the report: the pass never leaks a stack into it. */
export function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; code?: string };
  const text = e?.message || e?.code || String(err);
  return e?.name && e.name !== 'Error' ? `${e.name}: ${text}` : text;
}

/** Human summary for the command line. */
export function formatReport(r: ReconcileReport): string {
  if (r.skipped) return `reconcile ${r.kind === 'audit' ? 'audit ' : ''}skipped: ${r.skipped}`;
  const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
  const verb = r.dryRun ? 'would be ' : '';
  const lines = [
    `reconcile ${r.kind === 'audit' ? 'audit ' : ''}${r.dryRun ? 'dry run ' : ''}at ${r.now} (${r.durationMs} ms, ${r.complete ? 'complete' : 'incomplete: run again'})`,
    `  expired uploads  ${r.expiredUploads.count} ${verb}marked expired (${mib(r.expiredUploads.bytes)} declared)`,
    `  cleaned uploads  ${r.cleanedUploads.count} ${r.dryRun ? 'would have' : 'had'} their object or multipart upload removed (${mib(r.cleanedUploads.bytes)})`,
    `  pruned uploads   ${r.prunedUploads.count} finished upload rows ${verb}deleted`,
    `  quota ledger     ${r.prunedQuotaHours.count} hour rows older than the rolling day ${verb}deleted`,
    `  retention        ${r.retention.count} messages ${verb}deleted (${mib(r.retention.bytes)})`,
    `  fully acked      ${r.acked.count} messages ${verb}deleted (${mib(r.acked.bytes)})`,
    `  strays           ${r.strays.count} objects without rows ${verb}deleted (${mib(r.strays.bytes)}); ${r.listed} objects listed`,
    `  missing          ${r.missing.count} live messages have no object${r.missing.count ? `: ${r.missing.messageIds.join(', ')}` : ''}`,
  ];
  const o = r.storeOps;
  lines.push(`  store requests   ${o.list} list, ${o.delete} delete, ${o.head} head, ${o.abort} abort`);
  if (r.audit) lines.push(`  audit position   ${r.audit.cycleComplete ? 'cycle complete; the next audit starts over' : `continues after ${r.audit.position ?? 'the start'}`}`);
  for (const e of r.errors) lines.push(`  error (${e.category}): ${e.message}`);
  return lines.join('\n');
}
