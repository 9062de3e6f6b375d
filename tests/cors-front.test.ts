// The development CORS front before the R2 emulator: it answers preflights exactly as the rules of
// `npm run setup-bucket` would on R2, and presigned URLs stay valid (and checked) through it.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startCorsFront, type CorsFront } from '../src/dev/cors-front.js';
import { corsRules } from '../src/store/bucket-rules.js';
import { bytes, commit, putBytes, reserve, setMembers } from './helpers/flow.js';
import { harness, startTestApp, type TestApp } from './helpers/harness.js';
import { did } from './helpers/tokens.js';

const test = suite('CORS front for the R2 emulator');
const APP = 'http://app.test:8080';
const FOREIGN = 'http://evil.test';
const alice = did('alice');
const bob = did('bob');
const CONVO = 'convo-cors-front';
let front: CorsFront;
let app: TestApp;

test.before(async () => {
  const h = await harness();
  front = await startCorsFront({ emulatorEndpoint: h.storeEndpoint, rules: corsRules({ corsOrigins: [APP] }) });
  app = await startTestApp({ env: { R2_ENDPOINT: front.endpoint } });
  await setMembers(app, CONVO, [alice, bob]);
});
test.after(async () => {
  await app.close();
  await front.stop();
});

const preflight = (url: string, origin: string, method: string, headers: string) =>
  fetch(url, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, ...(headers ? { 'access-control-request-headers': headers } : {}) },
  });

test('a preflight for a signed PUT from an allowed origin is answered with that origin, never *', async () => {
  const r = await reserve(app, alice, CONVO, bytes(10));
  assert.ok(r.upload.url.startsWith(front.origin), 'the broker signs for the front');
  const res = await preflight(r.upload.url, APP, 'PUT', 'content-md5,content-type,if-none-match');
  assert.is(res.status, 200);
  assert.is(res.headers.get('access-control-allow-origin'), APP);
  assert.is(res.headers.get('access-control-allow-headers'), 'content-md5, content-type, if-none-match');
  assert.is(res.headers.get('access-control-allow-methods'), 'PUT, GET, HEAD');
  assert.is(res.headers.get('access-control-max-age'), '3600');
});

test('a preflight from another origin, for another method or with another header is refused', async () => {
  const r = await reserve(app, alice, CONVO, bytes(10));
  const refused: [string, string, string][] = [
    [FOREIGN, 'PUT', 'content-md5,content-type,if-none-match'],
    ['http://app.test', 'PUT', 'content-type'], // another port is another origin
    [APP, 'DELETE', ''],
    [APP, 'POST', 'content-type'],
    [APP, 'PUT', 'content-type,x-amz-meta-anything'],
  ];
  for (const [origin, method, headers] of refused) {
    const res = await preflight(r.upload.url, origin, method, headers);
    assert.is(res.status, 403, `${origin} ${method} ${headers}`);
    assert.is(res.headers.get('access-control-allow-origin'), null);
    assert.match(await res.text(), '<Code>AccessForbidden</Code>');
  }
});

test('a presigned PUT goes through the front, the emulator still checks its signature, and the answer exposes ETag', async () => {
  const data = bytes(1000);
  const r = await reserve(app, alice, CONVO, data);
  const { 'content-length': _len, ...headers } = r.upload.headers;
  // The signature covers the host the client used: the same URL on another name for the host fails.
  const otherHost = r.upload.url.replace('//127.0.0.1:', '//localhost:');
  const wrongHost = await fetch(otherHost, { method: 'PUT', headers, body: data });
  assert.is(wrongHost.status, 403);
  assert.match(await wrongHost.text(), 'SignatureDoesNotMatch');
  const wrongType = await fetch(r.upload.url, { method: 'PUT', headers: { ...headers, 'content-type': 'text/plain' }, body: data });
  assert.is(wrongType.status, 403, 'a signed header changed');
  await wrongType.arrayBuffer();

  const res = await fetch(r.upload.url, { method: 'PUT', headers: { ...headers, origin: APP }, body: data });
  await res.arrayBuffer();
  assert.is(res.status, 200);
  assert.is(res.headers.get('access-control-allow-origin'), APP);
  assert.is(res.headers.get('access-control-expose-headers'), 'ETag');
  assert.ok(res.headers.get('etag'));
  const c = await commit(app, alice, { message_id: r.message_id });
  assert.is(c.status, 201, c.text);

  const m = await app.call('GET', `/api/v1/messages/${r.message_id}`, { as: bob });
  const mine = await fetch(m.body.download.url, { headers: { origin: APP } });
  assert.ok(Buffer.from(await mine.arrayBuffer()).equals(data));
  assert.is(mine.headers.get('access-control-allow-origin'), APP);
  const theirs = await fetch(m.body.download.url, { headers: { origin: FOREIGN } });
  await theirs.arrayBuffer();
  assert.is(theirs.headers.get('access-control-allow-origin'), null, 'a foreign origin gets no CORS headers (its browser hides the answer)');
});

test('the emulator\'s checks still apply through the front (Content-MD5, If-None-Match)', async () => {
  const data = bytes(500);
  const r = await reserve(app, alice, CONVO, data);
  const flipped = Uint8Array.from(data);
  flipped[0]! ^= 1;
  assert.is(await putBytes(r.upload, flipped), 400);
  assert.is(await putBytes(r.upload, data), 200);
  assert.is(await putBytes(r.upload, data), 412);
});

test('new rules apply at once', async () => {
  const r = await reserve(app, alice, CONVO, bytes(10));
  front.setRules(corsRules({ corsOrigins: [APP, FOREIGN] }));
  try {
    assert.is((await preflight(r.upload.url, FOREIGN, 'PUT', 'content-type')).status, 200);
  } finally {
    front.setRules(corsRules({ corsOrigins: [APP] }));
  }
  assert.is((await preflight(r.upload.url, FOREIGN, 'PUT', 'content-type')).status, 403);
});

test.run();
