// Reconciliation against the real PostgreSQL and the R2 emulator. Dry runs, limits, faults, the lease, metrics and the scheduler.
import { randomUUID } from 'node:crypto';
import * as assert from 'uvu/assert';
import { tryLease } from '../src/db/leases.js';
import { blobKeyFor } from '../src/ids.js';
import { LEASE_TTL_SECONDS, RECONCILE_LEASE, reconcile, SKIPPED_LOCKED } from '../src/jobs/reconcile.js';
import { LOCK_LOST } from '../src/jobs/reconcile-pass.js';
import { startScheduler } from '../src/jobs/scheduler.js';
import { StoreUnavailable } from '../src/store/store.js';
import { assertNothingDone, DAY, HOUR, SENDER, reconcileSuite } from './helpers/reconcile.js';
import { bytes } from './helpers/flow.js';

const [test, fx] = reconcileSuite('reconcile: a pass is bounded, resumable and one at a time');

// --- dry run, limits, faults, lease ------------------------------------------------------------

test('a dry run reports what it would do and changes nothing', async () => {
  const now = fx.T + 2 * HOUR;
  const expiring = await fx.upload(fx.T - HOUR, { object: true });
  const old = await fx.message(fx.T - 31 * DAY);
  const acked = await fx.message(fx.T - 3 * HOUR, { ackedAt: fx.T - 2 * HOUR });
  const stray = blobKeyFor(randomUUID(), new Date(fx.T));
  await fx.putObject(stray);
  const missing = await fx.message(fx.T, { object: false });
  const r = await fx.pass(now, { dryRun: true });
  const a = await fx.audit(now, { dryRun: true });
  assert.ok(r.dryRun && a.dryRun);
  assert.is(r.expiredUploads.count, 1);
  assert.is(r.cleanedUploads.count, 1);
  assert.is(r.retention.count, 1);
  assert.is(r.acked.count, 1);
  assert.is(a.strays.count, 1);
  assert.equal(a.missing.messageIds, [missing.id]);
  assert.equal((await fx.app.sql`select * from audit_positions`).length, 0, 'a dry audit stores no position');
  assert.is((await fx.uploadRow(expiring.id))?.state, 'pending');
  for (const k of [expiring.key, acked.key, stray]) assert.ok(await fx.exists(k), k);
  for (const m of [old, acked]) assert.is(await fx.messageCount(m.id), 1);

  const real = await fx.pass(now);
  const realAudit = await fx.audit(now);
  assert.equal(
    [real.expiredUploads.count, real.retention.count, real.acked.count, realAudit.strays.count, realAudit.missing.count],
    [1, 1, 1, 1, 1],
  );
  const again = await fx.pass(now);
  const againAudit = await fx.audit(now);
  assert.is(againAudit.missing.count, 1, 'missing stays reported until someone acts');
  assert.equal([again.expiredUploads.count, again.cleanedUploads.count, again.retention.count, again.acked.count, againAudit.strays.count], [0, 0, 0, 0, 0]);
});

test('a limit leaves the rest to the next pass, which finishes the job', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 7; i++) ids.push((await fx.upload(fx.T - 3 * HOUR, { object: true })).id);
  const counts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await fx.pass(fx.T, { limit: 3 });
    counts.push(r.expiredUploads.count);
    assert.is(r.complete, i === 2 ? true : false, `pass ${i}`);
  }
  assert.equal(counts, [3, 3, 1]);
  for (const id of ids) assert.is((await fx.uploadRow(id))?.state, 'expired');
  assertNothingDone(await fx.pass(fx.T));
});

test('a pass that fails after marking uploads expired is finished by the next one', async () => {
  const u = await fx.upload(fx.T - 3 * HOUR, { object: true });
  const broken = new Proxy(fx.app.store, {
    get(target, prop, receiver) {
      if (prop === 'deleteMany') return async () => Promise.reject(new StoreUnavailable('store request failed: injected'));
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const r = await reconcile({ ...fx.app, store: broken }, { now: new Date(fx.T) });
  assert.is(r.expiredUploads.count, 1);
  assert.is(r.cleanedUploads.count, 0);
  assert.not.ok(r.complete);
  assert.ok(r.errors.some((e) => e.category === 'expired_uploads' && e.message.includes('injected')), JSON.stringify(r.errors));
  const row = await fx.uploadRow(u.id);
  assert.is(row?.state, 'expired');
  assert.is(row?.cleaned_at, null);
  assert.ok(await fx.exists(u.key));

  const next = await fx.pass(fx.T);
  assert.is(next.expiredUploads.count, 0);
  assert.is(next.cleanedUploads.count, 1);
  assert.not.ok(await fx.exists(u.key));
  assertNothingDone(await fx.pass(fx.T));
});

test('DeleteObjects batches hold at most 1000 keys and rows go in bounded batches', async () => {
  await fx.app.sql`
    insert into messages (id, convo_id, sender_did, blob_key, size, commit_digest, created_at)
    select id, 'c1', ${SENDER}, 'm/2020/01/01/' || id::text, 10, 'd', ${new Date(fx.T - 40 * DAY)}
    from (select gen_random_uuid() as id from generate_series(1, 2300)) g`;
  const sizes: number[] = [];
  const recording = new Proxy(fx.app.store, {
    get(target, prop, receiver) {
      if (prop === 'deleteMany') return (keys: string[]) => (sizes.push(keys.length), target.deleteMany(keys));
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const r = await reconcile({ ...fx.app, store: recording }, { now: new Date(fx.T) });
  assert.equal(r.retention, { count: 2300, bytes: 23000 });
  assert.ok(sizes.length >= 3 && sizes.every((n) => n > 0 && n <= 1000), String(sizes));
  assert.is((await fx.app.sql<{ n: number }[]>`select count(*)::int as n from messages`)[0]!.n, 0);
});

test('a pass whose lease expired and was taken over stops at the next batch, and the process survives', async () => {
  // An audit with slow listing, so the pass is still running when its lease is taken from it (as if this
  // process had stalled past the lease's lifetime and another instance had started a pass).
  const store = Object.create(fx.app.store) as typeof fx.app.store;
  store.list = async (args) => {
    await new Promise((r) => setTimeout(r, 300));
    return fx.app.store.list(args);
  };
  const running = reconcile({ ...fx.app, store }, { now: new Date(fx.T), audit: true });
  // Taken once the pass holds it (a fixed wait would race the pass's start on a busy machine).
  const held = async () => (await fx.app.sql`select 1 from job_leases where name = ${RECONCILE_LEASE}`).length > 0;
  for (let tries = 0; !(await held()) && tries < 200; tries++) await new Promise((r) => setTimeout(r, 50));
  const taken = await fx.app.sql`update job_leases set holder = 'another instance' where name = ${RECONCILE_LEASE} returning name`;
  assert.is(taken.length, 1, 'the pass holds the lease in a row');
  const r = await running;
  assert.is(r.complete, false);
  assert.ok(r.errors.some((e) => e.category === 'lock' && e.message === LOCK_LOST), JSON.stringify(r.errors));
  assert.is((await fx.app.sql`select holder from job_leases`)[0]?.holder, 'another instance', 'the pass never deletes a lease that is not its own');
  // The other holder's lease runs out (it crashed): the next pass takes it over and finishes.
  await fx.app.sql`update job_leases set expires_at = now() - interval '1 second'`;
  const next = await fx.pass(fx.T);
  assert.is(next.skipped, null);
  assert.is(next.complete, true);
  assert.is((await fx.app.sql`select count(*)::int as n from job_leases`)[0]!.n, 0, 'released at the end');
});

test('a concurrent pass returns at once saying another pass holds the lease', async () => {
  const u = await fx.upload(fx.T - 3 * HOUR, { object: true });
  const lock = await tryLease(fx.app.sql, RECONCILE_LEASE, LEASE_TTL_SECONDS);
  assert.ok(lock);
  try {
    const r = await fx.pass(fx.T);
    assert.is(r.skipped, SKIPPED_LOCKED);
    assert.is((await fx.uploadRow(u.id))?.state, 'pending');
  } finally {
    await lock!.release();
  }
  const r = await fx.pass(fx.T);
  assert.is(r.skipped, null);
  assert.is(r.expiredUploads.count, 1);
  // A pass held mid-way (deleting an expired upload's object waits on a gate): a second one
  // beside it is skipped.
  await fx.upload(fx.T - 3 * HOUR, { object: true });
  let release!: () => void;
  const gate = new Promise<void>((res) => (release = res));
  let deleting!: () => void;
  const held = new Promise<void>((res) => (deleting = res));
  const store = Object.create(fx.app.store) as typeof fx.app.store;
  store.deleteMany = async (keys) => {
    deleting();
    await gate;
    return fx.app.store.deleteMany(keys);
  };
  const first = reconcile({ ...fx.app, store }, { now: new Date(fx.T) });
  await held;
  const second = await fx.pass(fx.T);
  release();
  assert.is(second.skipped, SKIPPED_LOCKED, 'a second pass ran beside the first');
  assert.is((await first).skipped, null);
});

test('expiry waits for a commit that holds the upload row, and then leaves the committed upload alone', async () => {
  const u = await fx.upload(fx.T - 2 * HOUR, { object: true });
  let finish!: () => void;
  const gate = new Promise<void>((r) => (finish = r));
  let locked!: () => void;
  const hasLock = new Promise<void>((r) => (locked = r));
  // What the commit route does in its transaction, held open while the pass runs.
  const committing = fx.app.sql.begin(async (tx) => {
    await tx`select 1 from uploads where message_id = ${u.id} for update`;
    locked();
    await gate;
    await tx`insert into messages (id, convo_id, sender_did, blob_key, size, commit_digest, created_at)
             values (${u.id}, 'c1', ${SENDER}, ${u.key}, ${u.size}, 'd', ${new Date(fx.T - HOUR)})`;
    await tx`update uploads set state = 'committed' where message_id = ${u.id}`;
  });
  await hasLock;
  let settled = false;
  const running = fx.pass(fx.T).then((r) => ((settled = true), r));
  await new Promise((r) => setTimeout(r, 300));
  assert.not.ok(settled, 'the pass waits on the row lock');
  finish();
  await committing;
  const r = await running;
  assert.is(r.expiredUploads.count, 0);
  assert.is((await fx.uploadRow(u.id))?.state, 'committed');
  assert.ok(await fx.exists(u.key));
  assert.is(await fx.messageCount(u.id), 1);
});

test('counters are exported as metrics', async () => {
  await fx.upload(fx.T - 3 * HOUR, { object: true, size: 64 });
  const expired = async () => (await fx.app.metrics.reconcileItems.get()).values.find((x) => x.labels.category === 'expired_uploads')?.value ?? 0;
  const before = await expired();
  await fx.pass(fx.T);
  assert.is((await expired()) - before, 1);
  const text = await fx.app.metrics.registry.metrics();
  assert.match(text, /broker_reconcile_runs_total\{outcome="ok"\} \d+/);
  assert.match(text, /broker_reconcile_bytes_total\{category="cleaned_uploads"\} \d+/);
  assert.match(text, /broker_reconcile_last_success_timestamp_seconds \d/);
});

// --- the scheduler -------------------------------------------------------------------------------

test('the scheduler runs passes on its cron and stop() waits for the running one', async () => {
  const runs = async () => (await fx.app.metrics.reconcileRuns.get()).values.reduce((s, v) => s + v.value, 0);
  const off = startScheduler({ ...fx.app, config: { ...fx.app.config, reconcileCron: null } });
  await off.stop();
  const start = await runs();
  const s = startScheduler({ ...fx.app, config: { ...fx.app.config, reconcileCron: '* * * * * *' } });
  const deadline = Date.now() + 5000;
  while ((await runs()) === start && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await s.stop();
  const stopped = await runs();
  assert.ok(stopped > start, 'at least one pass ran');
  await new Promise((r) => setTimeout(r, 1500));
  assert.is(await runs(), stopped, 'no pass after stop()');
  assert.throws(() => startScheduler({ ...fx.app, config: { ...fx.app.config, reconcileCron: '99 * * * *' } }), /not a valid cron/);
});

test.run();
