// The client library against a real broker and the R2 emulator: single-PUT uploads from every
// input type, the recipient's side (pending, verified fetch, ack), typed errors, and the faults a
// client must ride out (lost answers, 409 at commit, expired URLs and tokens, tampered objects).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BrokerClient, BrokerError, IntegrityError, type Progress } from '../src/client/index.js';
import { getUpload } from '../src/db/uploads.js';
import { clientFor, recordingFetch, sameBytes } from './helpers/client.js';
import { setMembers } from './helpers/flow.js';
import { startTestApp, TEST_SECRET, type TestApp } from './helpers/harness.js';
import { did, mintToken } from './helpers/tokens.js';

const test = suite('client: single-PUT uploads, pending, verified fetch, ack, errors');
let app: TestApp;
const alice = did('alice');
const bob = did('bob');
const carol = did('carol');
const CONVO = 'convo-client';

test.before(async () => {
  app = await startTestApp();
  await setMembers(app, CONVO, [alice, bob, carol]);
});
test.after(() => app.close());

const b64 = (algo: string, b: Uint8Array) => createHash(algo).update(b).digest('base64');

/** Replaces a committed message's object with other bytes, straight in the bucket. */
async function tamper(messageId: string, bytes: Uint8Array): Promise<void> {
  const row = await getUpload(app.ctx.sql, messageId);
  assert.ok(row);
  await app.ctx.store.delete(row.blobKey);
  const p = await app.ctx.store.presignPut({ key: row.blobKey, size: bytes.length, md5: b64('md5', bytes), contentType: row.contentType, now: new Date(), expiresIn: 60 });
  const { 'content-length': _len, ...headers } = p.headers;
  const res = await fetch(p.url, { method: 'PUT', headers, body: bytes });
  await res.arrayBuffer();
  assert.is(res.status, 200);
}

test('a Uint8Array goes up as one PUT with exactly the signed headers and comes back identical', async () => {
  const data = randomBytes(70_000);
  const rec = recordingFetch(app);
  const progress: Progress[] = [];
  const done = await clientFor(app, alice, { fetch: rec.fetch }).upload(CONVO, data, { metadata: { epoch: 1 }, onProgress: (p) => progress.push(p) });
  assert.is(done.size, data.length);
  assert.is(done.recipient_count, 2, 'recipients default to the members but the sender');
  const reserve = rec.calls.find((c) => c.url.endsWith('/api/v1/uploads'))!;
  assert.equal(reserve.body, { convo_id: CONVO, size: data.length, md5: b64('md5', data), sha256: b64('sha256', data) });
  const puts = rec.calls.filter((c) => c.target === 'store');
  assert.is(puts.length, 1);
  // With a progress listener the body is a counting stream, so content-length is set explicitly.
  assert.equal(Object.keys(puts[0]!.headers).sort(), ['content-length', 'content-md5', 'content-type', 'if-none-match']);
  assert.is(puts[0]!.headers['content-length'], String(data.length));
  assert.equal(progress, [{ sent: 0, total: data.length }, { sent: data.length, total: data.length }]);

  for (const who of [bob, carol]) {
    const got = await clientFor(app, who).fetchMessage(done.message_id);
    assert.ok(sameBytes(got.data, data));
    assert.equal(got.message.metadata, { epoch: 1 });
    assert.is(got.message.sha256, b64('sha256', data));
  }
});

test('a Blob and a ReadableStream upload the same way', async () => {
  const a = randomBytes(12_345);
  const b = randomBytes(54_321);
  const client = clientFor(app, alice);
  const viaBlob = await client.upload(CONVO, new Blob([a.subarray(0, 1000), a.subarray(1000)]), { recipients: [bob] });
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < b.length; i += 4096) c.enqueue(b.subarray(i, i + 4096));
      c.close();
    },
  });
  const viaStream = await client.upload(CONVO, stream, { recipients: [bob], contentType: 'message/mls' });
  const bobs = clientFor(app, bob);
  assert.ok(sameBytes((await bobs.fetchMessage(viaBlob.message_id)).data, a));
  assert.ok(sameBytes((await bobs.fetchMessage(viaStream.message_id)).data, b));
});

test('pending pages through the recipient queue and ack empties it', async () => {
  const convo = 'convo-paging';
  await setMembers(app, convo, [alice, carol]);
  const sender = clientFor(app, alice);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    app.clock.advance(5); // ids are UUIDv7: time-ordered across milliseconds, not within one
    ids.push((await sender.upload(convo, randomBytes(100 + i))).message_id);
  }
  const carols = clientFor(app, carol);
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await carols.pending({ convoId: convo, limit: 2, cursor });
    assert.ok(page.messages.length <= 2);
    seen.push(...page.messages.map((m) => m.message_id));
    cursor = page.cursor;
  } while (cursor !== null);
  assert.equal(seen, ids, 'oldest first, each once');

  assert.equal(await carols.ack(ids[0]!), { acked: [ids[0]!], not_found: [] });
  const stranger = randomUUID();
  const many = await carols.ack([...ids.slice(1), stranger]);
  assert.equal(many.acked.sort(), ids.slice(1).sort());
  assert.equal(many.not_found, [stranger]);
  assert.equal((await carols.pending({ convoId: convo })).messages, []);
  assert.equal(await carols.ack(stranger), { acked: [], not_found: [stranger] }, 'a single unknown id is reported, not thrown');
  assert.equal(await carols.ack(ids[0]!), { acked: [ids[0]!], not_found: [] }, 'ack is idempotent');
});

test('fetchMessage refuses bytes that differ from the declared SHA-256, and a different size', async () => {
  const data = randomBytes(4096);
  const done = await clientFor(app, alice).upload(CONVO, data, { recipients: [bob] });
  const other = randomBytes(4096);
  await tamper(done.message_id, other);
  try {
    await clientFor(app, bob).fetchMessage(done.message_id);
    assert.unreachable('tampered bytes must be refused');
  } catch (err) {
    assert.instance(err, IntegrityError);
    assert.is((err as IntegrityError).check, 'sha256');
    assert.is((err as IntegrityError).expected, b64('sha256', data));
    assert.is((err as IntegrityError).actual, b64('sha256', other));
  }
  await tamper(done.message_id, randomBytes(4095));
  try {
    await clientFor(app, bob).fetchMessage(done.message_id);
    assert.unreachable('a shorter object must be refused');
  } catch (err) {
    assert.instance(err, IntegrityError);
    assert.is((err as IntegrityError).check, 'size');
  }
  // A much larger object is refused after reading one byte past the declared size, not all of it.
  await tamper(done.message_id, randomBytes(4 * 1024 * 1024));
  try {
    await clientFor(app, bob).fetchMessage(done.message_id);
    assert.unreachable('a larger object must be refused');
  } catch (err) {
    assert.instance(err, IntegrityError);
    assert.is((err as IntegrityError).check, 'size');
    assert.is((err as IntegrityError).actual, String(4096 + 1));
  }
  await tamper(done.message_id, data);
  const ok = await clientFor(app, bob).fetchMessage(done.message_id);
  assert.is(ok.verified, 'sha256');
});

test('without a declared SHA-256, fetchMessage checks the MD5', async () => {
  const data = randomBytes(2000);
  const r = await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: CONVO, size: data.length, md5: b64('md5', data) } });
  assert.is(r.status, 201, r.text);
  const { 'content-length': _len, ...headers } = r.body.upload.headers as Record<string, string>;
  assert.is((await fetch(r.body.upload.url, { method: 'PUT', headers, body: data })).status, 200);
  assert.is((await app.call('POST', '/api/v1/messages', { as: alice, body: { message_id: r.body.message_id, recipients: [bob] } })).status, 201);
  const bobs = clientFor(app, bob);
  const fetched = await bobs.fetchMessage(r.body.message_id);
  assert.ok(sameBytes(fetched.data, data));
  assert.is(fetched.verified, 'md5');
  await tamper(r.body.message_id, randomBytes(2000));
  try {
    await bobs.fetchMessage(r.body.message_id);
    assert.unreachable('tampered');
  } catch (err) {
    assert.instance(err, IntegrityError);
    assert.is((err as IntegrityError).check, 'md5');
  }
});

test('API errors arrive as BrokerError with the status and the error code', async () => {
  const client = clientFor(app, alice, { retries: 0 });
  const cases: [() => Promise<unknown>, number, string][] = [
    [() => client.upload('not a convo id!', randomBytes(10), { recipients: [bob] }), 400, 'InvalidRequest'],
    [() => client.fetchMessage(randomUUID()), 404, 'NotFound'],
    [() => clientFor(app, did('mallory')).upload(CONVO, randomBytes(10)), 403, 'Forbidden'],
    [() => new BrokerClient({ baseUrl: app.url, token: 'not-a-jwt' }).pending(), 401, 'AuthRequired'],
  ];
  for (const [call, status, code] of cases) {
    try {
      await call();
      assert.unreachable(`expected ${status} ${code}`);
    } catch (err) {
      assert.instance(err, BrokerError);
      assert.is((err as BrokerError).status, status, (err as Error).message);
      assert.is((err as BrokerError).code, code);
      assert.ok((err as Error).message.length > 0);
      const { requestId, body } = err as BrokerError;
      assert.ok(requestId !== undefined && requestId.length > 0, 'the request id to quote');
      assert.is((body as { request_id?: string }).request_id, requestId);
    }
  }
});

test('a lost answer to the PUT is retried; the 412 that follows counts as landed', async () => {
  const data = randomBytes(3000);
  const rec = recordingFetch(app);
  let lost = false;
  rec.intercept = async ({ target, url, init }) => {
    if (target !== 'store' || lost) return undefined;
    lost = true;
    const res = await fetch(url, init); // the PUT lands…
    await res.arrayBuffer();
    return new TypeError('fetch failed'); // …but its answer never arrives
  };
  const done = await clientFor(app, alice, { fetch: rec.fetch }).upload(CONVO, data, { recipients: [bob] });
  assert.equal(rec.calls.filter((c) => c.target === 'store').map((c) => c.status), [-1, 412]);
  assert.ok(sameBytes((await clientFor(app, bob).fetchMessage(done.message_id)).data, data));
});

test('a 409 UploadIncomplete at commit is retried briefly', async () => {
  const rec = recordingFetch(app);
  let refused = 0;
  rec.intercept = ({ method, url }) => {
    if (method === 'POST' && url.endsWith('/api/v1/messages') && refused < 2) {
      refused++;
      return Response.json({ error: 'UploadIncomplete', message: 'not yet' }, { status: 409 });
    }
    return undefined;
  };
  const done = await clientFor(app, alice, { fetch: rec.fetch }).upload(CONVO, randomBytes(500), { recipients: [bob] });
  assert.is(refused, 2);
  assert.equal(rec.calls.filter((c) => c.url.endsWith('/api/v1/messages')).map((c) => c.status), [409, 409, 201]);
  assert.ok(done.message_id);
});

test('an expired download URL is replaced and the bytes still arrive', async () => {
  const data = randomBytes(1500);
  const done = await clientFor(app, alice).upload(CONVO, data, { recipients: [bob] });
  const rec = recordingFetch(app);
  app.clock.set(Date.now() - 3600_000); // the first download URL is signed an hour ago
  rec.intercept = ({ target }) => {
    if (target === 'store') app.clock.set(Date.now());
    return undefined;
  };
  try {
    const got = await clientFor(app, bob, { fetch: rec.fetch }).fetchMessage(done.message_id);
    assert.ok(sameBytes(got.data, data));
    assert.equal(rec.calls.filter((c) => c.target === 'store').map((c) => c.status), [403, 200]);
  } finally {
    app.clock.set(Date.now());
  }
});

test('a token function is asked again after a 401', async () => {
  let calls = 0;
  const client = new BrokerClient({
    baseUrl: app.url,
    token: async () => (++calls === 1 ? mintToken(TEST_SECRET, bob, { expiresIn: -3600 }) : mintToken(TEST_SECRET, bob)),
  });
  const page = await client.pending();
  assert.ok(Array.isArray(page.messages));
  assert.is(calls, 2);
});

test('a cancelled upload stops with the signal reason and sends nothing more', async () => {
  const rec = recordingFetch(app);
  const controller = new AbortController();
  controller.abort(new Error('stop'));
  try {
    await clientFor(app, alice, { fetch: rec.fetch }).upload(CONVO, randomBytes(100), { signal: controller.signal });
    assert.unreachable('cancelled');
  } catch (err) {
    assert.is((err as Error).message, 'stop');
  }
  assert.is(rec.calls.filter((c) => c.target === 'store').length, 0);
});

test.run();
