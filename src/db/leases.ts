// Leases: one holder at a time for a singleton job, in a row instead of a session. A session lock
// (pg_advisory_lock) needs a connection of its own for the whole job, which a transaction-pooling
// PgBouncer cannot give (each statement may run on another server connection) and which N
// instances times every pass would open past the pooler. A lease is a row with an expiry on the
// database's clock: taken when free or expired, renewed while the holder lives, deleted at the end.
import { randomUUID } from 'node:crypto';
import type { Sql } from './sql.js';

export interface Lease {
  /** Renews the lease; false once it is no longer ours (it expired and may have been taken over). */
  held(): Promise<boolean>;
  release(): Promise<void>;
}

/**
 * Takes the lease `name` for `ttlSeconds` when it is free or expired; null when someone holds it.
 * While held it is renewed every third of its lifetime in the background, so only a holder that
 * stops (a crash, a frozen process, a database it cannot reach) lets it expire.
 */
export async function tryLease(sql: Sql, name: string, ttlSeconds: number): Promise<Lease | null> {
  const holder = randomUUID();
  const taken = await sql`
    insert into job_leases (name, holder, expires_at)
    values (${name}, ${holder}, clock_timestamp() + make_interval(secs => ${ttlSeconds}))
    on conflict (name) do update set holder = excluded.holder, expires_at = excluded.expires_at
      where job_leases.expires_at <= clock_timestamp()
    returning holder`;
  if (taken.length === 0) return null;

  let lost = false;
  let released = false;
  const renew = async (): Promise<boolean> => {
    if (lost || released) return false;
    try {
      // Only an unexpired lease is renewed: once it expired, another holder may have come and gone.
      const rows = await sql`
        update job_leases set expires_at = clock_timestamp() + make_interval(secs => ${ttlSeconds})
        where name = ${name} and holder = ${holder} and expires_at > clock_timestamp()
        returning holder`;
      if (rows.length === 0) lost = true;
      return !lost;
    } catch {
      // Cannot tell: the caller stops its work; the timer tries again.
      return false;
    }
  };
  const timer = setInterval(() => void renew(), Math.max(1000, (ttlSeconds * 1000) / 3));
  timer.unref();
  return {
    held: renew,
    async release() {
      released = true;
      clearInterval(timer);
      await sql`delete from job_leases where name = ${name} and holder = ${holder}`.catch(() => {});
    },
  };
}
