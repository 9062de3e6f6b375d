// A transaction is acknowledged only when PostgreSQL committed it. The cause of writes lost behind
// PgBouncer (issue 10): a transaction whose statement failed is ended by COMMIT without an error —
// PostgreSQL answers "ROLLBACK" — and postgres.js's sql.begin resolves as if it had committed.
// `deallocate all` inside a transaction does to a connection's prepared statements what PgBouncer
// in transaction mode does when it hands the next transaction another server connection.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSql, transaction, TransactionRolledBack, type Sql, type TxSql } from '../src/db/sql.js';
import { freshDatabase } from './helpers/harness.js';

const test = suite('transactions: a commit that did not commit is an error');
let sql: Sql;

test.before(async () => {
  sql = createSql(await freshDatabase(), { max: 1 });
  await sql`create table t (id int primary key)`;
});
test.after(() => sql.end({ timeout: 1 }));

const count = async () => (await sql<{ n: number }[]>`select count(*)::int as n from t`)[0]!.n;

test('the cause: sql.begin resolves a transaction whose COMMIT statement had vanished, and nothing is written', async () => {
  await sql.begin((tx) => tx`insert into t values (1)`); // prepares "commit" on this connection
  await sql`delete from t`;
  const result = await sql.begin(async (tx) => {
    await tx`insert into t values (2)`;
    await tx`deallocate all`.simple();
    return 'acknowledged';
  });
  assert.is(result, 'acknowledged', 'postgres.js 3.4 reports success');
  assert.is(await count(), 0, 'yet PostgreSQL rolled it back');
});

test('transaction() refuses that same situation: its statements fail loudly, nothing is written', async () => {
  const insert = (tx: TxSql, id: number) => tx`insert into t values (${id})`;
  await transaction(sql, (tx) => insert(tx, 3)); // prepares the insert on this connection
  await sql`delete from t`;
  try {
    await transaction(sql, async (tx) => {
      await tx`deallocate all`.simple();
      await insert(tx, 4);
      return 'acknowledged';
    });
    assert.unreachable('a transaction that could not run its statement must fail');
  } catch (err) {
    assert.not.instance(err, assert.Assertion);
  }
  assert.is(await count(), 0);
});

test('a statement error the callback swallowed makes the COMMIT an error, never a success', async () => {
  try {
    await transaction(sql, async (tx) => {
      await tx`insert into t values (5)`;
      await tx`insert into t values (5)`.catch(() => 'ignored'); // unique violation, swallowed
      return 'acknowledged';
    });
    assert.unreachable('COMMIT answered ROLLBACK must reject');
  } catch (err) {
    assert.instance(err, TransactionRolledBack);
  }
  assert.is(await count(), 0);
});

test('a transaction that commits resolves with its result; one that throws rolls back', async () => {
  assert.is(await transaction(sql, async (tx) => (await tx`insert into t values (6) returning id`)[0]!.id), 6);
  try {
    await transaction(sql, async (tx) => {
      await tx`insert into t values (7)`;
      throw new Error('changed my mind');
    });
    assert.unreachable();
  } catch (err) {
    assert.is((err as Error).message, 'changed my mind');
  }
  assert.equal((await sql`select id from t order by id`).map((r) => r.id), [6]);
  // The connection went back to the pool outside any transaction.
  assert.equal((await sql`select count(*)::int as n from pg_stat_activity where pid = pg_backend_pid() and state = 'active' and backend_xid is null`)[0]!.n, 1);
});

test('no code path uses sql.begin: every transaction goes through transaction()', async () => {
  const root = path.resolve(import.meta.dirname, '..');
  const offenders: string[] = [];
  for (const dir of ['src', 'scripts']) {
    for (const f of await readdir(path.join(root, dir), { recursive: true })) {
      if (!f.endsWith('.ts')) continue;
      const text = await readFile(path.join(root, dir, f), 'utf8');
      if (/\.begin\(/.test(text)) offenders.push(path.join(dir, f));
    }
  }
  assert.equal(offenders, []);
});

test.run();
