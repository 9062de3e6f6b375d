// Request ids and the access log: every answer carries x-request-id, error bodies quote it, every
// request leaves one info line, and no line ever holds a token or a presigned URL's query string.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import Koa from 'koa';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { requestScope, requestsInFlight, scopeOf } from '../src/http/request-scope.js';
import { createLogger } from '../src/log.js';
import { bytes, commit, md5b64, putBytes, reserve, setMembers } from './helpers/flow.js';
import { startTestApp, type TestApp } from './helpers/harness.js';
import { did } from './helpers/tokens.js';

const test = suite('http: request ids and access log');
let app: TestApp;
const lines: string[] = [];
const alice = did('alice');
const bob = did('bob');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function capture(into: string[]) {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      into.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
}

const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
const accessLines = () => records().filter((r) => r.msg === 'request');

test.before(async () => {
  app = await startTestApp({ log: pino({ level: 'info' }, capture(lines)), env: { CORS_ORIGINS: 'https://app.example' } });
});
test.after(() => app.close());

test('every answer carries a new request id when the caller sent none', async () => {
  const a = await app.call('GET', '/healthz');
  const b = await app.call('GET', '/api/v1/limits', { as: alice });
  assert.match(a.headers.get('x-request-id') ?? '', UUID);
  assert.match(b.headers.get('x-request-id') ?? '', UUID);
  assert.is.not(a.headers.get('x-request-id'), b.headers.get('x-request-id'));
});

test("a well-formed caller's request id is kept; a malformed one is replaced", async () => {
  const mine = 'client-42:retry.3_A';
  const kept = await app.call('GET', '/healthz', { headers: { 'x-request-id': mine } });
  assert.is(kept.headers.get('x-request-id'), mine);
  const longest = 'a'.repeat(128);
  assert.is((await app.call('GET', '/healthz', { headers: { 'x-request-id': longest } })).headers.get('x-request-id'), longest);
  for (const bad of ['a'.repeat(129), 'has space', 'semi;colon', 'slash/no', 'per%25cent', '"quoted"']) {
    const r = await app.call('GET', '/healthz', { headers: { 'x-request-id': bad } });
    assert.match(r.headers.get('x-request-id') ?? '', UUID, bad);
  }
});

test('a browser on an allowed origin may read the request id', async () => {
  const r = await app.call('GET', '/api/v1/limits', { as: alice, headers: { origin: 'https://app.example' } });
  assert.is(r.status, 200);
  const exposed = (r.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(/\s*,\s*/);
  assert.ok(exposed.includes('x-request-id'), exposed.join(','));
});

test('an error body quotes the request id of its answer', async () => {
  const r = await app.call('GET', '/api/v1/messages/pending?limit=0', { as: alice, headers: { 'x-request-id': 'quote-me-1' } });
  assert.is(r.status, 400);
  assert.is(r.body.request_id, 'quote-me-1');
  const anon = await app.call('GET', '/api/v1/limits');
  assert.is(anon.status, 401);
  assert.is(anon.body.request_id, anon.headers.get('x-request-id'));
  const unknown = await app.call('GET', '/nowhere');
  assert.is(unknown.status, 404);
  assert.is(unknown.body.request_id, unknown.headers.get('x-request-id'));
});

test('a flow leaves one info line per request, with route pattern, status, duration, bytes, caller and request id', async () => {
  lines.length = 0;
  await setMembers(app, 'log-convo', [alice, bob]);
  const data = bytes(300);
  const r = await reserve(app, alice, 'log-convo', data);
  assert.is(await putBytes(r.upload, data), 200);
  assert.is((await commit(app, alice, { message_id: r.message_id })).status, 201);
  const got = await app.call('GET', `/api/v1/messages/${r.message_id}`, { as: bob, headers: { 'x-request-id': 'bob-fetch-1' } });
  assert.is(got.status, 200);
  const blob = await app.call('GET', `/api/v1/messages/${r.message_id}/blob`, { as: bob });
  assert.is(blob.status, 302);
  assert.is((await app.call('POST', `/api/v1/messages/${r.message_id}/ack`, { as: bob })).status, 204);

  const access = accessLines();
  assert.is(access.length, 6, JSON.stringify(access));
  for (const a of access) {
    assert.is(a.level, 30, 'info');
    assert.type(a.method, 'string');
    assert.type(a.status, 'number');
    assert.type(a.ms, 'number');
    assert.type(a.bytes, 'number');
    assert.match(String(a.request_id), /^[A-Za-z0-9._:-]+$/);
  }
  const fetchLine = access.find((a) => a.request_id === 'bob-fetch-1');
  assert.ok(fetchLine);
  assert.is(fetchLine.route, '/api/v1/messages/:message_id');
  assert.is(fetchLine.method, 'GET');
  assert.is(fetchLine.status, 200);
  assert.is(fetchLine.did, bob);
  assert.is(fetchLine.bytes, Buffer.byteLength(got.text));
  assert.ok(access.some((a) => a.route === '/api/v1/uploads' && a.status === 201 && a.did === alice));
  assert.ok(access.some((a) => a.route === '/api/v1/messages/:message_id/blob' && a.status === 302));
  assert.ok(!access.some((a) => JSON.stringify(a).includes(r.message_id)), 'the route pattern, never the path');
});

test('no log line holds a token or a presigned URL query string', async () => {
  lines.length = 0;
  const token = await app.token(alice);
  await setMembers(app, 'secret-convo', [alice, bob]);
  const data = bytes(64);
  const reserved = await app.call('POST', '/api/v1/uploads', {
    token,
    body: { convo_id: 'secret-convo', size: data.length, md5: md5b64(data) },
  });
  assert.is(reserved.status, 201);
  await putBytes(reserved.body.upload, data);
  await app.call('POST', '/api/v1/messages', { token, body: { message_id: reserved.body.message_id } });
  const fetched = await app.call('GET', `/api/v1/messages/${reserved.body.message_id}`, { as: bob });
  const blob = await app.call('GET', `/api/v1/messages/${reserved.body.message_id}/blob`, { as: bob });
  await app.call('GET', '/api/v1/limits', { token: `${token}x` }); // a refused token is not logged either
  const queries = [reserved.body.upload.url, fetched.body.download.url, blob.headers.get('location')!].map((u) => new URL(u).search.slice(1));
  const signatures = queries.map((q) => new URLSearchParams(q).get('X-Amz-Signature')!);
  assert.ok(lines.length >= 6);
  const all = lines.join('\n');
  assert.not.ok(all.includes(token), 'a token');
  assert.not.ok(all.includes(token.split('.')[2]!), "a token's signature");
  for (const q of queries) assert.not.ok(all.includes(q), 'a presigned query string');
  for (const s of signatures) assert.not.ok(all.includes(s), 'a presigned signature');
});

test('a line logged while serving a request carries its request id', async () => {
  const own: string[] = [];
  const broken = await startTestApp({ log: pino({ level: 'info' }, capture(own)) });
  try {
    await broken.ctx.sql.end({ timeout: 1 }); // every query now fails: a dependency failure is logged
    const r = await broken.call('GET', '/api/v1/messages/pending', { as: alice, headers: { 'x-request-id': 'when-db-down' } });
    assert.is(r.status, 503);
    assert.is(r.body.request_id, 'when-db-down');
    const mine = own.map((l) => JSON.parse(l) as Record<string, unknown>).filter((x) => x.request_id === 'when-db-down');
    assert.ok(mine.some((x) => x.msg === 'dependency failure' && x.level === 40), own.join('\n'));
    assert.ok(mine.some((x) => x.msg === 'request' && x.status === 503));
  } finally {
    await broken.close();
  }
});

test('one scope per request: the handler, the crash report and the access line see the same id and caller', async () => {
  lines.length = 0;
  let inside: ReturnType<typeof requestsInFlight> | undefined;
  const koa = new Koa();
  koa.use(requestScope(app.ctx));
  koa.use(async (ctx) => {
    const scope = scopeOf(ctx);
    scope.did = 'did:plc:scoped';
    await new Promise((r) => setTimeout(r, 5)); // the scope follows the request across awaits
    inside = requestsInFlight();
    scope.log.info('while serving');
    ctx.body = { ok: true };
  });
  const server = createServer(koa.callback()).listen(0, '127.0.0.1');
  try {
    await new Promise((r) => server.once('listening', r));
    const r = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x?secret=1`, { headers: { 'x-request-id': 'one-scope-1' } });
    assert.is(r.headers.get('x-request-id'), 'one-scope-1');
    await r.text();
  } finally {
    await new Promise((r) => server.close(r));
  }
  const { ms, ...seen } = inside!.requests[0]!;
  assert.equal({ count: inside!.count, ...seen }, { count: 1, method: 'GET', path: '/x', did: 'did:plc:scoped', requestId: 'one-scope-1' });
  assert.ok(ms >= 4, `its age in ms: ${ms}`);
  assert.equal(requestsInFlight(), { count: 0, requests: [] }, 'once answered, it is no longer in flight');
  const mine = records().filter((x) => x.request_id === 'one-scope-1');
  assert.equal(mine.map((x) => x.msg), ['while serving', 'request']);
  assert.is(mine[1]!.did, 'did:plc:scoped');
});

test('development on a terminal logs human-readable lines; otherwise JSON', async () => {
  const pretty: string[] = [];
  createLogger('info', { pretty: true, destination: capture(pretty) }).info({ route: '/x' }, 'hello pretty');
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(pretty.some((l) => l.includes('hello pretty')), pretty.join('\n'));
  assert.throws(() => JSON.parse(pretty.join('\n')));
  const json: string[] = [];
  createLogger('info', { destination: capture(json) }).info('hello json');
  assert.is((JSON.parse(json[0]!) as { msg: string }).msg, 'hello json');
});

test.run();
