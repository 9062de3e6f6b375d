// Reconciliation against the real PostgreSQL and the R2 emulator. The bucket audit: strays deleted, pages reconciled one by one,
// missing objects reported and kept, the walk incremental from a stored position; routine passes never list.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import * as assert from 'uvu/assert';
import { blobKeyFor } from '../src/ids.js';
import { reconcile } from '../src/jobs/reconcile.js';
import { EXPIRY_MARGIN_MS } from '../src/lifecycle.js';
import { BlobStore } from '../src/store/store.js';
import { assertNothingDone, HOUR, MIN, reconcileSuite } from './helpers/reconcile.js';
import { bytes } from './helpers/flow.js';

const [test, fx] = reconcileSuite('reconcile: the bucket (strays and missing objects)');

// --- the bucket: strays and missing objects -----------------------------------------------------

test('strays older than the commit window + margin are deleted; objects with live rows and young strays stay', async () => {
  const later = fx.T + fx.app.config.commitWindowSeconds * 1000 + EXPIRY_MARGIN_MS + MIN;
  const stray = blobKeyFor(randomUUID(), new Date(fx.T));
  await fx.putObject(stray, 10);
  const pending = await fx.upload(later - 10 * MIN, { object: true });
  const live = await fx.message(fx.T);
  const reappeared = await fx.upload(fx.T - HOUR, { object: true, state: 'expired', cleaned: true });
  const elsewhere = 'other/2026/keep-me';
  await fx.putObject(elsewhere);

  const young = await fx.audit(fx.T);
  assert.is(young.strays.count, 0, 'a young stray may be an upload in flight');
  assert.ok(await fx.exists(stray));
  const routine = await fx.pass(later);
  assert.is(routine.storeOps.list, 0, 'a routine pass never lists');
  assert.ok(await fx.exists(stray), 'strays are the audit\'s');

  const r = await fx.audit(later);
  assert.equal(r.strays, { count: 2, bytes: 42 });
  assert.not.ok(await fx.exists(stray));
  assert.not.ok(await fx.exists(reappeared.key));
  assert.ok(await fx.exists(pending.key));
  assert.ok(await fx.exists(live.key));
  assert.ok(await fx.exists(elsewhere));
  assert.is(r.missing.count, 0);
  assertNothingDone(await fx.audit(later));
});

test('the bucket is listed page by page and every page is reconciled', async () => {
  const later = fx.T + 2 * HOUR;
  const strays: string[] = [];
  for (let i = 0; i < 5; i++) {
    const k = blobKeyFor(randomUUID(), new Date(fx.T));
    strays.push(k);
    await fx.putObject(k);
  }
  const live = [await fx.message(fx.T), await fx.message(fx.T), await fx.message(fx.T)];
  let lists = 0;
  let deletes = 0;
  const counting = new Proxy(fx.app.store, {
    get(target, prop, receiver) {
      if (prop === 'list') return (args: Parameters<BlobStore['list']>[0]) => (lists++, target.list(args));
      if (prop === 'deleteMany') return (keys: string[]) => (deletes++, target.deleteMany(keys));
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const r = await reconcile({ ...fx.app, store: counting }, { now: new Date(later), pageSize: 2, batch: 2, audit: true });
  assert.is(r.strays.count, 5);
  assert.is(r.listed, 8);
  assert.ok(lists >= 4 + fx.app.config.retentionDays, `listed ${lists} pages`);
  assert.is(r.storeOps.list, lists, 'the report counts every LIST it made');
  assert.is(r.storeOps.delete, deletes, 'and every DeleteObjects');
  assert.ok(deletes >= 3, 'one per page with strays');
  for (const k of strays) assert.not.ok(await fx.exists(k));
  for (const m of live) assert.ok(await fx.exists(m.key));
  assert.is(r.missing.count, 0);
});

test('a live message whose object is gone is reported at error level, counted in a gauge, and kept', async () => {
  const gone = await fx.message(fx.T - HOUR, { object: false });
  const recent = await fx.message(fx.T - MIN, { object: false }); // may have been committed after the listing
  const ackDue = await fx.message(fx.T - 3 * HOUR, { object: false, ackedAt: fx.T - 2 * HOUR });
  const present = await fx.message(fx.T - HOUR);
  const lines: string[] = [];
  const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
  const r = await reconcile({ ...fx.app, log }, { now: new Date(fx.T), audit: true });
  assert.equal(r.missing, { count: 1, messageIds: [gone.id] }, 'a fully acked message due for deletion is not reported');
  assert.is((await fx.pass(fx.T)).acked.count, 1, 'the routine pass deletes it');
  assert.is(await fx.messageCount(gone.id), 1);
  assert.is(await fx.messageCount(recent.id), 1);
  assert.is(await fx.messageCount(ackDue.id), 0);
  assert.ok(await fx.exists(present.key));
  assert.is(lines.length, 1, 'one log line per pass');
  const line = JSON.parse(lines[0]!);
  assert.is(line.level, 50);
  assert.equal(line.reconcile.missing.messageIds, [gone.id]);
  const gauge = await fx.app.metrics.reconcileMissing.get();
  assert.is(gauge.values[0]?.value, 1);
});

test('a routine pass at steady state makes no store request at all, LIST least of all', async () => {
  for (let i = 0; i < 3; i++) await fx.message(fx.T - HOUR);
  await fx.upload(fx.T - 10 * MIN, { object: true }); // pending, inside its window
  await fx.putObject(blobKeyFor(randomUUID(), new Date(fx.T - 3 * HOUR))); // a stray: the audit's business
  let calls = 0;
  const recording = new Proxy(fx.app.store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (...args: unknown[]) => (calls++, (v as (...a: unknown[]) => unknown).apply(target, args)) : v;
    },
  });
  const r = await reconcile({ ...fx.app, store: recording }, { now: new Date(fx.T) });
  assertNothingDone(r);
  assert.equal(r.storeOps, { list: 0, delete: 0, head: 0, abort: 0 });
  assert.is(calls, 0, 'nothing reached the store');
  // With work to do it counts what it did: an expired single PUT and an expired multipart upload.
  await fx.upload(fx.T - 3 * HOUR, { object: true });
  const u = await fx.upload(fx.T - 3 * HOUR, { object: false, multipart: 'no-such-upload-id' });
  const busy = await fx.pass(fx.T);
  assert.is(busy.expiredUploads.count, 2);
  assert.is(busy.storeOps.list, 0);
  assert.is(busy.storeOps.abort, 1);
  assert.is(busy.storeOps.delete, 1, 'one DeleteObjects for both keys');
  assert.ok(u.id);
});

test('the audit is incremental: a bounded number of keys per pass, continuing from the stored position', async () => {
  const later = fx.T + 2 * HOUR;
  const days = [fx.T - 2 * 86_400_000, fx.T - 86_400_000, fx.T];
  const strays: string[] = [];
  for (const d of days) {
    for (let i = 0; i < 3; i++) {
      const k = blobKeyFor(randomUUID(), new Date(d));
      strays.push(k);
      await fx.putObject(k);
    }
  }
  const gone = await fx.message(fx.T - 86_400_000, { object: false });
  const reports = [];
  for (let i = 0; i < 10; i++) {
    const r = await fx.audit(later, { pageSize: 2, maxKeys: 4 });
    reports.push(r);
    assert.ok(r.listed <= 4, `pass ${i} listed ${r.listed}`);
    if (r.audit?.cycleComplete) break;
  }
  assert.ok(reports.length >= 3, `${reports.length} passes`);
  assert.is(reports.reduce((n, r) => n + r.listed, 0), 9, 'every key listed once over the cycle');
  assert.is(reports.reduce((n, r) => n + r.strays.count, 0), 9);
  assert.is(reports.reduce((n, r) => n + r.missing.count, 0), 1);
  for (const r of reports.slice(0, -1)) assert.is(r.complete, false, 'an unfinished cycle says run again');
  for (const k of strays) assert.not.ok(await fx.exists(k));
  const gauge = await fx.app.metrics.reconcileMissing.get();
  assert.is(gauge.values[0]?.value, 1, 'the gauge counts the whole cycle');
  assert.equal((await fx.app.sql`select after_key from audit_positions`).map((r) => r.after_key), [null], 'the next audit starts over');
  const again = await fx.audit(later, { maxKeys: 100 });
  assert.equal(again.missing.messageIds, [gone.id]);
  assert.ok(again.audit?.cycleComplete);
});

test.run();
