// Reconciliation against the real PostgreSQL and the R2 emulator: what it deletes, what it must
// never delete, and that it is bounded, idempotent, resumable and one at a time.
import { runScript } from './helpers/processes.js';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { AppContext } from '../src/context.js';
import { tryLease } from '../src/db/leases.js';
import { createSql, type Sql } from '../src/db/sql.js';
import { blobKeyFor } from '../src/ids.js';
import { LEASE_TTL_SECONDS, RECONCILE_LEASE, reconcile, SKIPPED_LOCKED } from '../src/jobs/reconcile.js';
import { LOCK_LOST } from '../src/jobs/reconcile-pass.js';
import type { ReconcileReport } from '../src/jobs/reconcile-report.js';
import { ACK_GRACE_MS, EXPIRY_MARGIN_MS } from '../src/lifecycle.js';
import { startScheduler } from '../src/jobs/scheduler.js';
import { BlobStore, StoreUnavailable } from '../src/store/store.js';
import { startTestApp, testEnv, type TestApp } from './helpers/harness.js';
import { bytes, commit, md5b64, putBytes, reserve as reserveUpload, setMembers, type Reserved } from './helpers/flow.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const SENDER = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa';
const RECIPIENT = 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb';

const test = suite('reconcile: one pass over uploads, messages and the bucket');
let app: TestApp;
let ctx: AppContext;
let T: number;

test.before(async () => {
  app = await startTestApp();
  ctx = app.ctx;
});
test.after(async () => {
  await app?.close();
});
test.before.each(async () => {
  T = Date.now();
  await ctx.sql`truncate uploads, messages, message_recipients, convo_members`;
  for (;;) {
    const page = await ctx.store.list({ prefix: '' });
    if (page.objects.length === 0) break;
    await ctx.store.deleteMany(page.objects.map((o) => o.key));
  }
});

// --- fixtures: rows written directly, objects PUT through presigned URLs -------------------------

async function putObject(key: string, size = 32): Promise<void> {
  const body = bytes(size);
  const p = await ctx.store.presignPut({ key, size, md5: md5b64(body), contentType: 'application/octet-stream', now: new Date(), expiresIn: 60 });
  const { 'content-length': _len, ...headers } = p.headers;
  const res = await fetch(p.url, { method: 'PUT', headers, body });
  await res.arrayBuffer();
  assert.is(res.status, 200);
}

const exists = async (key: string) => (await ctx.store.head(key)) !== null;

interface UploadFixture {
  id: string;
  key: string;
  size: number;
}

/** A reservation made at `at`; `object` PUTs its bytes. */
async function upload(
  at: number,
  o: { object?: boolean; state?: string; cleaned?: boolean; size?: number; multipart?: string; windowMs?: number } = {},
): Promise<UploadFixture> {
  const id = randomUUID();
  const key = blobKeyFor(id, new Date(at));
  const size = o.size ?? 32;
  const deadline = new Date(at + (o.windowMs ?? ctx.config.commitWindowSeconds * 1000));
  await ctx.sql`
    insert into uploads (message_id, sender_did, convo_id, blob_key, size, md5, content_type, multipart_upload_id,
                         part_size, state, created_at, commit_deadline, updated_at, cleaned_at, urls_valid_until)
    values (${id}, ${SENDER}, 'c1', ${key}, ${size}, ${o.multipart ? null : 'AAAAAAAAAAAAAAAAAAAAAA=='},
            'application/octet-stream', ${o.multipart ?? null}, ${o.multipart ? 5 * 1024 * 1024 : null},
            ${o.state ?? 'pending'}, ${new Date(at)}, ${deadline}, ${new Date(at)}, ${o.cleaned ? new Date(at) : null},
            ${urlsUntil(at, deadline)})`;
  if (o.object) await putObject(key, size);
  return { id, key, size };
}

/** The first upload URL's expiry, as the broker would have issued it. */
const urlsUntil = (at: number, deadline: Date) => new Date(Math.min(deadline.getTime(), at + ctx.config.uploadUrlTtlSeconds * 1000));

/** A committed message (upload committed, message and recipient rows) created at `at`. */
async function message(at: number, o: { object?: boolean; ackedAt?: number; size?: number } = {}): Promise<UploadFixture> {
  const u = await upload(at, { object: o.object ?? true, state: 'committed', size: o.size });
  const acked = o.ackedAt === undefined ? null : new Date(o.ackedAt);
  await ctx.sql`
    insert into messages (id, convo_id, sender_did, blob_key, size, commit_digest, created_at, fully_acked_at)
    values (${u.id}, 'c1', ${SENDER}, ${u.key}, ${u.size}, 'd', ${new Date(at)}, ${acked})`;
  await ctx.sql`
    insert into message_recipients (message_id, recipient_did, delivered, delivered_at)
    values (${u.id}, ${RECIPIENT}, ${acked !== null}, ${acked})`;
  return u;
}

async function uploadRow(id: string) {
  const [row] = await ctx.sql<{ state: string; cleaned_at: Date | null }[]>`select state, cleaned_at from uploads where message_id = ${id}`;
  return row ?? null;
}
const messageCount = async (id: string) => (await ctx.sql<{ n: number }[]>`select count(*)::int as n from messages where id = ${id}`)[0]!.n;
const recipientCount = async (id: string) =>
  (await ctx.sql<{ n: number }[]>`select count(*)::int as n from message_recipients where message_id = ${id}`)[0]!.n;

function assertNothingDone(r: ReconcileReport): void {
  assert.equal(
    [r.expiredUploads.count, r.cleanedUploads.count, r.prunedUploads.count, r.retention.count, r.acked.count, r.strays.count, r.missing.count],
    [0, 0, 0, 0, 0, 0, 0],
    JSON.stringify(r),
  );
  assert.equal(r.errors, []);
  assert.ok(r.complete);
}

const pass = (now: number, o: Parameters<typeof reconcile>[1] = {}) => reconcile(ctx, { now: new Date(now), ...o });

// --- expired uploads ----------------------------------------------------------------------------

test('an upload inside its commit window survives any number of passes', async () => {
  const u = await upload(T, { object: true });
  const deadline = T + ctx.config.commitWindowSeconds * 1000;
  for (const now of [T, T + MIN, deadline - 1, deadline, deadline + 1, deadline + EXPIRY_MARGIN_MS]) {
    for (let i = 0; i < 2; i++) assertNothingDone(await pass(now));
    assert.is((await uploadRow(u.id))?.state, 'pending');
    assert.ok(await exists(u.key), `object kept at ${now - T} ms`);
  }
});

test('past deadline + margin the upload is marked expired, its object deleted and cleaned_at set; a second pass finds nothing', async () => {
  const u = await upload(T, { object: true, size: 40 });
  const after = T + ctx.config.commitWindowSeconds * 1000 + EXPIRY_MARGIN_MS + 1;
  const r = await pass(after);
  assert.equal(r.expiredUploads, { count: 1, bytes: 40 });
  assert.equal(r.cleanedUploads, { count: 1, bytes: 40 });
  assert.ok(r.complete);
  const row = await uploadRow(u.id);
  assert.is(row?.state, 'expired');
  assert.ok(row?.cleaned_at instanceof Date);
  assert.not.ok(await exists(u.key));
  assertNothingDone(await pass(after));
});

test('an expired multipart upload is aborted, found from our own row', async () => {
  const id = randomUUID();
  const key = blobKeyFor(id, new Date(T));
  const uploadId = await ctx.store.createMultipart(key, 'application/octet-stream');
  const part = bytes(1024);
  const p = await ctx.store.presignPart({ key, uploadId, partNumber: 1, size: part.length, now: new Date(), expiresIn: 60 });
  const res = await fetch(p.url, { method: 'PUT', body: part });
  await res.arrayBuffer();
  assert.is(res.status, 200);
  const etag = (res.headers.get('etag') ?? '').replace(/"/g, '');
  await ctx.sql`
    insert into uploads (message_id, sender_did, convo_id, blob_key, size, content_type, multipart_upload_id, part_size,
                         state, created_at, commit_deadline, updated_at, urls_valid_until)
    values (${id}, ${SENDER}, 'c1', ${key}, 1024, 'application/octet-stream', ${uploadId}, ${5 * 1024 * 1024}, 'pending',
            ${new Date(T)}, ${new Date(T + HOUR)}, ${new Date(T)}, ${urlsUntil(T, new Date(T + HOUR))})`;
  const r = await pass(T + HOUR + EXPIRY_MARGIN_MS + 1);
  assert.is(r.expiredUploads.count, 1);
  assert.is(r.cleanedUploads.count, 1);
  try {
    await ctx.store.completeMultipart(key, uploadId, [{ partNumber: 1, etag }]);
    assert.unreachable('the multipart upload should be gone');
  } catch (err) {
    assert.instance(err, Error);
    assert.is((err as { storeCode?: string }).storeCode, 'NoSuchUpload');
  }
  assert.not.ok(await exists(key));
});

test('aborted, expired and rejected uploads whose bytes were left behind are swept once', async () => {
  const aborted = await upload(T - HOUR, { object: true, state: 'aborted' });
  const rejected = await upload(T - HOUR, { object: true, state: 'rejected' });
  const crashed = await upload(T - 3 * HOUR, { object: true, state: 'expired' });
  const done = await upload(T - HOUR, { object: false, state: 'aborted', cleaned: true });
  const r = await pass(T);
  assert.is(r.cleanedUploads.count, 3);
  assert.is(r.expiredUploads.count, 0);
  for (const u of [aborted, rejected, crashed]) {
    assert.not.ok(await exists(u.key));
    assert.ok((await uploadRow(u.id))?.cleaned_at instanceof Date);
  }
  assert.ok((await uploadRow(done.id)) !== null);
  assertNothingDone(await pass(T));
});

test('finished upload rows are pruned after retention; pending ones never are', async () => {
  const old = T - 31 * DAY;
  const committed = await upload(old, { state: 'committed' });
  const cleaned = await upload(old, { state: 'expired', cleaned: true });
  const pending = await upload(old, { state: 'pending', windowMs: 40 * DAY });
  const young = await upload(T - DAY, { state: 'aborted', cleaned: true });
  const r = await pass(T);
  assert.is(r.prunedUploads.count, 2);
  assert.is(await uploadRow(committed.id), null);
  assert.is(await uploadRow(cleaned.id), null);
  assert.is((await uploadRow(pending.id))?.state, 'pending');
  assert.ok((await uploadRow(young.id)) !== null);
  assertNothingDone(await pass(T));
});

// --- messages -------------------------------------------------------------------------------------

test('a committed message inside retention survives; past retention its object goes, then its rows', async () => {
  const m = await message(T, { size: 50 });
  const retention = ctx.config.retentionDays * DAY;
  for (const now of [T, T + DAY, T + retention - 1, T + retention]) {
    const r = await pass(now);
    assert.is(r.retention.count, 0, `at +${now - T} ms`);
    assert.is(await messageCount(m.id), 1);
    assert.ok(await exists(m.key));
  }
  const r = await pass(T + retention + 1);
  assert.equal(r.retention, { count: 1, bytes: 50 });
  assert.is(await messageCount(m.id), 0);
  assert.is(await recipientCount(m.id), 0);
  assert.not.ok(await exists(m.key));
  assert.is(r.prunedUploads.count, 1, 'its committed upload row is pruned too');
  assertNothingDone(await pass(T + retention + 1));
});

test('a fully acked message is deleted after the grace period, and only with DELETE_AFTER_ACK', async () => {
  const acked = await message(T - 2 * HOUR, { ackedAt: T - HOUR, size: 20 });
  const unacked = await message(T - 2 * HOUR);
  assert.is((await pass(T + ACK_GRACE_MS - HOUR)).acked.count, 0, 'inside the grace period');
  assert.is(await messageCount(acked.id), 1);
  const keep = await reconcile({ ...ctx, config: { ...ctx.config, deleteAfterAck: false } }, { now: new Date(T + DAY) });
  assert.is(keep.acked.count, 0);
  assert.is(await messageCount(acked.id), 1);
  assert.ok(await exists(acked.key));
  const r = await pass(T + ACK_GRACE_MS - HOUR + 1);
  assert.equal(r.acked, { count: 1, bytes: 20 });
  assert.is(await messageCount(acked.id), 0);
  assert.is(await recipientCount(acked.id), 0);
  assert.not.ok(await exists(acked.key));
  assert.is(await messageCount(unacked.id), 1);
  assert.ok(await exists(unacked.key));
});

// --- the bucket: strays and missing objects -----------------------------------------------------

test('strays older than the commit window + margin are deleted; objects with live rows and young strays stay', async () => {
  const later = T + ctx.config.commitWindowSeconds * 1000 + EXPIRY_MARGIN_MS + MIN;
  const stray = blobKeyFor(randomUUID(), new Date(T));
  await putObject(stray, 10);
  const pending = await upload(later - 10 * MIN, { object: true });
  const live = await message(T);
  const reappeared = await upload(T - HOUR, { object: true, state: 'expired', cleaned: true });
  const elsewhere = 'other/2026/keep-me';
  await putObject(elsewhere);

  const young = await pass(T);
  assert.is(young.strays.count, 0, 'a young stray may be an upload in flight');
  assert.ok(await exists(stray));

  const r = await pass(later);
  assert.equal(r.strays, { count: 2, bytes: 42 });
  assert.not.ok(await exists(stray));
  assert.not.ok(await exists(reappeared.key));
  assert.ok(await exists(pending.key));
  assert.ok(await exists(live.key));
  assert.ok(await exists(elsewhere));
  assert.is(r.missing.count, 0);
  assertNothingDone(await pass(later));
});

test('the bucket is listed page by page and every page is reconciled', async () => {
  const later = T + 2 * HOUR;
  const strays: string[] = [];
  for (let i = 0; i < 5; i++) {
    const k = blobKeyFor(randomUUID(), new Date(T));
    strays.push(k);
    await putObject(k);
  }
  const live = [await message(T), await message(T), await message(T)];
  let lists = 0;
  const counting = new Proxy(ctx.store, {
    get(target, prop, receiver) {
      if (prop === 'list') return (args: Parameters<BlobStore['list']>[0]) => (lists++, target.list(args));
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const r = await reconcile({ ...ctx, store: counting }, { now: new Date(later), pageSize: 2, batch: 2 });
  assert.is(r.strays.count, 5);
  assert.is(r.listed, 8);
  assert.ok(lists >= 4 + ctx.config.retentionDays, `listed ${lists} pages`);
  for (const k of strays) assert.not.ok(await exists(k));
  for (const m of live) assert.ok(await exists(m.key));
  assert.is(r.missing.count, 0);
});

test('a live message whose object is gone is reported at error level, counted in a gauge, and kept', async () => {
  const gone = await message(T - HOUR, { object: false });
  const recent = await message(T - MIN, { object: false }); // may have been committed after the listing
  const ackDue = await message(T - 3 * HOUR, { object: false, ackedAt: T - 2 * HOUR });
  const present = await message(T - HOUR);
  const lines: string[] = [];
  const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
  const r = await reconcile({ ...ctx, log }, { now: new Date(T) });
  assert.equal(r.missing, { count: 1, messageIds: [gone.id] });
  assert.is(r.acked.count, 1, 'a fully acked message is deleted, not reported');
  assert.is(await messageCount(gone.id), 1);
  assert.is(await messageCount(recent.id), 1);
  assert.is(await messageCount(ackDue.id), 0);
  assert.ok(await exists(present.key));
  assert.is(lines.length, 1, 'one log line per pass');
  const line = JSON.parse(lines[0]!);
  assert.is(line.level, 50);
  assert.equal(line.reconcile.missing.messageIds, [gone.id]);
  const gauge = await ctx.metrics.reconcileMissing.get();
  assert.is(gauge.values[0]?.value, 1);
});

// --- dry run, limits, faults, lock -------------------------------------------------------------

test('a dry run reports what it would do and changes nothing', async () => {
  const now = T + 2 * HOUR;
  const expiring = await upload(T - HOUR, { object: true });
  const old = await message(T - 31 * DAY);
  const acked = await message(T - 3 * HOUR, { ackedAt: T - 2 * HOUR });
  const stray = blobKeyFor(randomUUID(), new Date(T));
  await putObject(stray);
  const missing = await message(T, { object: false });
  const r = await pass(now, { dryRun: true });
  assert.ok(r.dryRun);
  assert.is(r.expiredUploads.count, 1);
  assert.is(r.cleanedUploads.count, 1);
  assert.is(r.retention.count, 1);
  assert.is(r.acked.count, 1);
  assert.is(r.strays.count, 1);
  assert.equal(r.missing.messageIds, [missing.id]);
  assert.is((await uploadRow(expiring.id))?.state, 'pending');
  for (const k of [expiring.key, acked.key, stray]) assert.ok(await exists(k), k);
  for (const m of [old, acked]) assert.is(await messageCount(m.id), 1);

  const real = await pass(now);
  assert.equal(
    [real.expiredUploads.count, real.retention.count, real.acked.count, real.strays.count, real.missing.count],
    [1, 1, 1, 1, 1],
  );
  const again = await pass(now);
  assert.is(again.missing.count, 1, 'missing stays reported until someone acts');
  assert.equal([again.expiredUploads.count, again.cleanedUploads.count, again.retention.count, again.acked.count, again.strays.count], [0, 0, 0, 0, 0]);
});

test('a limit leaves the rest to the next pass, which finishes the job', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 7; i++) ids.push((await upload(T - 3 * HOUR, { object: true })).id);
  const counts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await pass(T, { limit: 3 });
    counts.push(r.expiredUploads.count);
    assert.is(r.complete, i === 2 ? true : false, `pass ${i}`);
  }
  assert.equal(counts, [3, 3, 1]);
  for (const id of ids) assert.is((await uploadRow(id))?.state, 'expired');
  assertNothingDone(await pass(T));
});

test('a pass that fails after marking uploads expired is finished by the next one', async () => {
  const u = await upload(T - 3 * HOUR, { object: true });
  const broken = new Proxy(ctx.store, {
    get(target, prop, receiver) {
      if (prop === 'deleteMany') return async () => Promise.reject(new StoreUnavailable('store request failed: injected'));
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const r = await reconcile({ ...ctx, store: broken }, { now: new Date(T) });
  assert.is(r.expiredUploads.count, 1);
  assert.is(r.cleanedUploads.count, 0);
  assert.not.ok(r.complete);
  assert.ok(r.errors.some((e) => e.category === 'expired_uploads' && e.message.includes('injected')), JSON.stringify(r.errors));
  const row = await uploadRow(u.id);
  assert.is(row?.state, 'expired');
  assert.is(row?.cleaned_at, null);
  assert.ok(await exists(u.key));

  const next = await pass(T);
  assert.is(next.expiredUploads.count, 0);
  assert.is(next.cleanedUploads.count, 1);
  assert.not.ok(await exists(u.key));
  assertNothingDone(await pass(T));
});

test('DeleteObjects batches hold at most 1000 keys and rows go in bounded batches', async () => {
  await ctx.sql`
    insert into messages (id, convo_id, sender_did, blob_key, size, commit_digest, created_at)
    select id, 'c1', ${SENDER}, 'm/2020/01/01/' || id::text, 10, 'd', ${new Date(T - 40 * DAY)}
    from (select gen_random_uuid() as id from generate_series(1, 2300)) g`;
  const sizes: number[] = [];
  const recording = new Proxy(ctx.store, {
    get(target, prop, receiver) {
      if (prop === 'deleteMany') return (keys: string[]) => (sizes.push(keys.length), target.deleteMany(keys));
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const r = await reconcile({ ...ctx, store: recording }, { now: new Date(T) });
  assert.equal(r.retention, { count: 2300, bytes: 23000 });
  assert.ok(sizes.length >= 3 && sizes.every((n) => n > 0 && n <= 1000), String(sizes));
  assert.is((await ctx.sql<{ n: number }[]>`select count(*)::int as n from messages`)[0]!.n, 0);
});

test('a pass whose lease expired and was taken over stops at the next batch, and the process survives', async () => {
  // Slow listing, so the pass is still running when its lease is taken from it (as if this
  // process had stalled past the lease's lifetime and another instance had started a pass).
  const store = Object.create(ctx.store) as typeof ctx.store;
  store.list = async (args) => {
    await new Promise((r) => setTimeout(r, 300));
    return ctx.store.list(args);
  };
  const running = reconcile({ ...ctx, store }, { now: new Date(T) });
  await new Promise((r) => setTimeout(r, 200));
  const taken = await ctx.sql`update job_leases set holder = 'another instance' where name = ${RECONCILE_LEASE} returning name`;
  assert.is(taken.length, 1, 'the pass holds the lease in a row');
  const r = await running;
  assert.is(r.complete, false);
  assert.ok(r.errors.some((e) => e.category === 'lock' && e.message === LOCK_LOST), JSON.stringify(r.errors));
  assert.is((await ctx.sql`select holder from job_leases`)[0]?.holder, 'another instance', 'the pass never deletes a lease that is not its own');
  // The other holder's lease runs out (it crashed): the next pass takes it over and finishes.
  await ctx.sql`update job_leases set expires_at = now() - interval '1 second'`;
  const next = await pass(T);
  assert.is(next.skipped, null);
  assert.is(next.complete, true);
  assert.is((await ctx.sql`select count(*)::int as n from job_leases`)[0]!.n, 0, 'released at the end');
});

test('a concurrent pass returns at once saying another pass holds the lease', async () => {
  const u = await upload(T - 3 * HOUR, { object: true });
  const lock = await tryLease(ctx.sql, RECONCILE_LEASE, LEASE_TTL_SECONDS);
  assert.ok(lock);
  try {
    const t0 = Date.now();
    const r = await pass(T);
    assert.is(r.skipped, SKIPPED_LOCKED);
    assert.ok(Date.now() - t0 < 2000);
    assert.is((await uploadRow(u.id))?.state, 'pending');
  } finally {
    await lock!.release();
  }
  const r = await pass(T);
  assert.is(r.skipped, null);
  assert.is(r.expiredUploads.count, 1);
  const [a, b] = await Promise.all([pass(T), pass(T)]);
  assert.ok(a.skipped === null || b.skipped === null, 'one of two concurrent passes runs');
});

test('expiry waits for a commit that holds the upload row, and then leaves the committed upload alone', async () => {
  const u = await upload(T - 2 * HOUR, { object: true });
  let finish!: () => void;
  const gate = new Promise<void>((r) => (finish = r));
  let locked!: () => void;
  const hasLock = new Promise<void>((r) => (locked = r));
  // What the commit route does in its transaction, held open while the pass runs.
  const committing = ctx.sql.begin(async (tx) => {
    await tx`select 1 from uploads where message_id = ${u.id} for update`;
    locked();
    await gate;
    await tx`insert into messages (id, convo_id, sender_did, blob_key, size, commit_digest, created_at)
             values (${u.id}, 'c1', ${SENDER}, ${u.key}, ${u.size}, 'd', ${new Date(T - HOUR)})`;
    await tx`update uploads set state = 'committed' where message_id = ${u.id}`;
  });
  await hasLock;
  let settled = false;
  const running = pass(T).then((r) => ((settled = true), r));
  await new Promise((r) => setTimeout(r, 300));
  assert.not.ok(settled, 'the pass waits on the row lock');
  finish();
  await committing;
  const r = await running;
  assert.is(r.expiredUploads.count, 0);
  assert.is((await uploadRow(u.id))?.state, 'committed');
  assert.ok(await exists(u.key));
  assert.is(await messageCount(u.id), 1);
});

test('counters are exported as metrics', async () => {
  await upload(T - 3 * HOUR, { object: true, size: 64 });
  const expired = async () => (await ctx.metrics.reconcileItems.get()).values.find((x) => x.labels.category === 'expired_uploads')?.value ?? 0;
  const before = await expired();
  await pass(T);
  assert.is((await expired()) - before, 1);
  const text = await ctx.metrics.registry.metrics();
  assert.match(text, /broker_reconcile_runs_total\{outcome="ok"\} \d+/);
  assert.match(text, /broker_reconcile_bytes_total\{category="cleaned_uploads"\} \d+/);
  assert.match(text, /broker_reconcile_last_success_timestamp_seconds \d/);
});

// --- the scheduler -------------------------------------------------------------------------------

test('the scheduler runs passes on its cron and stop() waits for the running one', async () => {
  const runs = async () => (await ctx.metrics.reconcileRuns.get()).values.reduce((s, v) => s + v.value, 0);
  const off = startScheduler({ ...ctx, config: { ...ctx.config, reconcileCron: null } });
  await off.stop();
  const start = await runs();
  const s = startScheduler({ ...ctx, config: { ...ctx.config, reconcileCron: '* * * * * *' } });
  const deadline = Date.now() + 5000;
  while ((await runs()) === start && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await s.stop();
  const stopped = await runs();
  assert.ok(stopped > start, 'at least one pass ran');
  await new Promise((r) => setTimeout(r, 1500));
  assert.is(await runs(), stopped, 'no pass after stop()');
  assert.throws(() => startScheduler({ ...ctx, config: { ...ctx.config, reconcileCron: '99 * * * *' } }), /not a valid cron/);
});

test.run();

// --- npm run reconcile as a child process ----------------------------------------------------------

const cli = suite('npm run reconcile');
let env: Record<string, string>;
let cliSql: Sql;

const runCli = (args: string[], extra: Record<string, string> = {}) => runScript('scripts/reconcile.ts', args, { ...env, ...extra });

cli.before(async () => {
  env = await testEnv();
  cliSql = createSql(env.DATABASE_URL!, { max: 1 });
});
cli.after(async () => {
  await cliSql?.end({ timeout: 1 });
});

cli('--dry-run --json reports an expired upload and changes nothing; without --dry-run it expires it', async () => {
  const id = randomUUID();
  const at = new Date(Date.now() - 3 * HOUR);
  await cliSql`
    insert into uploads (message_id, sender_did, convo_id, blob_key, size, md5, content_type, state, created_at, commit_deadline,
                         urls_valid_until)
    values (${id}, ${SENDER}, 'c1', ${blobKeyFor(id, at)}, 12, 'AAAAAAAAAAAAAAAAAAAAAA==', 'application/octet-stream', 'pending',
            ${at}, ${new Date(at.getTime() + HOUR)}, ${new Date(at.getTime() + 300_000)})`;
  const dry = await runCli(['--dry-run', '--json']);
  assert.is(dry.code, 0, dry.stderr);
  const report = JSON.parse(dry.stdout) as ReconcileReport;
  assert.ok(report.dryRun);
  assert.equal(report.expiredUploads, { count: 1, bytes: 12 });
  const state = async () => (await cliSql<{ state: string }[]>`select state from uploads where message_id = ${id}`)[0]?.state;
  assert.is(await state(), 'pending');

  const real = await runCli([]);
  assert.is(real.code, 0, real.stderr);
  assert.match(real.stdout, /expired uploads\s+1 marked expired/);
  assert.is(await state(), 'expired');
});

cli('--now pretends the clock reads that time; a bad value is refused in one line', async () => {
  const r = await runCli(['--json', '--dry-run', '--now', '2031-02-03T04:05:06Z']);
  assert.is(r.code, 0, r.stderr);
  assert.is((JSON.parse(r.stdout) as ReconcileReport).now, '2031-02-03T04:05:06.000Z');
  const bad = await runCli(['--now', 'tomorrow']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--now must be an RFC 3339 time/);
  const ahead = await runCli(['--now', '2031-02-03T04:05:06Z']);
  assert.is(ahead.code, 2, 'a pass from the future is refused unless it is a dry run');
  assert.match(ahead.stderr, /--dry-run/);
  const past = await runCli(['--json', '--now', '2020-01-01T00:00:00Z']);
  assert.is(past.code, 0, past.stderr);
});

cli('an unreachable database or bucket is one clear line and a non-zero exit, no stack trace', async () => {
  const db = await runCli([], { DATABASE_URL: 'postgres://nobody@127.0.0.1:9/none' });
  assert.is.not(db.code, 0);
  assert.match(db.stderr, /^cannot reach the database: /);
  assert.is(db.stderr.trim().split('\n').length, 1, db.stderr);
  const bucket = await runCli([], { R2_ENDPOINT: 'http://127.0.0.1:9' });
  assert.is.not(bucket.code, 0);
  assert.match(bucket.stderr, /^cannot reach the bucket /);
  assert.is(bucket.stderr.trim().split('\n').length, 1, bucket.stderr);
  assert.not.match(db.stderr + bucket.stderr, /\n\s+at /);
});

cli('on a terminal it shows listing progress on stderr; piped, it does not', async () => {
  // `script` (util-linux) gives the child a pseudo-terminal, as an operator's shell would.
  const { spawn } = await import('node:child_process');
  const child = spawn('script', ['-q', '-e', '-c', `${process.execPath} --import tsx scripts/reconcile.ts --dry-run`, '/dev/null'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise((r) => child.once('exit', r));
  assert.is(code, 0, out);
  assert.match(out, /listing m\/\d{4}\/\d{2}\/\d{2}\/ … \d+ objects/);
  const piped = await runCli(['--dry-run']);
  assert.is(piped.code, 0);
  assert.not.match(piped.stderr + piped.stdout, /listing m\//);
});

cli.run();

// --- the deadline boundary, through the real commit route ---------------------------------------------

const boundary = suite('reconcile against commits at the deadline (HTTP)');
let web: TestApp;

boundary.before(async () => {
  web = await startTestApp();
  await setMembers(web, 'convo-boundary', [SENDER, RECIPIENT]);
});
boundary.after(async () => {
  await web?.close();
});

async function reservedAndPut(): Promise<Reserved> {
  const body = bytes(100);
  const r = await reserveUpload(web, SENDER, 'convo-boundary', body);
  assert.is(await putBytes(r.upload, body), 200);
  return r;
}

async function outcome(r: Reserved) {
  const [u] = await web.ctx.sql<{ state: string }[]>`select state from uploads where message_id = ${r.message_id}`;
  const [m] = await web.ctx.sql<{ n: number }[]>`select count(*)::int as n from messages where id = ${r.message_id}`;
  return { state: u?.state, messages: m!.n, object: (await web.ctx.store.head(r.blob_key)) !== null };
}

boundary('a commit at the deadline wins over a later pass; a pass that expired the upload makes the commit 410', async () => {
  const first = await reservedAndPut();
  const second = await reservedAndPut();
  const deadline = new Date(first.commit_deadline).getTime();
  const passAt = new Date(Math.max(deadline, new Date(second.commit_deadline).getTime()) + EXPIRY_MARGIN_MS + 1);
  web.clock.set(deadline);

  const c = await commit(web, SENDER, { message_id: first.message_id });
  assert.is(c.status, 201, c.text);
  const r = await reconcile(web.ctx, { now: passAt });
  assert.is(r.expiredUploads.count, 1, 'only the uncommitted one');
  assert.equal(await outcome(first), { state: 'committed', messages: 1, object: true });
  assert.is(r.missing.count, 0);

  const late = await commit(web, SENDER, { message_id: second.message_id });
  assert.is(late.status, 410, late.text);
  assert.is(late.body.error, 'UploadExpired');
  assert.equal(await outcome(second), { state: 'expired', messages: 0, object: false });
});

boundary('commits racing a pass whose clock is past the deadline: each is committed with its object or refused with nothing left', async () => {
  const uploads: Reserved[] = [];
  for (let i = 0; i < 8; i++) uploads.push(await reservedAndPut());
  const deadline = Math.min(...uploads.map((u) => new Date(u.commit_deadline).getTime()));
  const latest = Math.max(...uploads.map((u) => new Date(u.commit_deadline).getTime()));
  // The committing broker's clock reads the deadline (still in time); the reconciler's reads past
  // deadline + margin (clock skew beyond the margin): only the row lock keeps them apart.
  web.clock.set(deadline);
  const [statuses, report] = await Promise.all([
    Promise.all(uploads.map((u) => commit(web, SENDER, { message_id: u.message_id }).then((x) => x.status))),
    reconcile(web.ctx, { now: new Date(latest + EXPIRY_MARGIN_MS + 1) }),
  ]);
  let committed = 0;
  for (const [i, u] of uploads.entries()) {
    const o = await outcome(u);
    if (statuses[i] === 201) {
      committed++;
      assert.equal(o, { state: 'committed', messages: 1, object: true }, `upload ${i}`);
    } else {
      // 410 whether the commit read the row already expired or read it pending and its HEAD came
      // after the pass deleted the object (the pass marks the row before it deletes). Nothing written.
      assert.is(statuses[i], 410, `upload ${i}`);
      assert.equal(o, { state: 'expired', messages: 0, object: false }, `upload ${i}`);
    }
  }
  assert.is(report.expiredUploads.count, uploads.length - committed);
  const again = await reconcile(web.ctx, { now: new Date(latest + EXPIRY_MARGIN_MS + 1) });
  assert.is(again.missing.count, 0, 'no message row without its object');
  assert.is(again.expiredUploads.count + again.cleanedUploads.count + again.strays.count, 0);
});

boundary.run();
