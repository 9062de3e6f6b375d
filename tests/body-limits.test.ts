// Request bodies (issue 11, items 1 and 6): read only for a matched route, after authentication
// and the rate limit; a nesting scan before JSON.parse; a limit per route; a client that leaves
// mid-body is its own affair, not a database outage.
import { connect } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import type { Context, Next } from 'koa';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createApp } from '../src/app.js';
import { startTestApp, type TestApp } from './helpers/harness.js';
import { did } from './helpers/tokens.js';

const test = suite('request bodies: read late, bounded, and abandoned politely');
let app: TestApp;
let server: Server;
let base: string;
const logs: Record<string, unknown>[] = [];
/** Per request, whether anything read its body by the time the middleware chain returned. */
const bodyRead: boolean[] = [];
const alice = did('alice');
const ID = '0190f5a6-0000-7000-8000-000000000001';

test.before(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  app = await startTestApp({ log: pino({ level: 'debug' }, sink), env: { RATE_LIMIT_PER_MINUTE: '1' } });
  // The suite's own server on the same context, with a spy first in the chain.
  const koa = createApp(app.ctx);
  koa.middleware.unshift(async (ctx: Context, next: Next) => {
    await next();
    bodyRead.push(ctx.req.readableDidRead);
  });
  server = koa.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
test.after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await app.close();
});

async function post(path: string, body: string, headers: Record<string, string> = {}, method = 'POST') {
  const res = await fetch(base + path, { method, headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.text();
  return { status: res.status, text, body: text ? (JSON.parse(text) as { error: string; message: string; details?: { field: string } }) : undefined };
}
let callers = 0;
/** A fresh caller each time unless told: the suite's rate limit (a burst of 10) is for one test only. */
const bearer = async (who = `did:web:caller${++callers}.test`) => ({ authorization: `Bearer ${await app.token(who)}` });
const nested = (n: number) => '['.repeat(n) + ']'.repeat(n);

test('a refused request is answered without its body being read: no token, a bad token, no such route, wrong method, over the rate', async () => {
  const junk = nested(100 * 1024);
  const cases: [string, () => Promise<{ status: number; body?: { error: string } }>, number, string][] = [
    ['no token', () => post('/api/v1/uploads', junk), 401, 'AuthRequired'],
    ['a bad token', () => post('/api/v1/uploads', junk, { authorization: 'Bearer a.b.c' }), 401, 'InvalidToken'],
    ['no such route', async () => post('/api/v1/nothing-here', junk, await bearer()), 404, 'NotFound'],
    ['no such route, no token', () => post('/nothing', junk), 404, 'NotFound'],
    ['wrong method', async () => post('/api/v1/limits', junk, await bearer()), 405, 'MethodNotAllowed'],
  ];
  for (const [name, send, status, code] of cases) {
    bodyRead.length = 0;
    const r = await send();
    assert.is(r.status, status, name);
    assert.is(r.body?.error, code, name);
    assert.equal(bodyRead, [false], `${name}: the body was read`);
  }
  // Over the rate (a burst of 10 a minute here): the 11th request's body is not read either.
  const mallory = await bearer(did('mallory'));
  for (let i = 0; i < 10; i++) assert.is((await post('/api/v1/uploads', '{}', mallory)).status, 400);
  bodyRead.length = 0;
  const limited = await post('/api/v1/uploads', junk, mallory);
  assert.is(limited.status, 429);
  assert.equal(bodyRead, [false], 'the throttled body was read');
  // The spy does see a body that is read: an authenticated, known route.
  bodyRead.length = 0;
  assert.is((await post('/api/v1/uploads', '{}', await bearer())).status, 400);
  assert.equal(bodyRead, [true]);
});

test('nesting deeper than 33 levels is refused before JSON.parse, naming the top-level field', async () => {
  const deep = await post(`/api/v1/uploads/${ID}/complete`, nested(100 * 1024), await bearer());
  assert.is(deep.status, 400, deep.text.slice(0, 200));
  assert.is(deep.body?.error, 'InvalidRequest');
  assert.match(deep.body!.message, /nests deeper than 33 levels/);
  const inField = await post(`/api/v1/uploads/${ID}/complete`, `{"parts":${nested(40)}}`, await bearer());
  assert.is(inField.body?.details?.field, '/parts');
  // Brackets inside strings are text, not nesting.
  const quoted = await post('/api/v1/uploads', JSON.stringify({ convo_id: '['.repeat(100), size: 1 }), await bearer());
  assert.is(quoted.status, 400);
  assert.is(quoted.body?.details?.field, '/convo_id', quoted.text);
});

test('each route reads only the body it needs: 16 KiB for a reservation, 72 KiB for a commit, 256 KiB for /complete', async () => {
  const pad = (n: number) => JSON.stringify({ pad: 'x'.repeat(n) });
  const cases: [string, string, number, boolean][] = [
    ['/api/v1/uploads', pad(17 * 1024), 413, true],
    ['/api/v1/uploads', pad(15 * 1024), 400, false],
    ['/api/v1/messages', pad(73 * 1024), 413, true],
    ['/api/v1/messages', pad(70 * 1024), 400, false],
    [`/api/v1/uploads/${ID}/complete`, pad(250 * 1024), 400, false],
    [`/api/v1/uploads/${ID}/complete`, pad(257 * 1024), 413, true],
    ['/api/v1/messages/ack', pad(33 * 1024), 413, true],
  ];
  for (const [path, body, status, tooLarge] of cases) {
    const r = await post(path, body, await bearer());
    assert.is(r.status, status, `${path} with ${body.length} bytes: ${r.text.slice(0, 120)}`);
    assert.is(r.body?.error === 'PayloadTooLarge', tooLarge);
  }
  // A route that takes no body: a small one is refused as such, a large one is not read whole.
  const small = await post(`/api/v1/messages/${ID}/ack`, '{"x":1}', await bearer());
  assert.is(small.status, 400);
  assert.is((await post(`/api/v1/messages/${ID}/ack`, pad(2048), await bearer())).status, 413);
});

test('a client that leaves mid-body is logged at debug and counted as 499, never as a 503 or a warning', async () => {
  const token = await app.token(alice);
  logs.length = 0;
  const socket = connect((server.address() as { port: number }).port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  socket.write(
    `POST /api/v1/messages HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{"message_id":`,
  );
  await new Promise((r) => setTimeout(r, 200)); // before or after the body is being read: either way
  socket.destroy();
  let line: Record<string, unknown> | undefined;
  for (let i = 0; i < 200 && line === undefined; i++) {
    line = logs.find((l) => l.msg === 'request' && l.method === 'POST');
    if (line === undefined) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(line, `the request was logged: ${JSON.stringify(logs)}`);
  assert.is(line!.status, 499, JSON.stringify(logs));
  assert.equal(logs.filter((l) => (l.level as number) >= 40), [], 'nothing at warn or above');
  assert.ok(logs.some((l) => l.level === 20 && l.msg === 'client closed the connection mid-body'));
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.not.ok(/broker_http_requests_total\{[^}]*status="503"/.test(metrics), 'no 503 counted');
  assert.ok(/broker_http_requests_total\{method="POST",route="\/api\/v1\/messages",status="499"\}/.test(metrics), metrics.slice(0, 500));
});

test.run();
