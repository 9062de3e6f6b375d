// Gates made of PostgreSQL locks: a test holds a lock the broker needs, so a statement stops at a
// known point, and watches pg_stat_activity until the statements it expects are waiting there.
import { lockConvo } from '../../src/db/convos.js';
import { transaction, type Sql } from '../../src/db/sql.js';

export interface HeldLock {
  /** Ends the holding transaction and resolves once it has. */
  release(): Promise<void>;
}

/**
 * Holds the conversation's exclusive lock, as a membership change does, until released: a commit
 * into it stops inside its transaction (the upload row locked, nothing inserted yet).
 */
export async function holdConvoLock(sql: Sql, convoId: string): Promise<HeldLock> {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let held!: () => void;
  const holding = new Promise<void>((r) => (held = r));
  const gate = transaction(sql, async (tx) => {
    await lockConvo(tx, convoId);
    held();
    await released;
  });
  await Promise.race([holding, gate]);
  return {
    async release() {
      release();
      await gate;
    },
  };
}

/**
 * Polls until at least `min` backends of this database wait on a heavyweight lock (advisory, row,
 * transaction; `event` narrows it, e.g. 'advisory') and returns their pids. Bounded, and no timing
 * is asserted: it throws when they never come.
 */
export async function untilLockWaiters(sql: Sql, min: number, event?: string): Promise<number[]> {
  for (let i = 0; i < 500; i++) {
    const rows = await sql<{ pid: number }[]>`
      select pid from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock' and (${event ?? null}::text is null or wait_event = ${event ?? null})`;
    if (rows.length >= min) return rows.map((r) => r.pid);
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`fewer than ${min} statements ever waited on a lock`);
}
