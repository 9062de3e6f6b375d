// What PostgreSQL sees of this process's pool, for the /metrics gauges. postgres.js does not expose
// its own queue, so connections are counted by state in pg_stat_activity under the pool's own
// application_name; queries queued inside the client for a free connection are not visible.
import type { Sql } from './sql.js';

const CACHE_MS = 1000;
const TIMEOUT_MS = 1000;

export interface PoolSnapshot {
  active: number;
  idle: number;
  idleInTransaction: number;
  /** Connections running a query that waits on a lock. */
  waiting: number;
}

/** A reader of the pool's state; one query per second at most, null when the database does not answer. */
export function poolStats(sql: Sql, applicationName: string): () => Promise<PoolSnapshot | null> {
  let cached: { at: number; result: Promise<PoolSnapshot | null> } | null = null;
  return () => {
    const now = Date.now();
    if (cached === null || now - cached.at > CACHE_MS) cached = { at: now, result: read(sql, applicationName) };
    return cached.result;
  };
}

async function read(sql: Sql, applicationName: string): Promise<PoolSnapshot | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    // The connection asking is idle but for this question: it counts as idle.
    const query = sql<{ state: string; waiting: boolean; n: number }[]>`
      select case when pid = pg_backend_pid() then 'idle' else coalesce(state, 'unknown') end as state,
             (pid <> pg_backend_pid() and wait_event_type = 'Lock') as waiting,
             count(*)::int as n
        from pg_stat_activity
       where application_name = ${applicationName} and backend_type = 'client backend'
       group by 1, 2`;
    const rows = await Promise.race([
      query,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), TIMEOUT_MS);
      }),
    ]);
    const s: PoolSnapshot = { active: 0, idle: 0, idleInTransaction: 0, waiting: 0 };
    for (const r of rows) {
      if (r.state === 'active') s.active += r.n;
      else if (r.state === 'idle') s.idle += r.n;
      else if (r.state.startsWith('idle in transaction')) s.idleInTransaction += r.n;
      if (r.waiting) s.waiting += r.n;
    }
    return s;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}
