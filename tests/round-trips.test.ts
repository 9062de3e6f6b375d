// Round trips to PostgreSQL are a budget (README, "Architecture"): every statement a hot route sends is
// waiting time for the caller and driver CPU for the broker. This suite counts the statements each
// route sends through the context's own `sql` and fails when a route exceeds its budget.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSql, transaction, type Sql } from '../src/db/sql.js';
import { startTestApp, type TestApp } from './helpers/harness.js';
import { bytes, commit, md5b64, putBytes, reserve, setMembers } from './helpers/flow.js';
import { untilLockWaiters } from './helpers/locks.js';
import { did } from './helpers/tokens.js';

const test = suite('round trips per route');
let app: TestApp;
let recording: string[] | null = null;

// postgres.js asks a new connection for the server's array types once; that is the connection's
// cost, not the route's (a warm pool never sends it).
const isConnectionSetup = (s: string) => /from pg_catalog\.pg_type a/.test(s);

test.before(async () => {
  app = await startTestApp({
    onQuery: (s) => {
      if (recording !== null && !isConnectionSetup(s)) recording.push(s.replace(/\s+/g, ' ').trim());
    },
  });
});
test.after(async () => {
  await app?.close();
});

/** The statements `fn` sends; the budget's failure message lists them. */
async function statements(fn: () => Promise<unknown>): Promise<string[]> {
  recording = [];
  try {
    await fn();
    return recording;
  } finally {
    recording = null;
  }
}

function withinBudget(route: string, sent: string[], budget: number): void {
  assert.ok(sent.length <= budget, `${route} sent ${sent.length} statements (budget ${budget}):\n  ${sent.join('\n  ')}`);
}

const alice = did('alice');
const others = Array.from({ length: 10 }, (_, i) => did(`r${i}`));
const CONVO = 'budget';

test('reserve is one statement: membership, the byte quota and the pending cap under the sender\'s lock, the insert and the charge together', async () => {
  await setMembers(app, CONVO, [alice, ...others]);
  const data = bytes(16);
  await reserve(app, alice, CONVO, data); // warm: the pool's first connection, compiled schemas
  const sent = await statements(() => reserve(app, alice, CONVO, data));
  withinBudget('POST /api/v1/uploads', sent, 1);
});

test('a refused reservation (a non-member) is one statement too', async () => {
  const sent = await statements(async () => {
    const r = await app.call('POST', '/api/v1/uploads', { as: did('mallory'), body: { convo_id: CONVO, size: 16, md5: 'AAAAAAAAAAAAAAAAAAAAAA==' } });
    assert.is(r.status, 403);
  });
  withinBudget('POST /api/v1/uploads (403)', sent, 1);
});

test('a reservation over the byte quota (429 QuotaExceeded, with its Retry-After) is one statement too', async () => {
  const sender = others[0]!;
  // The sender's day is full: the ledger row stands for earlier reservations.
  const hour = new Date(Math.floor(app.clock.now().getTime() / 3_600_000) * 3_600_000);
  await app.ctx.sql`insert into upload_quota_hours (sender_did, hour, bytes) values (${sender}, ${hour}, ${app.config.maxBytesPerDay})`;
  const sent = await statements(async () => {
    const r = await app.call('POST', '/api/v1/uploads', { as: sender, body: { convo_id: CONVO, size: 16, md5: 'AAAAAAAAAAAAAAAAAAAAAA==' } });
    assert.is(r.status, 429, r.text);
    assert.is(r.body.error, 'QuotaExceeded');
  });
  withinBudget('POST /api/v1/uploads (429 QuotaExceeded)', sent, 1);
});

test('commit with 10 recipients is the HEAD plus at most 3 statements', async () => {
  const data = bytes(32);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(await putBytes(r.upload, data), 200);
  const sent = await statements(async () => {
    const c = await commit(app, alice, { message_id: r.message_id });
    assert.is(c.status, 201, c.text);
    assert.is(c.body.recipient_count, 10);
  });
  withinBudget('POST /api/v1/messages', sent, 3);
});

test('pending, fetch, blob, ack and batch ack are one statement each', async () => {
  const data = bytes(32);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await reserve(app, alice, CONVO, data);
    assert.is(await putBytes(r.upload, data), 200);
    assert.is((await commit(app, alice, { message_id: r.message_id })).status, 201);
    ids.push(r.message_id);
  }
  const bob = others[0]!;
  const pending = await statements(async () => {
    const p = await app.call('GET', '/api/v1/messages/pending?limit=100', { as: bob });
    assert.ok(p.body.messages.length >= 3);
  });
  withinBudget('GET /api/v1/messages/pending', pending, 1);
  const fetched = await statements(async () => assert.is((await app.call('GET', `/api/v1/messages/${ids[0]}`, { as: bob })).status, 200));
  withinBudget('GET /api/v1/messages/:id', fetched, 1);
  const blob = await statements(async () => assert.is((await app.call('GET', `/api/v1/messages/${ids[0]}/blob`, { as: bob })).status, 302));
  withinBudget('GET /api/v1/messages/:id/blob', blob, 1);
  const acked = await statements(async () => assert.is((await app.call('POST', `/api/v1/messages/${ids[0]}/ack`, { as: bob })).status, 204));
  withinBudget('POST /api/v1/messages/:id/ack', acked, 1);
  const batch = await statements(async () => {
    const r = await app.call('POST', '/api/v1/messages/ack', { as: bob, body: { message_ids: ids.slice(1) } });
    assert.equal(r.body.acked.sort(), ids.slice(1).sort());
  });
  withinBudget('POST /api/v1/messages/ack', batch, 1);
});

test.run();

// ---------------------------------------------------------------------------------------------
// The one-statement routes keep the guarantees of the transactions they replaced.
const guarantees = suite('one-statement routes: the same guarantees');
let capped: TestApp;
/** Connections of the test's own, apart from the broker's pool: they hold locks and watch waiters. */
let own: Sql;

guarantees.before(async () => {
  capped = await startTestApp({ env: { MAX_PENDING_UPLOADS: '5' } });
  own = createSql(capped.ctx.databaseUrl, { max: 2 });
});
guarantees.after(async () => {
  await own?.end();
  await capped?.close();
});

guarantees("the pending cap is exact: reservations queue on the sender's lock and each sees the ones before it", async () => {
  const dan = did('dan');
  await setMembers(capped, 'cap', [dan, alice]);
  const data = bytes(8);
  let statuses: Promise<number[]> | undefined;
  // Hold dan's quota lock while 40 reservations arrive: they must wait for it inside the statement
  // (pool size 8), and once it is released each must count what the ones before it inserted.
  await transaction(own, async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtextextended(${'quota:' + dan}, 0))`;
    statuses = Promise.all(
      Array.from({ length: 40 }, () =>
        capped.call('POST', '/api/v1/uploads', { as: dan, body: { convo_id: 'cap', size: 8, md5: md5b64(data) } }).then((r) => r.status),
      ),
    );
    await untilLockWaiters(own, 6);
  });
  const all = await statuses!;
  assert.is(all.filter((s) => s === 201).length, 5, all.join(','));
  assert.is(all.filter((s) => s === 429).length, 35);
  const [{ n }] = (await capped.ctx.sql`select count(*)::int as n from uploads where sender_did = ${dan}`) as unknown as [{ n: number }];
  assert.is(n, 5);
});

guarantees('a refused reservation writes nothing', async () => {
  const data = bytes(8);
  const mallory = did('mallory');
  const r = await capped.call('POST', '/api/v1/uploads', { as: mallory, body: { convo_id: 'cap', size: 8, md5: md5b64(data) } });
  assert.is(r.status, 403);
  const [{ n }] = (await capped.ctx.sql`select count(*)::int as n from uploads where sender_did = ${mallory}`) as unknown as [{ n: number }];
  assert.is(n, 0);
});

guarantees('recipients acking one message at once leave it fully acked: each ack sees the ones before it', async () => {
  const members = Array.from({ length: 6 }, (_, i) => did(`acker${i}`));
  await setMembers(capped, 'acks', [alice, ...members]);
  const data = bytes(8);
  const r = await reserve(capped, alice, 'acks', data);
  assert.is(await putBytes(r.upload, data), 200);
  assert.is((await commit(capped, alice, { message_id: r.message_id })).status, 201);
  let acks: Promise<number[]> | undefined;
  // Hold the message row while every recipient acks: they queue on it, and whichever goes last
  // must see the others' deliveries and stamp the message.
  await transaction(own, async (tx) => {
    await tx`select 1 from messages where id = ${r.message_id} for update`;
    acks = Promise.all(members.map((m) => capped.call('POST', `/api/v1/messages/${r.message_id}/ack`, { as: m }).then((a) => a.status)));
    await untilLockWaiters(own, members.length);
  });
  assert.equal(await acks!, members.map(() => 204));
  const [row] = await capped.ctx.sql`select fully_acked_at from messages where id = ${r.message_id}`;
  assert.ok(row!.fully_acked_at instanceof Date, 'the last ack stamped the message');
});

guarantees.run();
