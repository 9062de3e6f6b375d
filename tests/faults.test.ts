// Faults with real parts: a store that answers 503 on the wire, a database backend terminated in
// the middle of the commit transaction, a broker process SIGKILLed under 500 concurrent commits,
// and a DeleteObjects that fails for part of its batch. After each, the invariants hold: no
// row without bytes, no partial fan-out, nothing live deleted, and a retry succeeds.
import type { DeleteObjectsCommandInput, DeleteObjectsCommandOutput } from '@aws-sdk/client-s3';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { blobKeyFor, uuidv7 } from '../src/ids.js';
import { EXPIRY_MARGIN_MS } from '../src/lifecycle.js';
import { reconcile } from '../src/jobs/reconcile.js';
import { startBroker } from './helpers/broker-process.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { bytes, commit, md5b64, putBytes, reserve, send, setMembers, type Reserved } from './helpers/flow.js';
import { harness, startTestApp, TEST_SECRET, type TestApp } from './helpers/harness.js';
import { holdConvoLock, untilLockWaiters } from './helpers/locks.js';
import { did, mintToken } from './helpers/tokens.js';

const alice = did('alice');
const bob = did('bob');
const carol = did('carol');
const CONVO = 'convo-faults';
const DAY = 24 * 3600_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rowCounts(app: TestApp, id: string) {
  const [m] = await app.ctx.sql<{ n: number }[]>`select count(*)::int as n from messages where id = ${id}`;
  const [r] = await app.ctx.sql<{ n: number }[]>`select count(*)::int as n from message_recipients where message_id = ${id}`;
  const [u] = await app.ctx.sql<{ state: string }[]>`select state from uploads where message_id = ${id}`;
  return { messages: m!.n, recipients: r!.n, state: u?.state ?? null };
}

async function uploaded(app: TestApp): Promise<Reserved> {
  const data = bytes(48);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(await putBytes(r.upload, data), 200);
  return r;
}

// ---------------------------------------------------------------------------------------------
const store = suite<{ app: TestApp; proxy: FaultProxy }>('faults: the store fails at the commit HEAD', {} as never);

store.before(async (ctx) => {
  ctx.proxy = await startFaultProxy((await harness()).storeEndpoint);
  ctx.app = await startTestApp({ env: { R2_ENDPOINT: ctx.proxy.endpoint } });
  ctx.app.clock.set(Date.now());
  await setMembers(ctx.app, CONVO, [alice, bob, carol]);
});
store.after(async ({ app, proxy }) => {
  await app.close();
  await proxy.close();
});

for (const [name, verdict] of [
  ['answers 503', 503],
  ['resets the connection', 'reset'],
] as const) {
  store(`a store that ${name} on HEAD: 503 StorageUnavailable with Retry-After, no rows, the upload still pending; a retry commits`, async ({ app, proxy }) => {
    const r = await uploaded(app);
    proxy.faulted = 0;
    proxy.fault = (req) => (req.method === 'HEAD' ? verdict : null);
    let c;
    try {
      c = await commit(app, alice, { message_id: r.message_id });
    } finally {
      proxy.fault = null;
    }
    assert.is(c.status, 503, c.text);
    assert.is(c.body.error, 'StorageUnavailable');
    assert.ok(Number(c.headers.get('retry-after')) > 0);
    assert.ok(proxy.faulted >= 1, 'the HEAD really went to the failing store');
    assert.equal(await rowCounts(app, r.message_id), { messages: 0, recipients: 0, state: 'pending' });
    assert.ok(await app.ctx.store.head(r.blob_key), 'the object was not touched');

    const retry = await commit(app, alice, { message_id: r.message_id });
    assert.is(retry.status, 201, retry.text);
    assert.equal(await rowCounts(app, r.message_id), { messages: 1, recipients: 2, state: 'committed' });
  });
}

store.run();

// ---------------------------------------------------------------------------------------------
const backend = suite<{ app: TestApp }>('faults: the commit\u2019s database backend is terminated mid-transaction', {} as never);

backend.before(async (ctx) => {
  ctx.app = await startTestApp();
  ctx.app.clock.set(Date.now());
  await setMembers(ctx.app, CONVO, [alice, bob, carol]);
});
backend.after(({ app }) => app.close());

backend('503 DatabaseUnavailable with Retry-After, nothing written, the upload still pending; a retry commits', async ({ app }) => {
  const r = await uploaded(app);
  // Gate: the test holds the conversation's lock, so the commit stops inside its transaction
  // (the upload row locked, nothing inserted yet) until its backend is terminated.
  const gate = await holdConvoLock(app.ctx.sql, CONVO);
  try {
    const committing = commit(app, alice, { message_id: r.message_id });
    const [pid] = await untilLockWaiters(app.ctx.sql, 1, 'advisory'); // the commit reached its transaction
    const [t] = await app.ctx.sql<{ ok: boolean }[]>`select pg_terminate_backend(${pid!}) as ok`;
    assert.ok(t!.ok);
    const c = await committing;
    assert.is(c.status, 503, c.text);
    assert.is(c.body.error, 'DatabaseUnavailable');
    assert.ok(Number(c.headers.get('retry-after')) > 0);
  } finally {
    await gate.release();
  }
  // The pool has no dead connection left behind: more queries at once than it has connections.
  const answers = await Promise.all(Array.from({ length: 24 }, () => app.ctx.sql`select 1 as one`));
  assert.is(answers.length, 24);
  assert.equal(await rowCounts(app, r.message_id), { messages: 0, recipients: 0, state: 'pending' });
  const retry = await commit(app, alice, { message_id: r.message_id });
  assert.is(retry.status, 201, retry.text);
  assert.equal(await rowCounts(app, r.message_id), { messages: 1, recipients: 2, state: 'committed' });
});

backend.run();

// ---------------------------------------------------------------------------------------------
const N = 500;
const killed = suite<{ app: TestApp }>('faults: the broker is SIGKILLed during 500 concurrent commits', {} as never);

killed.before(async (ctx) => {
  ctx.app = await startTestApp({ env: { MAX_PENDING_UPLOADS: String(N) } });
  ctx.app.clock.set(Date.now());
  await setMembers(ctx.app, CONVO, [alice, bob, carol]);
});
killed.after(({ app }) => app.close());

/** Runs `fn` over `items`, `width` at a time. */
async function pool<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

killed('after a restart every upload is committed with all its recipients or still pending; one pass leaves no stray and no partial fan-out', async ({ app }) => {
  const t0 = Date.now();
  const uploads = await manyUploads(app, N);
  const setupMs = Date.now() - t0;
  const env = app.env;
  const first = await startBroker(env);
  const token = await mintToken(TEST_SECRET, alice);
  let answered = 0;
  let created = 0;
  const commits = uploads.map((u) =>
    fetch(`${first.url}/api/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message_id: u.message_id }),
    })
      .then(async (res) => {
        await res.arrayBuffer();
        answered++;
        if (res.status === 201) created++;
        return res.status;
      })
      .catch(() => -1),
  );
  // Kill it once some commits have answered and most are still in flight.
  for (let i = 0; i < 3000 && created < 20; i++) await sleep(5);
  first.child.kill('SIGKILL');
  const statuses = await Promise.all(commits);
  await first.exited;
  assert.ok(created >= 1, `some commits were answered before the kill (setup took ${setupMs} ms)`);
  assert.ok(statuses.includes(-1), `the kill cut commits off (answered ${answered} of ${N})`);
  for (const s of statuses) assert.ok(s === 201 || s === -1, `status ${s}`);

  const second = await startBroker(env);
  try {
    const ready = await fetch(`${second.url}/readyz`);
    assert.is(ready.status, 200, await ready.text());
    const states = await app.ctx.sql<{ state: string; n: number }[]>`select state, count(*)::int as n from uploads group by state order by state`;
    const byState = Object.fromEntries(states.map((s) => [s.state, s.n]));
    assert.equal(Object.keys(byState).filter((s) => s !== 'committed' && s !== 'pending'), [], JSON.stringify(byState));
    assert.ok((byState.committed ?? 0) >= created, JSON.stringify(byState));
    assert.ok((byState.pending ?? 0) > 0, `every commit finished before the kill: ${JSON.stringify(byState)}`);
    await assertAllOrNothing(app, 2);

    // The restarted broker commits a few of the rest: nothing was left stuck by the kill.
    const pending = await app.ctx.sql<{ message_id: string }[]>`select message_id from uploads where state = 'pending' limit 5`;
    for (const p of pending) {
      const res = await fetch(`${second.url}/api/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ message_id: p.message_id }),
      });
      assert.is(res.status, 201, await res.text());
    }
  } finally {
    second.child.kill('SIGTERM');
    await second.exited;
  }

  // One pass after every deadline: what never committed expires and loses its object.
  const deadline = Math.max(...uploads.map((u) => new Date(u.commit_deadline).getTime()));
  const report = await reconcile(app.ctx, { now: new Date(deadline + EXPIRY_MARGIN_MS + 1000) });
  assert.equal(report.errors, []);
  await assertAllOrNothing(app, 2);
  const messageKeys = new Set((await app.ctx.sql<{ blob_key: string }[]>`select blob_key from messages`).map((m) => m.blob_key));
  const objects: string[] = [];
  for (let next: string | null = null; ; ) {
    const page = await app.ctx.store.list({ prefix: '', next });
    objects.push(...page.objects.map((o) => o.key));
    if (page.next === null) break;
    next = page.next;
  }
  assert.equal(objects.filter((k) => !messageKeys.has(k)), [], 'no object without a message');
  assert.is(objects.length, messageKeys.size, 'every message keeps its object');
  assert.is(report.expiredUploads.count, N - messageKeys.size);
});

/**
 * `n` pending uploads with their objects in place, fast: the rows in one statement (as a
 * reservation writes them), the bytes through presigned PUTs as a client sends them.
 */
async function manyUploads(app: TestApp, n: number): Promise<{ message_id: string; blob_key: string; commit_deadline: string }[]> {
  const now = app.clock.now();
  const deadline = new Date(now.getTime() + app.config.commitWindowSeconds * 1000);
  const data = bytes(48);
  const md5 = md5b64(data);
  const rows = Array.from({ length: n }, () => {
    const id = uuidv7(now);
    return { message_id: id, sender_did: alice, convo_id: CONVO, blob_key: blobKeyFor(id, now), size: data.length, md5,
      content_type: 'application/octet-stream', state: 'pending', created_at: now, commit_deadline: deadline, updated_at: now,
      urls_valid_until: deadline };
  });
  await app.ctx.sql`insert into uploads ${app.ctx.sql(rows)}`;
  await pool(rows, 8, async (r) => {
    const p = await app.ctx.store.presignPut({ key: r.blob_key, size: data.length, md5, contentType: r.content_type, now: new Date(), expiresIn: 300 });
    // The emulator sometimes drops a connection under this load: a client would retry too.
    const status = await putBytes(p, data).catch(() => putBytes(p, data));
    assert.is(status, 200);
  });
  return rows.map((r) => ({ message_id: r.message_id, blob_key: r.blob_key, commit_deadline: deadline.toISOString() }));
}

/** Every message has its committed upload and exactly `recipients` recipient rows; no committed upload lacks its message. */
async function assertAllOrNothing(app: TestApp, recipients: number): Promise<void> {
  const partial = await app.ctx.sql`
    select m.id, count(r.recipient_did)::int as n from messages m
    left join message_recipients r on r.message_id = m.id
    group by m.id having count(r.recipient_did) <> ${recipients}`;
  assert.is(partial.length, 0, `partial fan-out: ${JSON.stringify(partial.slice(0, 3))}`);
  const orphans = await app.ctx.sql`
    select u.message_id, u.state, m.id as message from uploads u full join messages m on m.id = u.message_id
    where (u.state = 'committed') is distinct from (m.id is not null)`;
  assert.is(orphans.length, 0, `committed uploads and messages disagree: ${JSON.stringify(orphans.slice(0, 3))}`);
}

killed.run();

// ---------------------------------------------------------------------------------------------
const deletes = suite<{ app: TestApp }>('faults: DeleteObjects fails for part of a batch', {} as never);

deletes.before(async (ctx) => {
  ctx.app = await startTestApp({ env: { MAX_PENDING_UPLOADS: '100' } });
  ctx.app.clock.set(Date.now());
  await setMembers(ctx.app, CONVO, [alice, bob, carol]);
});
deletes.after(({ app }) => app.close());

const INJECTED = 'injectPartialDeleteFailure';

/**
 * The store reports `failing` keys as errors of their DeleteObjects batch (and keeps them) until
 * stop(). The client resolves its middleware once per command and keeps it (cacheMiddleware), so a
 * removed middleware would go on running: stop() empties the set instead.
 */
function failDeletesOf(app: TestApp, keys: ReadonlySet<string>): { stop(): void } {
  const failing = new Set(keys);
  app.ctx.store.client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'DeleteObjectsCommand') return next(args);
      const input = args.input as DeleteObjectsCommandInput;
      const objects = input.Delete?.Objects ?? [];
      const out = await next({ ...args, input: { ...input, Delete: { ...input.Delete, Objects: objects.filter((o) => !failing.has(o.Key!)) } } });
      const output = out.output as DeleteObjectsCommandOutput;
      output.Errors = [
        ...(output.Errors ?? []),
        ...objects.filter((o) => failing.has(o.Key!)).map((o) => ({ Key: o.Key, Code: 'InternalError', Message: 'injected' })),
      ];
      return out;
    },
    { step: 'initialize', name: INJECTED },
  );
  return { stop: () => failing.clear() };
}

deletes('failed keys keep their rows and objects, the rest are reclaimed, and the next pass finishes the job', async ({ app }) => {
  const start = app.clock.now().getTime();
  const messages = [];
  for (let i = 0; i < 4; i++) messages.push(await send(app, alice, CONVO));
  const expired = [];
  for (let i = 0; i < 4; i++) expired.push(await uploaded(app));
  const keyOf = async (id: string) => (await app.ctx.sql<{ blob_key: string }[]>`select blob_key from messages where id = ${id}`)[0]!.blob_key;
  const messageKeys = await Promise.all(messages.map(keyOf));
  const failing = new Set([messageKeys[1]!, messageKeys[3]!, expired[0]!.blob_key, expired[2]!.blob_key]);

  const injection = failDeletesOf(app, failing);
  const later = new Date(start + 31 * DAY); // past retention and every commit deadline
  let report;
  try {
    report = await reconcile(app.ctx, { now: later });
  } finally {
    injection.stop();
  }
  assert.not.ok(report.complete);
  assert.ok(report.errors.some((e) => e.category === 'retention'), JSON.stringify(report.errors));
  assert.ok(report.errors.some((e) => e.category === 'cleaned_uploads'), JSON.stringify(report.errors));
  assert.is(report.retention.count, 2);
  assert.is(report.expiredUploads.count, 4);
  for (const [i, id] of messages.entries()) {
    const kept = failing.has(messageKeys[i]!);
    const rows = await rowCounts(app, id);
    assert.equal([rows.messages, rows.recipients], kept ? [1, 2] : [0, 0], `message ${i}`);
    assert.is((await app.ctx.store.head(messageKeys[i]!)) !== null, kept, `object of message ${i}`);
  }
  for (const [i, u] of expired.entries()) {
    const kept = failing.has(u.blob_key);
    const [row] = await app.ctx.sql<{ state: string; cleaned_at: Date | null }[]>`select state, cleaned_at from uploads where message_id = ${u.message_id}`;
    // A cleaned upload row older than retention is pruned in the same pass; a failed one stays.
    if (kept) assert.equal(row, { state: 'expired', cleaned_at: null }, `upload ${i}`);
    else assert.ok(row === undefined || row.cleaned_at !== null, `upload ${i}: ${JSON.stringify(row)}`);
    assert.is((await app.ctx.store.head(u.blob_key)) !== null, kept, `object of upload ${i}`);
  }

  const next = await reconcile(app.ctx, { now: later });
  assert.equal(next.errors, []);
  assert.ok(next.complete);
  assert.is(next.retention.count, 2);
  assert.is(next.cleanedUploads.count, 2);
  for (const key of [...messageKeys, ...expired.map((u) => u.blob_key)]) assert.is(await app.ctx.store.head(key), null, key);
  const [left] = await app.ctx.sql<{ n: number }[]>`select count(*)::int as n from messages`;
  assert.is(left!.n, 0);
});

deletes.run();
