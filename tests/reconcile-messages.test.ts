// Reconciliation against the real PostgreSQL and the R2 emulator. What reconciliation does with committed messages: retention and DELETE_AFTER_ACK.
import * as assert from 'uvu/assert';
import { reconcile } from '../src/jobs/reconcile.js';
import { ACK_GRACE_MS } from '../src/lifecycle.js';
import { assertNothingDone, DAY, HOUR, reconcileSuite } from './helpers/reconcile.js';
import { bytes } from './helpers/flow.js';

const [test, fx] = reconcileSuite('reconcile: messages past retention or fully acknowledged');

// --- messages -------------------------------------------------------------------------------------

test('a committed message inside retention survives; past retention its object goes, then its rows', async () => {
  const m = await fx.message(fx.T, { size: 50 });
  const retention = fx.app.config.retentionDays * DAY;
  for (const now of [fx.T, fx.T + DAY, fx.T + retention - 1, fx.T + retention]) {
    const r = await fx.pass(now);
    assert.is(r.retention.count, 0, `at +${now - fx.T} ms`);
    assert.is(await fx.messageCount(m.id), 1);
    assert.ok(await fx.exists(m.key));
  }
  const r = await fx.pass(fx.T + retention + 1);
  assert.equal(r.retention, { count: 1, bytes: 50 });
  assert.is(await fx.messageCount(m.id), 0);
  assert.is(await fx.recipientCount(m.id), 0);
  assert.not.ok(await fx.exists(m.key));
  assert.is(r.prunedUploads.count, 1, 'its committed upload row is pruned too');
  assertNothingDone(await fx.pass(fx.T + retention + 1));
});

test('a fully acked message is deleted after the grace period, and only with DELETE_AFTER_ACK', async () => {
  const acked = await fx.message(fx.T - 2 * HOUR, { ackedAt: fx.T - HOUR, size: 20 });
  const unacked = await fx.message(fx.T - 2 * HOUR);
  assert.is((await fx.pass(fx.T + ACK_GRACE_MS - HOUR)).acked.count, 0, 'inside the grace period');
  assert.is(await fx.messageCount(acked.id), 1);
  const keep = await reconcile({ ...fx.app, config: { ...fx.app.config, deleteAfterAck: false } }, { now: new Date(fx.T + DAY) });
  assert.is(keep.acked.count, 0);
  assert.is(await fx.messageCount(acked.id), 1);
  assert.ok(await fx.exists(acked.key));
  const r = await fx.pass(fx.T + ACK_GRACE_MS - HOUR + 1);
  assert.equal(r.acked, { count: 1, bytes: 20 });
  assert.is(await fx.messageCount(acked.id), 0);
  assert.is(await fx.recipientCount(acked.id), 0);
  assert.not.ok(await fx.exists(acked.key));
  assert.is(await fx.messageCount(unacked.id), 1);
  assert.ok(await fx.exists(unacked.key));
});

test.run();
