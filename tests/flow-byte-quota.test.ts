// The per-DID byte quota (MAX_BYTES_PER_DAY): counted at reservation over a rolling day of hour
// buckets, refused with 429 QuotaExceeded and a Retry-After that says when the request fits, shown
// in /limits. A refused reservation charges nothing; an aborted or expired one stays counted.
import { randomBytes } from 'node:crypto';
import * as assert from 'uvu/assert';
import { BrokerError } from '../src/client/index.js';
import { reconcile } from '../src/jobs/reconcile.js';
import { clientFor, recordingFetch } from './helpers/client.js';
import { did } from './helpers/tokens.js';
import { setMembers, TEST_SERVICE } from './helpers/flow.js';
import type { TestApp } from './helpers/harness.js';
import { alice, bob, CONVO, mallory, withApp } from './helpers/rules.js';

const QUOTA = 1000;
const MD5 = 'AAAAAAAAAAAAAAAAAAAAAA==';
const HOUR = 3_600_000;
/** 10:20 UTC: the hour bucket starts at 10:00. */
const T0 = Date.parse('2026-03-02T10:20:00Z');

const reserveSize = (app: TestApp, as: string, size: number) =>
  app.call('POST', '/api/v1/uploads', { as, body: { convo_id: CONVO, size, md5: MD5 } });

async function ledger(app: TestApp, sender: string): Promise<number> {
  const [row] = await app.ctx.sql<{ n: string | null }[]>`select sum(bytes)::text as n from upload_quota_hours where sender_did = ${sender}`;
  return Number(row?.n ?? 0);
}
const uploadRows = async (app: TestApp, sender: string) =>
  (await app.ctx.sql<{ n: number }[]>`select count(*)::int as n from uploads where sender_did = ${sender}`)[0]!.n;

async function limitsOf(app: TestApp, as: string) {
  const r = await app.call('GET', '/api/v1/limits', { as });
  assert.is(r.status, 200, r.text);
  return r.body as { max_bytes_per_day: number | null; bytes_reserved: number | null; bytes_available: number | null };
}

function assertQuotaRefusal(r: { status: number; body: { error?: string }; headers: Headers }, retryAfter: number): void {
  assert.is(r.status, 429);
  assert.is(r.body.error, 'QuotaExceeded');
  assert.is(r.headers.get('retry-after'), String(retryAfter));
}

// ---------------------------------------------------------------------------------------------
const quota = withApp('byte quota: a rolling day of hour buckets', { MAX_BYTES_PER_DAY: String(QUOTA), MAX_PENDING_UPLOADS: '1000' });

quota('reservations count their declared size; over the quota is 429 QuotaExceeded until the oldest hour that frees enough has left the day', async ({ app }) => {
  app.clock.set(T0);
  const fresh = await limitsOf(app, alice);
  assert.equal([fresh.max_bytes_per_day, fresh.bytes_reserved, fresh.bytes_available], [QUOTA, 0, QUOTA]);
  assert.is((await reserveSize(app, alice, 600)).status, 201);
  app.clock.set(T0 + 2 * HOUR + 10 * 60_000); // 12:30
  assert.is((await reserveSize(app, alice, 300)).status, 201);
  const l = await limitsOf(app, alice);
  assert.is(l.bytes_reserved, 900);
  assert.is(l.bytes_available, 100);

  // 200 more need 100 freed: the 10:00 hour (600) leaves the window at 11:00 tomorrow, 22.5 h away.
  const over = await reserveSize(app, alice, 200);
  assertQuotaRefusal(over, 22.5 * 3600);
  assert.is(await ledger(app, alice), 900, 'a refusal charges nothing');
  assert.is(await uploadRows(app, alice), 2, 'and writes no upload');
  assert.is((await reserveSize(app, alice, 100)).status, 201, 'exactly up to the quota fits');

  // A second before 11:00 tomorrow the 10:00 hour still counts; at 11:00 it is gone.
  app.clock.set(Date.parse('2026-03-03T10:59:59Z'));
  assertQuotaRefusal(await reserveSize(app, alice, 1), 1);
  app.clock.set(Date.parse('2026-03-03T11:00:00Z'));
  assert.is((await limitsOf(app, alice)).bytes_available, 600);
  assert.is((await reserveSize(app, alice, 600)).status, 201);
  // Now the oldest hour is 12:00 yesterday (400 bytes): it leaves at 13:00, two hours away.
  assertQuotaRefusal(await reserveSize(app, alice, 1), 7200);
  // Any 24 hours together hold at most the quota: 12:30 yesterday (400) + 11:00 today (600).
  assert.is(await ledger(app, alice), 1600);
});

quota('a reservation larger than the whole quota is 413 PayloadTooLarge (never retry), and charges nothing', async ({ app }) => {
  app.clock.set(T0);
  const r = await reserveSize(app, bob, QUOTA + 1);
  assert.is(r.status, 413);
  assert.is(r.body.error, 'PayloadTooLarge');
  assert.is(r.headers.get('retry-after'), null);
  assert.match(r.body.message, /MAX_BYTES_PER_DAY|daily/);
  assert.is(await ledger(app, bob), 0);
  assert.is(await uploadRows(app, bob), 0);
});

quota('aborted and expired reservations stay counted: reserve and abort is no way around the quota', async ({ app }) => {
  app.clock.set(T0);
  const sender = did('looper');
  await setMembers(app, CONVO, [alice, bob, sender]);
  for (let i = 0; i < 5; i++) {
    const r = await reserveSize(app, sender, 200);
    assert.is(r.status, 201, r.text);
    assert.is((await app.call('DELETE', `/api/v1/uploads/${r.body.message_id}`, { as: sender })).status, 204);
  }
  assertQuotaRefusal(await reserveSize(app, sender, 1), 25 * 3600 - 20 * 60);
  app.clock.advance(app.config.commitWindowSeconds * 1000 + 1000); // every upload is past its deadline
  assert.is((await limitsOf(app, sender)).bytes_reserved, QUOTA);
  assert.is((await reserveSize(app, sender, 1)).status, 429);
});

quota('the client library throws QuotaExceeded at once with its Retry-After instead of sleeping through it', async ({ app }) => {
  app.clock.set(T0);
  const sender = did('client-user');
  await setMembers(app, CONVO, [alice, bob, sender]);
  assert.is((await reserveSize(app, sender, QUOTA)).status, 201);
  const rec = recordingFetch(app);
  try {
    // The signal only bounds a regression (a client sleeping for a day); the assertions are on what was sent.
    await clientFor(app, sender, { fetch: rec.fetch }).upload(CONVO, randomBytes(10), { recipients: [bob], signal: AbortSignal.timeout(20_000) });
    assert.unreachable('the upload should be refused');
  } catch (err) {
    assert.instance(err, BrokerError);
    assert.is((err as BrokerError).code, 'QuotaExceeded');
    assert.is((err as BrokerError).retryAfter, 25 * 3600 - 20 * 60);
  }
  const reserves = rec.calls.filter((c) => c.method === 'POST' && c.url.endsWith('/api/v1/uploads'));
  assert.equal(reserves.map((c) => c.status), [429], 'one reservation, not retried');
});

quota('a non-member\'s 403 charges nothing', async ({ app }) => {
  app.clock.set(T0);
  const r = await reserveSize(app, mallory, 10);
  assert.is(r.status, 403);
  assert.is(await ledger(app, mallory), 0);
  assert.is((await limitsOf(app, mallory)).bytes_reserved, 0);
});

quota('reconciliation deletes hour buckets that have left the window, and only those', async ({ app }) => {
  const sender = did('pruned');
  await setMembers(app, CONVO, [alice, bob, sender]);
  app.clock.set(T0);
  assert.is((await reserveSize(app, sender, 10)).status, 201);
  app.clock.set(T0 + 3 * HOUR);
  assert.is((await reserveSize(app, sender, 20)).status, 201);
  const hours = async () => (await app.ctx.sql<{ n: number }[]>`select count(*)::int as n from upload_quota_hours where sender_did = ${sender}`)[0]!.n;
  assert.is(await hours(), 2);
  // 11:10 the next day: the 10:00 hour has left the window (at 11:00, plus the clock-skew margin),
  // the 13:00 one has not.
  const early = await reconcile(app.ctx, { now: new Date(Date.parse('2026-03-03T11:04:00Z')) });
  assert.is(early.prunedQuotaHours.count, 0, 'within the margin nothing goes');
  const r = await reconcile(app.ctx, { now: new Date(Date.parse('2026-03-03T11:10:00Z')) });
  assert.ok(r.prunedQuotaHours.count >= 1);
  assert.is(await hours(), 1);
  assert.is(await ledger(app, sender), 20);
});

quota.run();

// ---------------------------------------------------------------------------------------------
const capped = withApp('byte quota: with the pending cap', { MAX_BYTES_PER_DAY: String(QUOTA), MAX_PENDING_UPLOADS: '2' });

capped('a pending-cap 429 charges nothing; the quota answers first when both refuse (its wait is the longer)', async ({ app }) => {
  app.clock.set(T0);
  assert.is((await reserveSize(app, alice, 100)).status, 201);
  assert.is((await reserveSize(app, alice, 100)).status, 201);
  const capRefusal = await reserveSize(app, alice, 100);
  assert.is(capRefusal.status, 429);
  assert.is(capRefusal.body.error, 'RateLimited');
  assert.is(await ledger(app, alice), 200);
  const both = await reserveSize(app, alice, 900);
  assert.is(both.body.error, 'QuotaExceeded', both.text);
});

capped.run();

// ---------------------------------------------------------------------------------------------
const off = withApp('byte quota: off', { MAX_BYTES_PER_DAY: '0' });

off('MAX_BYTES_PER_DAY=0 turns the quota off: /limits says null, and nothing is counted', async ({ app }) => {
  app.clock.set(T0);
  assert.is((await reserveSize(app, alice, 5000)).status, 201);
  const l = await limitsOf(app, alice);
  assert.is(l.max_bytes_per_day, null);
  assert.is(l.bytes_reserved, null);
  assert.is(l.bytes_available, null);
  assert.is(await ledger(app, alice), 0);
});

off.run();

// ---------------------------------------------------------------------------------------------
const MIB = 1024 * 1024;
const multipart = withApp('byte quota: multipart', {
  MAX_BYTES_PER_DAY: String(12 * MIB),
  MULTIPART_THRESHOLD_BYTES: String(5 * MIB),
  PART_SIZE_BYTES: String(5 * MIB),
  REQUIRE_SHA256: 'false',
  MAX_PENDING_UPLOADS: '100',
});

multipart('a multipart reservation counts its declared total; one over the quota is refused before the store creates anything', async ({ app }) => {
  app.clock.set(T0);
  assert.is((await reserveSize(app, alice, 11 * MIB)).status, 201);
  assert.is((await limitsOf(app, alice)).bytes_reserved, 11 * MIB);
  const store = app.ctx.store;
  const original = store.createMultipart;
  let created = 0;
  store.createMultipart = (...args) => (created++, original.apply(store, args));
  try {
    const r = await reserveSize(app, alice, 6 * MIB);
    assert.is(r.body.error, 'QuotaExceeded', r.text);
    assert.is(created, 0, 'the store was not asked for a multipart upload');
  } finally {
    store.createMultipart = original;
  }
  assert.is(await ledger(app, alice), 11 * MIB);
});

multipart.run();

// ---------------------------------------------------------------------------------------------
const race = withApp('byte quota: parallel reservations', { MAX_BYTES_PER_DAY: String(QUOTA), MAX_PENDING_UPLOADS: '1000' });

race('of many parallel reservations by one sender exactly those that fit succeed, and only they are counted', async ({ app }) => {
  app.clock.set(T0);
  for (let round = 0; round < 4; round++) {
    const sender = did(`quota-racer-${round}`);
    await app.call('POST', `/api/v1/convos/${CONVO}/members`, { as: TEST_SERVICE, body: { add: [sender] } });
    // Equal sizes: exactly QUOTA / 100 fit. Mixed sizes: whatever succeeded fits, and every refused one did not fit.
    const sizes = round % 2 === 0 ? Array.from({ length: 15 }, () => 100) : Array.from({ length: 15 }, (_, i) => 50 + 37 * i);
    const answers = await Promise.all(sizes.map((size) => reserveSize(app, sender, size)));
    const won = sizes.filter((_, i) => answers[i]!.status === 201);
    const lost = sizes.filter((_, i) => answers[i]!.status !== 201);
    for (const i of answers.keys()) if (answers[i]!.status !== 201) assert.is(answers[i]!.body.error, 'QuotaExceeded', answers[i]!.text);
    const used = won.reduce((a, b) => a + b, 0);
    assert.ok(used <= QUOTA, `${used} bytes reserved`);
    for (const size of lost) assert.ok(used + size > QUOTA, `a reservation of ${size} was refused with ${used} reserved`);
    if (round % 2 === 0) assert.is(won.length, QUOTA / 100);
    assert.is(await ledger(app, sender), used);
    assert.is(await uploadRows(app, sender), won.length);
  }
});

race.run();
