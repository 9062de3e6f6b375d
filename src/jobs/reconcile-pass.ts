// The state one reconciliation pass shares between its phases, and the check before each batch.
import type { AppContext } from '../context.js';
import { DELETE_BATCH, type BlobStore } from '../store/store.js';
import type { Progress, ReconcileReport, StoreOps } from './reconcile-report.js';

export const LOCK_LOST = 'lost the reconcile lease (it expired, and another pass may hold it); stopped, the next pass resumes';

/** One pass in flight: the context, the clock reading and what it has done so far. */
export interface Pass {
  app: AppContext;
  now: Date;
  dryRun: boolean;
  limit: number;
  pageSize: number;
  /** Audit: most keys one pass lists before it stores its position and stops. */
  maxKeys: number;
  batch: number;
  report: ReconcileReport;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Whether this pass still holds the reconcile lease (renews it). */
  leaseHeld: () => Promise<boolean>;
  /** Set once the pass must stop (shutdown, or the lease was lost). */
  halted?: boolean;
}

/**
 * Checked before every batch: the scheduler may be stopping, and the lease may have expired (this
 * process stalled, or could not reach the database) — then another pass may already be running,
 * and this one stops where it is (every step is resumable, so the next pass finishes the job).
 */
export async function proceed(p: Pass): Promise<boolean> {
  if (p.halted) return false;
  if (p.signal?.aborted === true) {
    p.halted = true;
  } else if (!(await p.leaseHeld())) {
    p.halted = true;
    p.report.errors.push({ category: 'lock', message: LOCK_LOST });
    p.app.log.error('the reconcile lease was lost; this pass stops, the next one resumes');
  }
  if (p.halted) p.report.complete = false;
  return !p.halted;
}

/** The store, counting every request made through it into `ops` (the report's storeOps). */
export function countingStore(store: BlobStore, ops: StoreOps): BlobStore {
  const s = Object.create(store) as BlobStore;
  s.list = (args) => (ops.list++, store.list(args));
  s.head = (key) => (ops.head++, store.head(key));
  s.delete = (key) => (ops.delete++, store.delete(key));
  s.deleteMany = (keys) => ((ops.delete += Math.ceil(keys.length / DELETE_BATCH)), store.deleteMany(keys));
  s.abortMultipart = (key, id) => (ops.abort++, store.abortMultipart(key, id));
  return s;
}
