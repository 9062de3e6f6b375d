// The report of one reconciliation pass and the state its phases share.
import type { AppContext } from '../context.js';

export interface Tally {
  count: number;
  /** Bytes: declared sizes for uploads and messages, listed sizes for strays. */
  bytes: number;
}

export type Category = 'expired_uploads' | 'cleaned_uploads' | 'pruned_uploads' | 'retention' | 'acked' | 'strays' | 'missing';

export interface ReconcileReport {
  /** The clock reading the pass worked from (RFC 3339). */
  now: string;
  dryRun: boolean;
  /** Most items one category handles in one pass. */
  limit: number;
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
  /** Messages older than RETENTION_DAYS: object, then rows, deleted. */
  retention: Tally;
  /** Messages every recipient acknowledged more than the grace period ago (DELETE_AFTER_ACK). */
  acked: Tally;
  /** Objects with no row, older than the commit window + margin, deleted. */
  strays: Tally;
  /** Live messages whose object is gone: reported, never deleted. */
  missing: { count: number; messageIds: string[] };
  /** Objects listed while looking for strays and missing objects. */
  listed: number;
  errors: { category: Category | 'lock'; message: string }[];
  durationMs: number;
}

export interface Progress {
  phase: Category;
  /** The day prefix being listed, while listing. */
  prefix?: string;
  listed: number;
}

/** One pass in flight: the context, the clock reading and what it has done so far. */
export interface Pass {
  ctx: AppContext;
  now: Date;
  dryRun: boolean;
  limit: number;
  pageSize: number;
  batch: number;
  report: ReconcileReport;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Whether this pass still holds the reconcile lock. */
  lockHeld: () => Promise<boolean>;
  /** Set once the pass must stop (shutdown, or the lock was lost). */
  halted?: boolean;
}

/**
 * Margin past a deadline before the reconciler acts on it. The commit itself is race-free (it
 * locks the upload row); the margin absorbs clock skew between broker instances and a PUT that
 * started before its URL expired and is still streaming.
 */
export const EXPIRY_MARGIN_MS = 5 * 60_000;
/** Fully acknowledged messages stay this long, so a recipient that acked early can still re-fetch. */
export const ACK_GRACE_MS = 60 * 60_000;
const DAY_MS = 24 * 3600_000;

/** The cut-off instants of a pass, derived from its clock reading and the configuration. */
export function cutoffs(ctx: AppContext, now: Date) {
  const t = now.getTime();
  return {
    /** Pending uploads whose deadline is before this are expired. */
    expiry: new Date(t - EXPIRY_MARGIN_MS),
    /** Messages (and finished upload rows) created before this are past retention. */
    retention: new Date(t - ctx.config.retentionDays * DAY_MS),
    /** Messages fully acknowledged before this are deleted (DELETE_AFTER_ACK). */
    acked: new Date(t - ACK_GRACE_MS),
    /** Objects without rows last modified before this are strays. */
    stray: new Date(t - ctx.config.commitWindowSeconds * 1000 - EXPIRY_MARGIN_MS),
  };
}

/** The report keeps this many ids; the count is always exact. */
export const MAX_REPORTED_IDS = 100;

export function emptyReport(now: Date, dryRun: boolean, limit: number): ReconcileReport {
  const zero = (): Tally => ({ count: 0, bytes: 0 });
  return {
    now: now.toISOString(),
    dryRun,
    limit,
    skipped: null,
    complete: true,
    expiredUploads: zero(),
    cleanedUploads: zero(),
    prunedUploads: { count: 0 },
    retention: zero(),
    acked: zero(),
    strays: zero(),
    missing: { count: 0, messageIds: [] },
    listed: 0,
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
  if (r.skipped) return `reconcile skipped: ${r.skipped}`;
  const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
  const verb = r.dryRun ? 'would be ' : '';
  const lines = [
    `reconcile ${r.dryRun ? 'dry run ' : ''}at ${r.now} (${r.durationMs} ms, ${r.complete ? 'complete' : 'incomplete: run again'})`,
    `  expired uploads  ${r.expiredUploads.count} ${verb}marked expired (${mib(r.expiredUploads.bytes)} declared)`,
    `  cleaned uploads  ${r.cleanedUploads.count} ${r.dryRun ? 'would have' : 'had'} their object or multipart upload removed (${mib(r.cleanedUploads.bytes)})`,
    `  pruned uploads   ${r.prunedUploads.count} finished upload rows ${verb}deleted`,
    `  retention        ${r.retention.count} messages ${verb}deleted (${mib(r.retention.bytes)})`,
    `  fully acked      ${r.acked.count} messages ${verb}deleted (${mib(r.acked.bytes)})`,
    `  strays           ${r.strays.count} objects without rows ${verb}deleted (${mib(r.strays.bytes)}); ${r.listed} objects listed`,
    `  missing          ${r.missing.count} live messages have no object${r.missing.count ? `: ${r.missing.messageIds.join(', ')}` : ''}`,
  ];
  for (const e of r.errors) lines.push(`  error (${e.category}): ${e.message}`);
  return lines.join('\n');
}
