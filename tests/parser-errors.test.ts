// Requests Node's HTTP parser refuses before the Koa app sees them (headers above 16 KiB, bytes that
// are not HTTP) still get the house error body with a request id, an access line and a metric.
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestApp, type TestApp } from './helpers/harness.js';
import { did } from './helpers/tokens.js';

const test = suite('http: requests the parser refuses');
let app: TestApp;
const lines: string[] = [];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test.before(async () => {
  const capture = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  app = await startTestApp({ log: pino({ level: 'info' }, capture) });
});
test.after(() => app.close());

/** Sends raw bytes and reads the whole answer until the broker closes the connection. */
function raw(bytes: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const url = new URL(app.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.write(bytes));
    let answer = '';
    socket.on('data', (c) => (answer += c.toString()));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', body = ''] = answer.split('\r\n\r\n');
      const [statusLine = '', ...fields] = head.split('\r\n');
      const headers = Object.fromEntries(fields.map((f) => [f.slice(0, f.indexOf(':')).toLowerCase(), f.slice(f.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
  });
}

const accessLine = (requestId: string) =>
  lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((r) => r.msg === 'request' && r.request_id === requestId);

test('headers above 16 KiB: 431 HeadersTooLarge in the house error shape, as /openapi.json documents it', async () => {
  // Through fetch and the OpenAPI check of every answer: what a client with an oversized token sees.
  const r = await app.call('GET', '/api/v1/limits', { as: did('alice'), headers: { 'x-padding': 'a'.repeat(17 * 1024) } });
  assert.is(r.status, 431);
  assert.is(r.body.error, 'HeadersTooLarge');
  assert.match(r.body.message, /16384 bytes/);
  assert.match(r.body.request_id, UUID);
  assert.is(r.headers.get('x-request-id'), r.body.request_id);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.is(r.headers.get('cache-control'), 'no-store');
  assert.is(r.headers.get('x-content-type-options'), 'nosniff');
  const line = accessLine(r.body.request_id);
  assert.ok(line, 'an access line');
  assert.is(line.status, 431);
  assert.is(line.route, 'unmatched');
  assert.not.ok(JSON.stringify(line).includes('aaaaaaaa'), 'nothing of the request is logged');
});

test('a header block just under the limit is served as usual', async () => {
  const r = await app.call('GET', '/healthz', { headers: { 'x-padding': 'a'.repeat(15 * 1024) } });
  assert.is(r.status, 200);
});

test('bytes that are not HTTP: 400 InvalidRequest with a request id, and the connection is closed', async () => {
  const r = await raw('HELLO THERE\r\n\r\n');
  assert.is(r.status, 400);
  assert.is(r.headers.connection, 'close');
  const body = JSON.parse(r.body) as { error: string; message: string; request_id: string };
  assert.equal(Object.keys(body), ['error', 'message', 'request_id']);
  assert.is(body.error, 'InvalidRequest');
  assert.is(r.headers['x-request-id'], body.request_id);
  assert.is(Number(r.headers['content-length']), Buffer.byteLength(r.body));
  assert.ok(accessLine(body.request_id));
});

test('a raw oversized request is answered once, and the broker goes on serving', async () => {
  const r = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
  assert.is(r.status, 431);
  assert.is((JSON.parse(r.body) as { error: string }).error, 'HeadersTooLarge');
  assert.not.match(r.body, /HTTP\/1\.1/, 'one answer, not one per chunk the parser refused');
  const metrics = await app.call('GET', '/metrics');
  assert.match(metrics.text, /broker_http_requests_total\{method="unknown",route="unmatched",status="431"\} [1-9]/);
  assert.is((await app.call('GET', '/healthz')).status, 200);
});

test.run();
