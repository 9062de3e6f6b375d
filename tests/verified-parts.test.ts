// Verified multipart parts: each part URL signs the part's MD5 the client declared, so the store
// refuses a changed part; the commit compares the object's multipart ETag with the declared MD5s;
// a multipart reservation must declare the SHA-256 (REQUIRE_SHA256) that recipients verify.
import { createHash, randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { IntegrityError, StoreError } from '../src/client/index.js';
import { getUpload } from '../src/db/uploads.js';
import { multipartEtag } from '../src/services/part-md5s.js';
import { clientFor, recordingFetch, sameBytes } from './helpers/client.js';
import { startTestApp, type TestApp } from './helpers/harness.js';
import { did } from './helpers/tokens.js';

const MIB = 1024 * 1024;
const PART = 5 * MIB;
const env = { PART_SIZE_BYTES: String(PART), MULTIPART_THRESHOLD_BYTES: String(PART), MEMBERSHIP: 'off' };
const alice = did('alice');
const bob = did('bob');
const CONVO = 'convo-verified';
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('base64');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('base64');
const partsOf = (data: Uint8Array) => Array.from({ length: Math.ceil(data.length / PART) }, (_, i) => data.subarray(i * PART, Math.min(data.length, (i + 1) * PART)));
const flipped = (b: Uint8Array, at = 1000) => {
  const copy = Buffer.from(b);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
};

interface Part {
  part_number: number;
  url: string;
  headers: Record<string, string>;
}

const test = suite('verified parts: signed part MD5s, the multipart ETag at commit, a required SHA-256');
let app: TestApp;

test.before(async () => {
  app = await startTestApp({ env });
});
test.after(() => app.close());

async function reserve(body: Record<string, unknown>) {
  return app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: CONVO, ...body } });
}

/** A PUT by hand with the signed headers (fetch sets content-length); -1 when the store cut the connection. */
async function put(p: Part, body: Uint8Array): Promise<{ status: number; etag: string | null; text: string }> {
  const { 'content-length': _len, ...rest } = p.headers;
  try {
    const res = await fetch(p.url, { method: 'PUT', headers: rest, body });
    return { status: res.status, etag: res.headers.get('etag'), text: await res.text() };
  } catch {
    return { status: -1, etag: null, text: '' };
  }
}

test('a multipart reservation without sha256 is refused; with REQUIRE_SHA256=false it is accepted', async () => {
  const data = randomBytes(PART + 1);
  const without = await reserve({ size: data.length });
  assert.is(without.status, 400, without.text);
  assert.is(without.body.details.field, '/sha256');
  const single = await reserve({ size: 100, md5: md5(randomBytes(100)) });
  assert.is(single.status, 201, 'a single PUT still needs only its MD5');
  assert.is((await app.call('DELETE', `/api/v1/uploads/${single.body.message_id}`, { as: alice })).status, 204);

  const lax = await startTestApp({ env: { ...env, REQUIRE_SHA256: 'false' } });
  try {
    const r = await lax.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: CONVO, size: data.length } });
    assert.is(r.status, 201, r.text);
    assert.is(r.body.upload.method, 'MULTIPART');
  } finally {
    await lax.close();
  }
});

test('declared part MD5s are signed into every part URL, from the reservation and from /urls', async () => {
  const data = randomBytes(2 * PART + 77);
  const md5s = partsOf(data).map(md5);
  const r = await reserve({ size: data.length, sha256: sha256(data), part_md5s: md5s });
  assert.is(r.status, 201, r.text);
  const parts = r.body.upload.parts as Part[];
  assert.equal(
    parts.map((p) => p.headers),
    md5s.map((m, i) => ({ 'content-length': String(i < 2 ? PART : 77), 'content-md5': m })),
  );
  // A later request need not repeat them: the declared MD5 stays signed into every URL of the part.
  const again = await app.call('POST', `/api/v1/uploads/${r.body.message_id}/urls`, { as: alice, body: { part_numbers: [3] } });
  assert.is(again.status, 200, again.text);
  assert.is(again.body.upload.parts[0].headers['content-md5'], md5s[2]);
  // Count and pairing are checked.
  const short = await reserve({ size: data.length, sha256: sha256(data), part_md5s: md5s.slice(0, 2) });
  assert.is(short.status, 400);
  assert.is(short.body.details.field, '/part_md5s');
  const unpaired = await app.call('POST', `/api/v1/uploads/${r.body.message_id}/urls`, { as: alice, body: { part_numbers: [1, 2], part_md5s: [md5s[0]] } });
  assert.is(unpaired.status, 400);
  assert.is(unpaired.body.details.field, '/part_md5s');
  const onSingle = await reserve({ size: 100, md5: md5(randomBytes(100)), part_md5s: [md5(randomBytes(100))] });
  assert.is(onSingle.status, 400);
  assert.is((await app.call('DELETE', `/api/v1/uploads/${r.body.message_id}`, { as: alice })).status, 204);
});

test('a flipped byte in one part is refused by the store (BadDigest); the right bytes then go through', async () => {
  const data = randomBytes(2 * PART + 10);
  const [p1, p2, p3] = partsOf(data);
  // An old client declares nothing at reservation, then asks /urls with the MD5s.
  const r = await reserve({ size: data.length, sha256: sha256(data) });
  assert.is(r.status, 201, r.text);
  const urls = await app.call('POST', `/api/v1/uploads/${r.body.message_id}/urls`, {
    as: alice,
    body: { part_numbers: [1, 2, 3], part_md5s: [md5(p1!), md5(p2!), md5(p3!)] },
  });
  assert.is(urls.status, 200, urls.text);
  const [u1, u2, u3] = urls.body.upload.parts as Part[];
  const bad = await put(u2!, flipped(p2!));
  assert.is(bad.status, 400, bad.text);
  assert.match(bad.text, /BadDigest/);
  const etags: string[] = [];
  for (const [u, bytes] of [[u1!, p1!], [u2!, p2!], [u3!, p3!]] as const) {
    const ok = await put(u, bytes);
    assert.is(ok.status, 200, ok.text);
    etags.push(ok.etag!);
  }
  const done = await app.call('POST', `/api/v1/uploads/${r.body.message_id}/complete`, {
    as: alice,
    body: { parts: etags.map((etag, i) => ({ part_number: i + 1, etag })) },
  });
  assert.is(done.status, 200, done.text);
  const row = (await getUpload(app.ctx.sql, r.body.message_id))!;
  assert.is((await app.ctx.store.head(row.blobKey))?.etag, multipartEtag([p1!, p2!, p3!].map(md5)), 'the store gives the multipart ETag commit compares');
  const c = await app.call('POST', '/api/v1/messages', { as: alice, body: { message_id: r.body.message_id, recipients: [bob] } });
  assert.is(c.status, 201, c.text);
});

test('the client library signs every part; a part changed on the way is refused by the store, resent, and refused again', async () => {
  const data = randomBytes(2 * PART + 10);
  const rec = recordingFetch(app);
  // Fault injection: part 2's body changes between the library and the store.
  rec.intercept = async ({ target, part, url, init }) => {
    if (target !== 'store' || part !== 2) return undefined;
    const body = new Uint8Array(await new Response(init!.body).arrayBuffer());
    return fetch(url, { ...init, body: flipped(body) });
  };
  try {
    await clientFor(app, alice, { fetch: rec.fetch }).upload(CONVO, data, { recipients: [bob] });
    assert.unreachable('the corrupted part is refused');
  } catch (err) {
    assert.instance(err, StoreError);
    assert.is((err as StoreError).code, 'BadDigest');
  }
  const reservation = rec.calls.find((c) => c.url.endsWith('/api/v1/uploads'))!;
  assert.equal((reservation.body as { part_md5s: string[] }).part_md5s, partsOf(data).map(md5), 'the reservation declares every part MD5');
  const part2 = rec.calls.filter((c) => c.target === 'store' && c.part === 2);
  assert.ok(part2.length > 1 && part2.every((c) => c.status === 400), 'the store refused part 2 every time it was resent');
});

test('a part corrupted once on the way is resent and the upload completes intact', async () => {
  const data = randomBytes(2 * PART + 10);
  const rec = recordingFetch(app);
  let corrupted = 0;
  rec.intercept = async ({ target, part, url, init }) => {
    if (target !== 'store' || part !== 2 || corrupted > 0) return undefined;
    corrupted++;
    const body = new Uint8Array(await new Response(init!.body).arrayBuffer());
    return fetch(url, { ...init, body: flipped(body) });
  };
  const done = await clientFor(app, alice, { fetch: rec.fetch }).upload(CONVO, data, { recipients: [bob] });
  assert.equal(
    rec.calls.filter((c) => c.target === 'store' && c.part === 2).map((c) => c.status),
    [400, 200],
  );
  const got = await clientFor(app, bob).fetchMessage(done.message_id);
  assert.ok(sameBytes(got.data, data));
});

test('a corrupted object at commit is rejected: deleted, the upload rejected, no message', async () => {
  const data = randomBytes(2 * PART + 10);
  const parts = partsOf(data);
  const r = await reserve({ size: data.length, sha256: sha256(data), part_md5s: parts.map(md5) });
  assert.is(r.status, 201, r.text);
  const id = r.body.message_id as string;
  const row = (await getUpload(app.ctx.sql, id))!;
  const urls = r.body.upload.parts as Part[];
  const etags: string[] = [];
  for (const n of [1, 2, 3]) {
    let answer;
    if (n === 2) {
      // Bytes that reached the part some other way (the store's own credentials, no MD5 signed): one byte flipped.
      const raw = await app.ctx.store.presignPart({ key: row.blobKey, uploadId: row.multipartUploadId!, partNumber: 2, size: PART, now: new Date(), expiresIn: 60 });
      answer = await put({ part_number: 2, ...raw }, flipped(parts[1]!));
    } else answer = await put(urls[n - 1]!, parts[n - 1]!);
    assert.is(answer.status, 200, answer.text);
    etags.push(answer.etag!);
  }
  const done = await app.call('POST', `/api/v1/uploads/${id}/complete`, { as: alice, body: { parts: etags.map((etag, i) => ({ part_number: i + 1, etag })) } });
  assert.is(done.status, 200, 'the store completes it: the size is right');
  const c = await app.call('POST', '/api/v1/messages', { as: alice, body: { message_id: id, recipients: [bob] } });
  assert.is(c.status, 422, c.text);
  assert.is(c.body.error, 'UploadMismatch');
  assert.is(await app.ctx.store.head(row.blobKey), null, 'the object is deleted');
  assert.is((await getUpload(app.ctx.sql, id))?.state, 'rejected');
  assert.is((await app.ctx.sql`select 1 from messages where id = ${id}`).length, 0);
});

test('without every part MD5 the commit checks the size only, and the recipient library catches the corruption (SHA-256)', async () => {
  const data = randomBytes(PART + 10);
  const parts = partsOf(data);
  const r = await reserve({ size: data.length, sha256: sha256(data) });
  assert.is(r.status, 201, r.text);
  const id = r.body.message_id as string;
  const urls = r.body.upload.parts as Part[];
  const etags = [(await put(urls[0]!, flipped(parts[0]!))).etag!, (await put(urls[1]!, parts[1]!)).etag!];
  assert.is((await app.call('POST', `/api/v1/uploads/${id}/complete`, { as: alice, body: { parts: etags.map((etag, i) => ({ part_number: i + 1, etag })) } })).status, 200);
  const c = await app.call('POST', '/api/v1/messages', { as: alice, body: { message_id: id, recipients: [bob] } });
  assert.is(c.status, 201, c.text);
  try {
    await clientFor(app, bob).fetchMessage(id);
    assert.unreachable('the recipient must not accept the bytes');
  } catch (err) {
    assert.instance(err, IntegrityError);
    assert.is((err as IntegrityError).check, 'sha256');
  }
});

test('the client library round-trips a multipart upload with every part verified', async () => {
  const data = randomBytes(2 * PART + 3);
  const done = await clientFor(app, alice).upload(CONVO, data, { recipients: [bob] });
  const got = await clientFor(app, bob).fetchMessage(done.message_id);
  assert.is(got.verified, 'sha256');
  assert.ok(sameBytes(got.data, data));
});

test.run();
