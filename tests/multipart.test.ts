// Large ciphertexts: multipart uploads with real bytes through the R2 emulator, driven by the
// client library where the client is the point and by hand where the store or broker is.
import { createHash, randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BrokerError, ResumeError, type Progress, type UploadState } from '../src/client/index.js';
import { getUpload } from '../src/db/uploads.js';
import { clientFor, recordingFetch, sameBytes } from './helpers/client.js';
import { startTestApp, type TestApp } from './helpers/harness.js';
import { storePut } from './helpers/store-put.js';
import { did } from './helpers/tokens.js';

const MIB = 1024 * 1024;
const PART = 5 * MIB;
const env = { PART_SIZE_BYTES: String(PART), MULTIPART_THRESHOLD_BYTES: String(PART), MEMBERSHIP: 'off' };
const alice = did('alice');
const bob = did('bob');
const CONVO = 'convo-large';
/** Three parts: two full ones and a short last one. */
const threeParts = () => randomBytes(2 * PART + 1234);

const test = suite('multipart: large ciphertexts through the client library');
let app: TestApp;

test.before(async () => {
  app = await startTestApp({ env });
});
test.after(() => app.close());

interface MultipartReservation {
  message_id: string;
  upload: { method: 'MULTIPART'; part_size: number; part_count: number; parts: { part_number: number; url: string; headers: Record<string, string> }[] };
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('base64');

/** A reservation by hand; the SHA-256 is required for multipart (REQUIRE_SHA256), so pass the data's. */
async function reserveMultipart(size: number, digest = sha256(new Uint8Array(0))): Promise<MultipartReservation> {
  const r = await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: CONVO, size, sha256: digest } });
  assert.is(r.status, 201, r.text);
  assert.is(r.body.upload.method, 'MULTIPART');
  return r.body as MultipartReservation;
}

/** A PUT by hand with the signed headers (content-length from the body); the store's answer, always. */
async function putRaw(url: string, headers: Record<string, string>, body: Uint8Array): Promise<{ status: number; etag: string | null }> {
  const { 'content-length': _len, ...rest } = headers;
  const res = await storePut(url, rest, body, { refusal: true });
  return { status: res.status, etag: res.headers.etag ?? null };
}

async function receivedByBob(messageId: string, data: Uint8Array): Promise<void> {
  const bobs = clientFor(app, bob);
  const page = await bobs.pending({ convoId: CONVO, limit: 500 });
  assert.ok(page.messages.some((m) => m.message_id === messageId), 'the message is pending for the recipient');
  const got = await bobs.fetchMessage(messageId);
  assert.is(got.data.length, data.length);
  assert.ok(sameBytes(got.data, data), 'the downloaded bytes are identical to the uploaded ones');
}

test('a three-part upload round-trips byte-identical, two parts at a time, with progress', async () => {
  const data = threeParts();
  const rec = recordingFetch(app);
  rec.putDelayMs = 50;
  const progress: Progress[] = [];
  const client = clientFor(app, alice, { fetch: rec.fetch, concurrency: 2 });
  const done = await client.upload(CONVO, data, { recipients: [bob], metadata: { epoch: 3 }, onProgress: (p) => progress.push(p) });
  assert.is(done.size, data.length);
  assert.is(done.recipient_count, 1);
  assert.is(done.sender_did, alice);

  const puts = rec.calls.filter((c) => c.target === 'store' && c.method === 'PUT');
  assert.equal(puts.map((c) => c.part).sort(), [1, 2, 3]);
  assert.ok(puts.every((c) => c.status === 200));
  for (const p of puts) {
    // With a progress listener the body is a counting stream, so content-length is set explicitly;
    // besides it each part URL signs the part's MD5.
    const start = (p.part! - 1) * PART;
    const part = data.subarray(start, Math.min(data.length, start + PART));
    const md5 = createHash('md5').update(part).digest('base64');
    assert.equal(p.headers, { 'content-length': String(part.length), 'content-md5': md5 }, `part ${p.part} is sent with its signed MD5`);
  }
  assert.is(rec.maxInFlight, 2, 'at most `concurrency` parts in flight, and they do overlap');
  const complete = rec.calls.find((c) => c.url.endsWith(`/uploads/${done.message_id}/complete`));
  assert.ok(complete, 'the client completed the multipart upload');
  const completeBody = complete.body as { parts: { part_number: number; etag: string }[] };
  assert.equal(completeBody.parts.map((p) => p.part_number), [1, 2, 3]);

  const sent = progress.map((p) => p.sent);
  assert.ok(progress.every((p) => p.total === data.length));
  assert.is(sent[0], 0);
  assert.is(sent[sent.length - 1], data.length);
  for (let i = 1; i < sent.length; i++) assert.ok(sent[i]! >= sent[i - 1]!, 'progress never goes back');
  assert.ok(sent.includes(PART) || sent.includes(1234), 'progress moves part by part');

  await receivedByBob(done.message_id, data);
  const m = await clientFor(app, bob).getMessage(done.message_id);
  assert.equal(m.metadata, { epoch: 3 });
});

test('a part of the wrong size is refused by the store; the right size then goes through', async () => {
  const data = threeParts();
  const r = await reserveMultipart(data.length);
  assert.is(r.upload.part_count, 3);
  const [p1, , p3] = r.upload.parts;
  assert.equal(p1!.headers, { 'content-length': String(PART) });
  assert.equal(p3!.headers, { 'content-length': '1234' });
  for (const wrong of [data.subarray(0, PART - 1), Buffer.concat([data.subarray(0, PART), Buffer.from([1])])]) {
    const { status } = await putRaw(p1!.url, p1!.headers, wrong);
    assert.is(status, 403, `a ${wrong.length}-byte part 1 must be refused`);
  }
  const shortLast = await putRaw(p3!.url, p3!.headers, data.subarray(2 * PART, 2 * PART + 1233));
  assert.is(shortLast.status, 403, 'a short last part must be refused');
  const right = await putRaw(p1!.url, p1!.headers, data.subarray(0, PART));
  assert.is(right.status, 200);
  assert.ok(right.etag);
  assert.is((await app.call('DELETE', `/api/v1/uploads/${r.message_id}`, { as: alice })).status, 204);
});

test('URLs signed in the past are refused by the store, replaced through /urls, and the upload finishes', async () => {
  const data = threeParts();
  const rec = recordingFetch(app);
  rec.refusals = true; // the expired URLs must be seen refused
  // The broker signs the reservation's URLs ten minutes ago (TTL 300 s): all expired on arrival.
  app.clock.set(Date.now() - 10 * 60_000);
  rec.intercept = ({ target }) => {
    if (target === 'store') app.clock.set(Date.now());
    return undefined;
  };
  try {
    const done = await clientFor(app, alice, { fetch: rec.fetch }).upload(CONVO, data, { recipients: [bob] });
    const firstPuts = rec.calls.filter((c) => c.target === 'store').slice(0, 3);
    assert.equal(firstPuts.map((c) => c.status), [403, 403, 403], 'expired URLs refused');
    const refreshes = rec.calls.filter((c) => c.url.endsWith('/urls'));
    assert.ok(refreshes.length >= 1, 'fresh URLs were asked for');
    assert.ok(refreshes.every((c) => c.status === 200));
    const asked = new Set(refreshes.flatMap((c) => (c.body as { part_numbers: number[] }).part_numbers));
    assert.equal([...asked].sort(), [1, 2, 3]);
    const okParts = rec.calls.filter((c) => c.target === 'store' && c.status === 200).map((c) => c.part);
    assert.equal(okParts.sort(), [1, 2, 3]);
    await receivedByBob(done.message_id, data);
  } finally {
    app.clock.set(Date.now());
  }
});

test('URLs that expire mid-upload are replaced and the upload finishes', async () => {
  const short = await startTestApp({ env: { ...env, UPLOAD_URL_TTL_SECONDS: '2' } });
  try {
    const data = threeParts();
    const rec = recordingFetch(short);
    let waited = false;
    rec.intercept = async ({ target, part }) => {
      // The broker's clock stands still: move it to now at every API request, so URLs are signed
      // when asked for (not when the app started, however long hashing or a slow part took).
      if (target === 'api') short.clock.set(Date.now());
      // Only the expired PUT is sent so its refusal is always seen: that costs the others time.
      rec.refusals = false;
      // Part 1 went up on a fresh URL; the reservation's URL for part 2 expires before it is used.
      if (target === 'store' && part === 2 && !waited) {
        waited = true;
        rec.refusals = true;
        await new Promise((r) => setTimeout(r, 2300));
        short.clock.set(Date.now()); // the broker's clock stands still unless moved
      }
      return undefined;
    };
    const done = await clientFor(short, alice, { fetch: rec.fetch, concurrency: 1 }).upload(CONVO, data, { recipients: [bob] });
    const store = rec.calls.filter((c) => c.target === 'store');
    assert.equal(store[0]!.part, 1);
    assert.is(store[0]!.status, 200, 'part 1 used the reservation URL');
    assert.is(store[1]!.part, 2);
    assert.is(store[1]!.status, 403, 'the expired URL of part 2 was refused');
    // (Under load part 1 may outlast the client's freshness margin and refresh first: look at the last request.)
    const refreshAt = rec.calls.findLastIndex((c) => c.url.endsWith('/urls'));
    assert.ok(refreshAt > rec.calls.indexOf(store[1]!), 'fresh URLs were asked for after the refusal');
    assert.equal(store.filter((c) => c.status === 200).map((c) => c.part), [1, 2, 3]);
    const got = await clientFor(short, bob).fetchMessage(done.message_id);
    assert.ok(sameBytes(got.data, data));
  } finally {
    await short.close();
  }
});

test('/complete with a wrong ETag is a clear 400; a retry with the right ETags completes and commits', async () => {
  const data = threeParts();
  const r = await reserveMultipart(data.length, sha256(data));
  const etags: string[] = [];
  for (const p of r.upload.parts) {
    const start = (p.part_number - 1) * PART;
    const put = await putRaw(p.url, p.headers, data.subarray(start, Math.min(data.length, start + PART)));
    assert.is(put.status, 200);
    etags.push(put.etag!);
  }
  const parts = etags.map((etag, i) => ({ part_number: i + 1, etag }));
  const wrong = parts.map((p) => (p.part_number === 2 ? { ...p, etag: '"0123456789abcdef0123456789abcdef"' } : p));
  const bad = await app.call('POST', `/api/v1/uploads/${r.message_id}/complete`, { as: alice, body: { parts: wrong } });
  assert.is(bad.status, 400, bad.text);
  assert.is(bad.body.error, 'InvalidRequest');
  assert.match(bad.body.message, /ETag/);
  assert.is((await app.call('POST', '/api/v1/messages', { as: alice, body: { message_id: r.message_id, recipients: [bob] } })).body.error, 'UploadIncomplete');

  // Copied from a header by a script: quotes and a stray CR are accepted.
  const copied = parts.map((p) => (p.part_number === 1 ? { ...p, etag: `${p.etag}\r` } : p));
  const good = await app.call('POST', `/api/v1/uploads/${r.message_id}/complete`, { as: alice, body: { parts: copied } });
  assert.is(good.status, 200, good.text);
  assert.equal(good.body, { message_id: r.message_id, size: data.length });
  const again = await app.call('POST', `/api/v1/uploads/${r.message_id}/complete`, { as: alice, body: { parts } });
  assert.is(again.status, 200, 'complete is idempotent');
  const c = await app.call('POST', '/api/v1/messages', { as: alice, body: { message_id: r.message_id, recipients: [bob] } });
  assert.is(c.status, 201, c.text);
  await receivedByBob(r.message_id, data);
});

test('a reservation answers at most 100 part URLs; /urls gives any others, sized and never past the deadline', async () => {
  const count = 128;
  const size = (count - 1) * PART + 1;
  const r = await reserveMultipart(size);
  assert.is(r.upload.part_count, count);
  assert.is(r.upload.part_size, PART);
  assert.equal(r.upload.parts.map((p) => p.part_number), Array.from({ length: 100 }, (_, i) => i + 1));
  assert.is(r.upload.parts[0]!.headers['content-length'], String(PART));
  const rest = Array.from({ length: count - 100 }, (_, i) => 101 + i);
  const more = await app.call('POST', `/api/v1/uploads/${r.message_id}/urls`, { as: alice, body: { part_numbers: rest } });
  assert.is(more.status, 200, more.text);
  assert.equal(more.body.upload.parts.map((p: { part_number: number }) => p.part_number), rest);
  assert.is(more.body.upload.parts.at(-1).headers['content-length'], '1', 'the last part is the remainder');
  assert.is(more.body.upload.parts[0].headers['content-length'], String(PART));
  const tooMany = await app.call('POST', `/api/v1/uploads/${r.message_id}/urls`, { as: alice, body: { part_numbers: Array.from({ length: 101 }, (_, i) => i + 1) } });
  assert.is(tooMany.status, 400);
  const beyond = await app.call('POST', `/api/v1/uploads/${r.message_id}/urls`, { as: alice, body: { part_numbers: [count + 1] } });
  assert.is(beyond.status, 400);
  assert.is(beyond.body.details.field, '/part_numbers/0');
  const deadline = new Date((await getUpload(app.ctx.sql, r.message_id))!.commitDeadline).getTime();
  app.clock.set(deadline - 50_000);
  try {
    const late = await app.call('POST', `/api/v1/uploads/${r.message_id}/urls`, { as: alice, body: { part_numbers: [7] } });
    assert.is(late.status, 200);
    assert.match(late.body.upload.parts[0].url, /X-Amz-Expires=50&/);
    assert.is(new Date(late.body.expires_at).getTime(), deadline);
  } finally {
    app.clock.set(Date.now());
  }
  assert.is((await app.call('DELETE', `/api/v1/uploads/${r.message_id}`, { as: alice })).status, 204);
});

test('a multipart object of the wrong total size is rejected at commit and deleted', async () => {
  const data = threeParts();
  const r = await reserveMultipart(data.length);
  const row = (await getUpload(app.ctx.sql, r.message_id))!;
  // Bytes that reached the key some other way (the store's own credentials), one byte short.
  const short = data.subarray(0, data.length - 1);
  const put = await app.ctx.store.presignPut({
    key: row.blobKey,
    size: short.length,
    md5: createHash('md5').update(short).digest('base64'),
    contentType: 'application/octet-stream',
    now: new Date(),
    expiresIn: 60,
  });
  assert.is((await putRaw(put.url, put.headers, short)).status, 200);
  const c = await app.call('POST', '/api/v1/messages', { as: alice, body: { message_id: r.message_id, recipients: [bob] } });
  assert.is(c.status, 422, c.text);
  assert.is(c.body.error, 'UploadMismatch');
  assert.is(await app.ctx.store.head(row.blobKey), null);
  assert.is((await getUpload(app.ctx.sql, r.message_id))?.state, 'rejected');
  assert.is((await app.ctx.sql`select 1 from messages where id = ${r.message_id}`).length, 0);
});

test('abort removes the multipart upload: no object, state aborted, no resume', async () => {
  const data = threeParts();
  const controller = new AbortController();
  let saved: UploadState | undefined;
  const upload = clientFor(app, alice, { concurrency: 1 }).upload(CONVO, data, {
    recipients: [bob],
    signal: controller.signal,
    onState: (s) => {
      saved = s;
      if (s.parts.length === 1) controller.abort(new Error('the user cancelled'));
    },
  });
  try {
    await upload;
    assert.unreachable('the upload was cancelled');
  } catch (err) {
    assert.is((err as Error).message, 'the user cancelled');
  }
  assert.ok(saved);
  const id = saved.message_id;
  const client = clientFor(app, alice);
  await client.abortUpload(id);
  assert.is((await client.getUpload(id)).state, 'aborted');
  const row = await getUpload(app.ctx.sql, id);
  assert.ok(row?.multipartUploadId);
  assert.is(await app.ctx.store.head(row.blobKey), null, 'no object');
  // The multipart upload itself is gone at the store: a validly signed part PUT finds nothing.
  const part = await app.ctx.store.presignPart({ key: row.blobKey, uploadId: row.multipartUploadId, partNumber: 2, size: PART, now: new Date(), expiresIn: 60 });
  const put = await putRaw(part.url, part.headers, data.subarray(PART, 2 * PART));
  assert.not.equal(put.status, 200, 'no part can be added to an aborted upload');
  const urls = await app.call('POST', `/api/v1/uploads/${id}/urls`, { as: alice, body: { part_numbers: [2] } });
  assert.is(urls.status, 410, urls.text);
  try {
    await client.upload(CONVO, data, { recipients: [bob], resume: saved });
    assert.unreachable('an aborted upload cannot resume');
  } catch (err) {
    assert.instance(err, ResumeError);
    assert.match((err as Error).message, /aborted/);
  }
  assert.is(await app.ctx.store.head(row.blobKey), null);
});

test('an interrupted upload resumes from its saved state and sends only the missing part', async () => {
  const data = threeParts();
  const controller = new AbortController();
  let saved = '';
  try {
    await clientFor(app, alice, { concurrency: 1 }).upload(CONVO, data, {
      recipients: [bob],
      signal: controller.signal,
      onState: (s) => {
        saved = JSON.stringify(s); // what an app writes to disk or localStorage
        if (s.parts.length === 2) controller.abort(new Error('crash'));
      },
    });
    assert.unreachable('interrupted');
  } catch (err) {
    assert.is((err as Error).message, 'crash');
  }
  const state = JSON.parse(saved) as UploadState;
  assert.equal(state.parts.map((p) => p.part_number), [1, 2]);
  assert.is(state.uploaded, false);

  // A fresh client (a restarted app): other bytes are refused before anything is sent.
  const rec = recordingFetch(app);
  const client = clientFor(app, alice, { fetch: rec.fetch });
  const other = Buffer.from(data);
  other[PART + 7] = other[PART + 7]! ^ 0xff;
  try {
    await client.upload(CONVO, other, { recipients: [bob], resume: state });
    assert.unreachable('different data cannot resume');
  } catch (err) {
    assert.instance(err, ResumeError);
  }
  assert.is(rec.calls.filter((c) => c.target === 'store').length, 0);

  const progress: Progress[] = [];
  const done = await client.upload(CONVO, data, { recipients: [bob], resume: state, onProgress: (p) => progress.push(p) });
  assert.is(done.message_id, state.message_id);
  const puts = rec.calls.filter((c) => c.target === 'store' && c.method === 'PUT');
  assert.equal(puts.map((c) => c.part), [3], 'only the missing part is sent');
  assert.is(progress[0]!.sent, 2 * PART, 'progress starts where the saved state stood');
  assert.is(progress[progress.length - 1]!.sent, data.length);
  await receivedByBob(done.message_id, data);

  // Resuming a committed upload replays the commit: same message, nothing sent.
  const replay = await client.upload(CONVO, data, { recipients: [bob], resume: state });
  assert.equal(replay, done);
  assert.is(rec.calls.filter((c) => c.target === 'store' && c.method === 'PUT').length, 1);
});

test('a lost answer and a 503 on part PUTs are retried; the upload still round-trips', async () => {
  const data = threeParts();
  const rec = recordingFetch(app);
  const failed = new Set<number>();
  rec.intercept = ({ target, part }) => {
    if (target !== 'store' || part === null || failed.has(part)) return undefined;
    failed.add(part);
    if (part === 2) return new TypeError('fetch failed');
    if (part === 3) return new Response('<Error><Code>InternalError</Code></Error>', { status: 503 });
    return undefined;
  };
  const done = await clientFor(app, alice, { fetch: rec.fetch }).upload(CONVO, data, { recipients: [bob] });
  const ok = rec.calls.filter((c) => c.target === 'store' && c.status === 200).map((c) => c.part);
  assert.equal(ok.sort(), [1, 2, 3]);
  // Each injected failure was retried (a loaded machine may add a retry of its own: no exact count).
  const statuses = (n: number) => rec.calls.filter((c) => c.target === 'store' && c.part === n).map((c) => c.status);
  assert.is(statuses(1).at(-1), 200);
  assert.is(statuses(2)[0], -1);
  assert.is(statuses(2).at(-1), 200);
  assert.is(statuses(3)[0], 503);
  assert.is(statuses(3).at(-1), 200);
  await receivedByBob(done.message_id, data);
});

test('an empty upload is refused with a typed error before any byte moves', async () => {
  const rec = recordingFetch(app);
  const client = clientFor(app, alice, { fetch: rec.fetch });
  const limits = await client.limits();
  try {
    await client.upload(CONVO, new Blob([new Uint8Array(0)]).slice(0, 0), { recipients: [bob] });
    assert.unreachable('an empty upload is refused');
  } catch (err) {
    assert.instance(err, BrokerError);
    assert.is((err as BrokerError).status, 400);
    assert.is((err as BrokerError).code, 'InvalidRequest');
  }
  assert.ok(limits.part_size_bytes === PART && limits.multipart_threshold_bytes === PART);
  assert.is(rec.calls.filter((c) => c.target === 'store').length, 0);
});

test.run();
