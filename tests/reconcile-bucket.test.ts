// Reconciliation against the real PostgreSQL and the R2 emulator. The bucket walk: strays deleted, pages reconciled one by one, missing objects reported and kept.
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

  const young = await fx.pass(fx.T);
  assert.is(young.strays.count, 0, 'a young stray may be an upload in flight');
  assert.ok(await fx.exists(stray));

  const r = await fx.pass(later);
  assert.equal(r.strays, { count: 2, bytes: 42 });
  assert.not.ok(await fx.exists(stray));
  assert.not.ok(await fx.exists(reappeared.key));
  assert.ok(await fx.exists(pending.key));
  assert.ok(await fx.exists(live.key));
  assert.ok(await fx.exists(elsewhere));
  assert.is(r.missing.count, 0);
  assertNothingDone(await fx.pass(later));
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
  const counting = new Proxy(fx.app.store, {
    get(target, prop, receiver) {
      if (prop === 'list') return (args: Parameters<BlobStore['list']>[0]) => (lists++, target.list(args));
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const r = await reconcile({ ...fx.app, store: counting }, { now: new Date(later), pageSize: 2, batch: 2 });
  assert.is(r.strays.count, 5);
  assert.is(r.listed, 8);
  assert.ok(lists >= 4 + fx.app.config.retentionDays, `listed ${lists} pages`);
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
  const r = await reconcile({ ...fx.app, log }, { now: new Date(fx.T) });
  assert.equal(r.missing, { count: 1, messageIds: [gone.id] });
  assert.is(r.acked.count, 1, 'a fully acked message is deleted, not reported');
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

test.run();
