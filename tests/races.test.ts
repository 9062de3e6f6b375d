// Races between real concurrent requests. Each race is run in a bounded loop until every outcome
// it can have has been seen, and the test asserts that they were: a race that always resolves the
// same way proves nothing about the other side. The last one is gated deterministically instead.
import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../src/clock.js';
import { blobKeyFor } from '../src/ids.js';
import { EXPIRY_MARGIN_MS } from '../src/lifecycle.js';
import { reconcile } from '../src/jobs/reconcile.js';
import { startTestApp, type TestApp } from './helpers/harness.js';
import { holdConvoLock, untilLockWaiters } from './helpers/locks.js';
import { bytes, commit, md5b64, putBytes, reserve, setMembers } from './helpers/flow.js';
import { did } from './helpers/tokens.js';

const alice = did('alice');
const bob = did('bob');
const carol = did('carol');
const dave = did('dave');
const CONVO = 'convo-races';
const MAX_ROUNDS = 150;

/** Every reading is one millisecond after the previous: each request gets a timestamp of its own. */
class TickingClock extends ManualClock {
  override now(): Date {
    const d = super.now();
    this.advance(1);
    return d;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = async (app: TestApp, q: Promise<{ n: number }[]>) => (await q)[0]!.n;

function withApp(name: string, env: Record<string, string> = {}, clock?: ManualClock) {
  const s = suite<{ app: TestApp }>(name, {} as { app: TestApp });
  s.before(async (ctx) => {
    ctx.app = await startTestApp({ env, clock });
    await setMembers(ctx.app, CONVO, [alice, bob, carol, dave]);
  });
  s.after((ctx) => ctx.app.close());
  return s;
}

// ---------------------------------------------------------------------------------------------
const acks = withApp('races: concurrent acks of one message by all its recipients', {}, new TickingClock(Date.now()));

/** A committed message's rows, written directly: acks need no object. */
async function messageRows(app: TestApp, recipients: string[]): Promise<string> {
  const id = randomUUID();
  const now = new Date();
  await app.ctx.sql`
    insert into messages (id, convo_id, sender_did, blob_key, size, commit_digest, created_at)
    values (${id}, ${CONVO}, ${alice}, ${blobKeyFor(id, now)}, 10, 'd', ${now})`;
  await app.ctx.sql`
    insert into message_recipients (message_id, recipient_did)
    select ${id}::uuid, unnest(${app.ctx.sql.array(recipients)}::text[])`;
  return id;
}

/** Which recipient's ack stamped fully_acked_at: the one whose delivered_at it carries. */
async function stampedBy(app: TestApp, id: string): Promise<{ by: string[]; stamps: number }> {
  const [m] = await app.ctx.sql<{ fully_acked_at: Date | null }[]>`select fully_acked_at from messages where id = ${id}`;
  assert.ok(m?.fully_acked_at, `message ${id} was acked by everyone but fully_acked_at is not set`);
  const by = await app.ctx.sql<{ recipient_did: string }[]>`
    select recipient_did from message_recipients where message_id = ${id} and delivered_at = ${m!.fully_acked_at}`;
  const [log] = await app.ctx.sql<{ n: number }[]>`select count(*)::int as n from fully_acked_log where message_id = ${id}`;
  return { by: by.map((r) => r.recipient_did), stamps: log!.n };
}

acks.before(async ({ app }) => {
  // Every change of fully_acked_at is recorded: "set exactly once" is then a count, not a guess.
  await app.ctx.sql`create table fully_acked_log (message_id uuid not null, old_value timestamptz, new_value timestamptz)`;
  await app.ctx.sql`
    create function log_fully_acked() returns trigger language plpgsql as $$
    begin
      insert into fully_acked_log values (new.id, old.fully_acked_at, new.fully_acked_at);
      return new;
    end $$`;
  await app.ctx.sql`
    create trigger fully_acked_changes after update of fully_acked_at on messages
    for each row when (old.fully_acked_at is distinct from new.fully_acked_at) execute function log_fully_acked()`;
});

acks('single acks by every recipient at once: fully_acked_at is set exactly once, by whichever ack came last', async ({ app }) => {
  const recipients = [bob, carol, dave];
  const seen = new Set<string>();
  let rounds = 0;
  while (seen.size < 2 && rounds < MAX_ROUNDS) {
    rounds++;
    const id = await messageRows(app, recipients);
    const answers = await Promise.all(recipients.map((r) => app.call('POST', `/api/v1/messages/${id}/ack`, { as: r })));
    for (const a of answers) assert.is(a.status, 204, a.text);
    const { by, stamps } = await stampedBy(app, id);
    assert.is(stamps, 1, 'fully_acked_at was written exactly once');
    assert.is(by.length, 1, `exactly one ack carries the stamp (${by.join(', ')})`);
    seen.add(by[0]!);
  }
  assert.ok(seen.size >= 2, `after ${rounds} rounds the last ack always came from the same recipient: ${[...seen].join(', ')}`);
});

acks('batch acks of two messages in opposite orders never deadlock, and each message is stamped once', async ({ app }) => {
  const seen = new Set<string>();
  let rounds = 0;
  while (seen.size < 2 && rounds < MAX_ROUNDS) {
    rounds++;
    const m1 = await messageRows(app, [bob, carol]);
    const m2 = await messageRows(app, [bob, carol]);
    const [b, c, b1] = await Promise.all([
      app.call('POST', '/api/v1/messages/ack', { as: bob, body: { message_ids: [m1, m2] } }),
      app.call('POST', '/api/v1/messages/ack', { as: carol, body: { message_ids: [m2, m1] } }),
      // A single ack repeating one of the batch's: harmless, and one more lock taker.
      app.call('POST', `/api/v1/messages/${m2}/ack`, { as: bob }),
    ]);
    assert.is(b.status, 200, b.text);
    assert.is(c.status, 200, c.text);
    assert.is(b1.status, 204, b1.text);
    assert.equal(b.body, { acked: [m1, m2], not_found: [] });
    assert.equal(c.body, { acked: [m2, m1], not_found: [] });
    for (const id of [m1, m2]) {
      const { by, stamps } = await stampedBy(app, id);
      assert.is(stamps, 1);
      assert.ok(by.length >= 1);
      if (id === m1 && by.length === 1) seen.add(by[0]!);
    }
  }
  assert.equal([...seen].sort(), [bob, carol].sort(), `after ${rounds} rounds only ${[...seen].join(', ')} stamped the message`);
});

acks.run();

// ---------------------------------------------------------------------------------------------
const CAP = 5;
const cap = withApp('races: parallel reservations against the pending cap', { MAX_PENDING_UPLOADS: String(CAP) });

cap('of many parallel reservations by one sender exactly the cap succeed, the rest are 429, and only cap rows exist', async ({ app }) => {
  for (let round = 0; round < 4; round++) {
    const sender = did(`cap-sender-${round}`);
    await app.call('POST', `/api/v1/convos/${CONVO}/members`, { as: 'did:web:delivery.test', body: { add: [sender] } });
    const data = bytes(16);
    const answers = await Promise.all(
      Array.from({ length: CAP * 3 }, () =>
        app.call('POST', '/api/v1/uploads', { as: sender, body: { convo_id: CONVO, size: 16, md5: md5b64(data) } }),
      ),
    );
    const statuses = answers.map((a) => a.status);
    assert.is(statuses.filter((s) => s === 201).length, CAP, statuses.join(','));
    assert.is(statuses.filter((s) => s === 429).length, CAP * 2, statuses.join(','));
    for (const a of answers.filter((x) => x.status === 429)) assert.is(a.body.error, 'RateLimited');
    assert.is(await count(app, app.ctx.sql<{ n: number }[]>`select count(*)::int as n from uploads where sender_did = ${sender}`), CAP);
  }
});

cap.run();

// ---------------------------------------------------------------------------------------------
const abort = withApp('races: commit against DELETE', { MAX_PENDING_UPLOADS: '1000' });

abort('either the message is committed with its object, or the upload is aborted with no rows and no object', async ({ app }) => {
  const seen = new Set<'committed' | 'aborted'>();
  let rounds = 0;
  while (seen.size < 2 && rounds < MAX_ROUNDS) {
    rounds++;
    const data = bytes(32);
    const r = await reserve(app, alice, CONVO, data);
    assert.is(await putBytes(r.upload, data), 200);
    // A little jitter on either side, so that each request gets to go first some of the time.
    const delay = Math.floor(Math.random() * 8);
    const [c, d] = await Promise.all([
      sleep(rounds % 2 === 0 ? delay : 0).then(() => commit(app, alice, { message_id: r.message_id, recipients: [bob] })),
      sleep(rounds % 2 === 1 ? delay : 0).then(() => app.call('DELETE', `/api/v1/uploads/${r.message_id}`, { as: alice })),
    ]);
    const messages = await count(app, app.ctx.sql<{ n: number }[]>`select count(*)::int as n from messages where id = ${r.message_id}`);
    const recipients = await count(app, app.ctx.sql<{ n: number }[]>`select count(*)::int as n from message_recipients where message_id = ${r.message_id}`);
    const [u] = await app.ctx.sql<{ state: string }[]>`select state from uploads where message_id = ${r.message_id}`;
    const object = await app.ctx.store.head(r.blob_key);
    if (c.status === 201) {
      assert.is(d.status, 409, d.text);
      assert.is(d.body.error, 'Conflict');
      assert.is(u!.state, 'committed');
      assert.equal([messages, recipients], [1, 1]);
      assert.ok(object, 'a committed message keeps its object');
      seen.add('committed');
    } else {
      assert.is(c.status, 410, c.text);
      assert.is(c.body.error, 'UploadExpired');
      assert.is(d.status, 204, d.text);
      assert.is(u!.state, 'aborted');
      assert.equal([messages, recipients], [0, 0]);
      assert.is(object, null, 'an aborted upload loses its object');
      seen.add('aborted');
    }
  }
  assert.is(seen.size, 2, `after ${rounds} rounds only "${[...seen].join()}" was seen`);
});

abort.run();

// ---------------------------------------------------------------------------------------------
const rivals = withApp('races: commits of one upload with different recipients', { MAX_PENDING_UPLOADS: '1000' });

rivals('one commit answers 201, every other 409 Conflict, and the rows are the winner\u2019s', async ({ app }) => {
  const choices = [[bob], [carol], [bob, dave]];
  const seen = new Set<string>();
  let rounds = 0;
  while (seen.size < choices.length && rounds < MAX_ROUNDS) {
    rounds++;
    const data = bytes(32);
    const r = await reserve(app, alice, CONVO, data);
    assert.is(await putBytes(r.upload, data), 200);
    const answers = await Promise.all(
      choices.map((recipients) => commit(app, alice, { message_id: r.message_id, recipients, metadata: { who: recipients.join() } })),
    );
    const winners = answers.map((a, i) => (a.status === 201 ? i : -1)).filter((i) => i >= 0);
    assert.is(winners.length, 1, answers.map((a) => `${a.status} ${a.text}`).join('\n'));
    const w = winners[0]!;
    for (const [i, a] of answers.entries()) {
      if (i === w) continue;
      assert.is(a.status, 409, a.text);
      assert.is(a.body.error, 'Conflict');
    }
    const rows = await app.ctx.sql<{ recipient_did: string }[]>`
      select recipient_did from message_recipients where message_id = ${r.message_id} order by recipient_did`;
    assert.equal(rows.map((x) => x.recipient_did), [...choices[w]!].sort());
    const [m] = await app.ctx.sql<{ metadata: { who: string } }[]>`select metadata from messages where id = ${r.message_id}`;
    assert.is(m!.metadata.who, choices[w]!.join());
    assert.is(answers[w]!.body.recipient_count, choices[w]!.length);
    seen.add(String(w));
  }
  assert.is(seen.size, choices.length, `after ${rounds} rounds only commits ${[...seen].join(', ')} ever won`);
});

rivals.run();

// ---------------------------------------------------------------------------------------------
const deadline = withApp('races: commit against a reconciliation pass at the deadline', { MAX_PENDING_UPLOADS: '1000' });

async function prepared(app: TestApp) {
  app.clock.set(Date.now());
  const data = bytes(32);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(await putBytes(r.upload, data), 200);
  const due = new Date(new Date(r.commit_deadline).getTime() + EXPIRY_MARGIN_MS + 1);
  // The commit runs a millisecond before its deadline; the pass runs as if the deadline (and its
  // margin) had passed: a slow commit on one instance, the scheduler on another.
  app.clock.set(new Date(r.commit_deadline).getTime() - 1);
  return { r, due };
}

deadline('the commit holds the upload row first: it wins, and the pass leaves the upload and its object alone', async ({ app }) => {
  const { r, due } = await prepared(app);
  // Gate: the test holds the conversation's membership lock, so the commit stops inside its
  // transaction, holding the upload row, until released.
  const gate = await holdConvoLock(app.ctx.sql, CONVO);
  const committing = commit(app, alice, { message_id: r.message_id, recipients: [bob] });
  await untilLockWaiters(app.ctx.sql, 1);
  const passing = reconcile(app.ctx, { now: due });
  await untilLockWaiters(app.ctx.sql, 2); // the pass's expiry statement waits on the row the commit holds
  await gate.release();
  const [c, report] = await Promise.all([committing, passing]);
  assert.is(c.status, 201, c.text);
  assert.is(report.expiredUploads.count, 0);
  assert.equal(report.errors, []);
  const [u] = await app.ctx.sql<{ state: string }[]>`select state from uploads where message_id = ${r.message_id}`;
  assert.is(u!.state, 'committed');
  assert.ok(await app.ctx.store.head(r.blob_key), 'the committed object is still there');
  assert.is((await reconcile(app.ctx, { now: due })).expiredUploads.count, 0, 'a later pass leaves it too');
  assert.ok(await app.ctx.store.head(r.blob_key));
});

deadline('the pass expires the upload first: the commit answers 410 with no rows, and the object is gone', async ({ app }) => {
  const { r, due } = await prepared(app);
  // Gate: the commit's HEAD has verified the object; it waits there while the pass runs.
  const store = app.ctx.store;
  const head = store.head.bind(store);
  let headed!: () => void;
  const atHead = new Promise<void>((res) => (headed = res));
  let release!: () => void;
  const released = new Promise<void>((res) => (release = res));
  store.head = async (key: string) => {
    const result = await head(key);
    headed();
    await released;
    return result;
  };
  try {
    const committing = commit(app, alice, { message_id: r.message_id, recipients: [bob] });
    await atHead;
    const report = await reconcile(app.ctx, { now: due });
    assert.is(report.expiredUploads.count, 1);
    assert.is(report.cleanedUploads.count, 1);
    release();
    const c = await committing;
    assert.is(c.status, 410, c.text);
    assert.is(c.body.error, 'UploadExpired');
  } finally {
    store.head = head;
  }
  const [u] = await app.ctx.sql<{ state: string }[]>`select state from uploads where message_id = ${r.message_id}`;
  assert.is(u!.state, 'expired');
  assert.is(await count(app, app.ctx.sql<{ n: number }[]>`select count(*)::int as n from messages where id = ${r.message_id}`), 0);
  assert.is(await count(app, app.ctx.sql<{ n: number }[]>`select count(*)::int as n from message_recipients where message_id = ${r.message_id}`), 0);
  assert.is(await head(r.blob_key), null);
});

deadline.run();
