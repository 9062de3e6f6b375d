// Prometheus metrics through prom-client, one registry per context (tests run many contexts).
// Labels come from bounded sets only (route patterns, operations, error codes), never from ids or paths.
import type * as PromClient from 'prom-client';
import { requireCjs } from './cjs.js';
import type { PoolSnapshot } from './db/pool-stats.js';
import type { StoreObserver } from './store/store.js';

// Required, not imported: src/cjs.ts.
const { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } = requireCjs('prom-client') as typeof PromClient;

/** What the database pool gauges are read from at scrape time (src/db/pool-stats.ts). */
export type PoolStats = () => Promise<PoolSnapshot | null>;

export function createMetrics(options: { defaults?: boolean } = {}) {
  const registry = new Registry();
  // The event-loop delay monitor samples every 10 ms by default, which alone costs an idle broker
  // ~8 ms of CPU a second (measured); 100 ms costs ~3 ms and still catches stalls worth alerting on.
  if (options.defaults) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  const registers = [registry];
  let poolStats: PoolStats | null = null;
  const poolGauge = (name: string, help: string, pick: (s: PoolSnapshot) => number) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        const s = poolStats === null ? null : await poolStats();
        // No answer from the database: no sample rather than a made-up one.
        if (s === null) this.reset();
        else this.set(pick(s));
      },
    });
  const metrics = {
    registry,
    httpRequests: new Counter({
      name: 'broker_http_requests_total',
      help: 'HTTP requests by method, route pattern and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: 'broker_http_request_duration_seconds',
      help: 'HTTP request duration by method, route pattern and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    uploadsReserved: new Counter({ name: 'broker_uploads_reserved_total', help: 'Uploads reserved', labelNames: ['kind'] as const, registers }),
    presignedUrls: new Counter({
      name: 'broker_presigned_urls_total',
      help: 'Presigned URLs issued, by kind (put, part, get)',
      labelNames: ['kind'] as const,
      registers,
    }),
    messagesCommitted: new Counter({ name: 'broker_messages_committed_total', help: 'Messages committed', registers }),
    commits: new Counter({
      name: 'broker_commits_total',
      help: 'Commit answers by outcome: committed, replayed, or the error code',
      labelNames: ['outcome'] as const,
      registers,
    }),
    tokenVerifications: new Counter({
      name: 'broker_token_verifications_total',
      help: 'Bearer tokens checked, by outcome: verified (signature checked), cached (seen and verified within JWT_CACHE_SECONDS), refused',
      labelNames: ['outcome'] as const,
      registers,
    }),
    acks: new Counter({ name: 'broker_acks_total', help: 'Deliveries acknowledged', registers }),
    rateLimitInsurance: new Counter({
      name: 'broker_rate_limit_insurance_total',
      help: 'Requests rate-limited by this instance alone because Redis (REDIS_URL) could not be reached',
      registers,
    }),
    storeCalls: new Counter({
      name: 'broker_store_calls_total',
      help: 'Requests the broker made to the bucket, by operation',
      labelNames: ['operation'] as const,
      registers,
    }),
    storeErrors: new Counter({
      name: 'broker_store_errors_total',
      help: 'Bucket requests that failed, by operation and S3 error code (NotFound on HeadObject is an ordinary answer)',
      labelNames: ['operation', 'code'] as const,
      registers,
    }),
    storeDuration: new Histogram({
      name: 'broker_store_request_duration_seconds',
      help: 'Bucket request duration by operation',
      labelNames: ['operation'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    dbPoolMax: new Gauge({ name: 'broker_db_pool_max_connections', help: 'Configured size of the database pool', registers }),
    dbPoolActive: poolGauge('broker_db_pool_active_connections', "The pool's connections running a query (pg_stat_activity)", (s) => s.active),
    dbPoolIdle: poolGauge('broker_db_pool_idle_connections', "The pool's open idle connections (pg_stat_activity)", (s) => s.idle),
    dbPoolIdleInTransaction: poolGauge(
      'broker_db_pool_idle_in_transaction_connections',
      "The pool's connections inside a transaction, between statements (pg_stat_activity)",
      (s) => s.idleInTransaction,
    ),
    dbPoolWaiting: poolGauge(
      'broker_db_pool_waiting_connections',
      "The pool's connections waiting on a lock in PostgreSQL (pg_stat_activity wait_event_type = 'Lock')",
      (s) => s.waiting,
    ),
    reconcileRuns: new Counter({
      name: 'broker_reconcile_runs_total',
      help: 'Reconciliation passes by outcome',
      labelNames: ['outcome'] as const,
      registers,
    }),
    reconcileItems: new Counter({
      name: 'broker_reconcile_items_total',
      help: 'Items handled by reconciliation, by category',
      labelNames: ['category'] as const,
      registers,
    }),
    reconcileBytes: new Counter({
      name: 'broker_reconcile_bytes_total',
      help: 'Bytes reclaimed by reconciliation, by category',
      labelNames: ['category'] as const,
      registers,
    }),
    reconcileMissing: new Gauge({
      name: 'broker_reconcile_missing_objects',
      help: 'Committed live messages whose object was missing at the last pass',
      registers,
    }),
    reconcileLastSuccess: new Gauge({
      name: 'broker_reconcile_last_success_timestamp_seconds',
      help: 'When the last reconciliation pass finished',
      registers,
    }),
    reconcileLastDuration: new Gauge({
      name: 'broker_reconcile_last_duration_seconds',
      help: 'How long the last reconciliation pass took',
      registers,
    }),
    reconcileLastOutcome: new Gauge({
      name: 'broker_reconcile_last_outcome',
      help: 'The last reconciliation pass: 1 for its outcome (ok, error, skipped, dry_run), 0 for the others',
      labelNames: ['outcome'] as const,
      registers,
    }),
    /** The pool the gauges describe: set once the pool exists. */
    observePool(max: number, stats: PoolStats): void {
      metrics.dbPoolMax.set(max);
      poolStats = stats;
    },
  };
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;

const OUTCOMES = ['ok', 'error', 'skipped', 'dry_run'] as const;

/** Records a finished reconciliation pass's outcome and duration. */
export function recordReconcileOutcome(m: Metrics, outcome: (typeof OUTCOMES)[number], seconds: number | null): void {
  m.reconcileRuns.inc({ outcome });
  for (const o of OUTCOMES) m.reconcileLastOutcome.set({ outcome: o }, o === outcome ? 1 : 0);
  if (seconds !== null) m.reconcileLastDuration.set(seconds);
}

/** The store's reports, as counters. */
export function storeObserver(m: Metrics): StoreObserver {
  return {
    presigned: (kind) => m.presignedUrls.inc({ kind }),
    called(operation, seconds, code) {
      m.storeCalls.inc({ operation });
      m.storeDuration.observe({ operation }, seconds);
      if (code !== null) m.storeErrors.inc({ operation, code });
    },
  };
}
