// The presigned PUT is the only thing that binds what a client may write: prove that the store
// itself enforces every signed header, with real SigV4 checks in the R2 emulator.
import { createHash, randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BlobStore } from '../src/store/store.js';
import { freshBucket, harness, TEST_ACCESS_KEY, TEST_SECRET_KEY } from './helpers/harness.js';
import { storePut } from './helpers/store-put.js';

const test = suite('store: presigned URLs against the R2 emulator');
let store: BlobStore;
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('base64');
const key = () => `m/2026/11/28/${randomBytes(8).toString('hex')}`;

/** Sends exactly the signed headers except content-length, which fetch derives from the body. */
async function put(url: string, headers: Record<string, string>, body: Uint8Array, refusal = false): Promise<number> {
  const { 'content-length': _len, ...rest } = headers;
  return (await storePut(url, rest, body, { refusal })).status;
}

test.before(async () => {
  const h = await harness();
  store = new BlobStore({
    endpoint: h.storeEndpoint,
    bucket: freshBucket(),
    accessKeyId: TEST_ACCESS_KEY,
    secretAccessKey: TEST_SECRET_KEY,
    region: 'auto',
    forcePathStyle: true,
  });
});
test.after(() => store.close());

test('a presigned PUT of the exact body succeeds and HEAD shows its size and MD5', async () => {
  const body = randomBytes(1000);
  const k = key();
  const p = await store.presignPut({ key: k, size: body.length, md5: md5(body), contentType: 'application/octet-stream', now: new Date(), expiresIn: 60 });
  assert.is(await put(p.url, p.headers, body), 200);
  const head = await store.head(k);
  assert.equal(head?.size, 1000);
  assert.is(head?.etag, createHash('md5').update(body).digest('hex'));
});

test('one byte more than the signed size is rejected and nothing is stored', async () => {
  const body = randomBytes(1000);
  const k = key();
  const p = await store.presignPut({ key: k, size: body.length, md5: md5(body), contentType: 'application/octet-stream', now: new Date(), expiresIn: 60 });
  const longer = Buffer.concat([body, Buffer.from([7])]);
  const status = await put(p.url, { ...p.headers, 'content-md5': md5(longer) }, longer, true);
  assert.is(status, 403, 'a refusal');
  assert.is(await store.head(k), null);
});

test('a body whose MD5 differs from the signed one is rejected (BadDigest)', async () => {
  const body = randomBytes(1000);
  const k = key();
  const p = await store.presignPut({ key: k, size: body.length, md5: md5(body), contentType: 'application/octet-stream', now: new Date(), expiresIn: 60 });
  const other = randomBytes(1000);
  assert.is(await put(p.url, p.headers, other), 400);
  assert.is(await store.head(k), null);
});

test('changing the signed MD5 header breaks the signature', async () => {
  const body = randomBytes(100);
  const other = randomBytes(100);
  const k = key();
  const p = await store.presignPut({ key: k, size: 100, md5: md5(body), contentType: 'application/octet-stream', now: new Date(), expiresIn: 60 });
  assert.is(await put(p.url, { ...p.headers, 'content-md5': md5(other) }, other, true), 403);
});

test('a different content type breaks the signature', async () => {
  const body = randomBytes(100);
  const k = key();
  const p = await store.presignPut({ key: k, size: 100, md5: md5(body), contentType: 'application/octet-stream', now: new Date(), expiresIn: 60 });
  assert.is(await put(p.url, { ...p.headers, 'content-type': 'text/html' }, body, true), 403);
});

test('a second PUT to the same key gets 412 and the first object stays', async () => {
  const body = randomBytes(500);
  const k = key();
  const p = await store.presignPut({ key: k, size: 500, md5: md5(body), contentType: 'application/octet-stream', now: new Date(), expiresIn: 60 });
  assert.is(await put(p.url, p.headers, body), 200);
  assert.is(await put(p.url, p.headers, body, true), 412);
  const again = await store.presignPut({ key: k, size: 500, md5: md5(body), contentType: 'application/octet-stream', now: new Date(), expiresIn: 60 });
  assert.is(await put(again.url, again.headers, body, true), 412);
  assert.is((await store.head(k))?.size, 500);
});

test('dropping the if-none-match header breaks the signature', async () => {
  const body = randomBytes(50);
  const k = key();
  const p = await store.presignPut({ key: k, size: 50, md5: md5(body), contentType: 'application/octet-stream', now: new Date(), expiresIn: 60 });
  const { 'if-none-match': _inm, ...headers } = p.headers;
  assert.is(await put(p.url, headers, body, true), 403);
});

test('an expired URL is rejected', async () => {
  const body = randomBytes(50);
  const k = key();
  const signedAt = new Date(Date.now() - 120_000);
  const p = await store.presignPut({ key: k, size: 50, md5: md5(body), contentType: 'application/octet-stream', now: signedAt, expiresIn: 60 });
  assert.ok(p.expiresAt.getTime() < Date.now());
  assert.is(await put(p.url, p.headers, body, true), 403);
  assert.is(await store.head(k), null);
});

test('a presigned GET returns the bytes and expires', async () => {
  const body = randomBytes(2048);
  const k = key();
  const p = await store.presignPut({ key: k, size: body.length, md5: md5(body), contentType: 'application/octet-stream', now: new Date(), expiresIn: 60 });
  assert.is(await put(p.url, p.headers, body), 200);
  const get = await store.presignGet({ key: k, now: new Date(), expiresIn: 60 });
  const res = await fetch(get.url);
  assert.is(res.status, 200);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(body));
  const old = await store.presignGet({ key: k, now: new Date(Date.now() - 120_000), expiresIn: 60 });
  const expired = await fetch(old.url);
  await expired.arrayBuffer();
  assert.is(expired.status, 403);
});

test('no URL we issue carries SDK checksum parameters', async () => {
  const now = new Date();
  const urls = [
    (await store.presignPut({ key: key(), size: 10, md5: md5(Buffer.alloc(10)), contentType: 'application/octet-stream', now, expiresIn: 60 })).url,
    (await store.presignGet({ key: key(), now, expiresIn: 60 })).url,
    (await store.presignPart({ key: key(), uploadId: 'abc', partNumber: 1, size: 5 * 1024 * 1024, now, expiresIn: 60 })).url,
  ];
  for (const u of urls) {
    const lower = u.toLowerCase();
    assert.not.ok(lower.includes('x-amz-checksum'), u);
    assert.not.ok(lower.includes('x-amz-sdk-checksum-algorithm'), u);
    assert.not.ok(lower.includes('x-amz-checksum-mode'), u);
  }
});

test('delete and deleteMany tolerate objects that are already gone', async () => {
  const keys: string[] = [];
  for (let i = 0; i < 3; i++) {
    const body = randomBytes(10);
    const k = key();
    const p = await store.presignPut({ key: k, size: 10, md5: md5(body), contentType: 'application/octet-stream', now: new Date(), expiresIn: 60 });
    assert.is(await put(p.url, p.headers, body), 200);
    keys.push(k);
  }
  await store.delete(keys[0]!);
  await store.delete(keys[0]!);
  const r = await store.deleteMany([...keys, key()]);
  assert.equal(r.failed, []);
  for (const k of keys) assert.is(await store.head(k), null);
});

test.run();
