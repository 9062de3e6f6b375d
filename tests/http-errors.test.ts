// Every non-2xx is {"error", "message"}: unknown routes, wrong methods, oversized, non-JSON and
// malformed bodies, and a 5xx never shows internals.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestApp, type TestApp } from './helpers/harness.js';
import { did } from './helpers/tokens.js';

const test = suite('http: error bodies');
let app: TestApp;
const alice = did('alice');

test.before(async () => {
  app = await startTestApp();
});
test.after(() => app.close());

const isErrorBody = (body: unknown, code: string) => {
  const b = body as { error?: string; message?: string };
  assert.is(b?.error, code);
  assert.type(b.message, 'string');
  assert.ok(b.message!.length > 0);
};

test('an unknown route is 404 NotFound', async () => {
  const r = await app.call('GET', '/api/v1/nothing-here', { as: alice });
  assert.is(r.status, 404);
  isErrorBody(r.body, 'NotFound');
  const anon = await app.call('GET', '/nothing');
  assert.is(anon.status, 404);
  isErrorBody(anon.body, 'NotFound');
});

test('a route answers at its documented spelling only: a trailing slash or other letter case is 404 NotFound', async () => {
  // Found by the fuzz: the router matched loosely, so /API/V1/LIMITS and /api/v1/limits/ served
  // what /openapi.json does not document, and rules written for the documented paths (a proxy's,
  // a firewall's) could be walked around by respelling one.
  for (const path of ['/api/v1/limits/', '/API/V1/LIMITS', '/api/v1/Limits', '/healthz/', '/openapi.json/']) {
    const r = await app.call('GET', path, { as: alice });
    assert.is(r.status, 404, `${path}: ${r.text}`);
    isErrorBody(r.body, 'NotFound');
  }
  const post = await app.call('POST', '/API/V1/CONVOS/c/MEMBERS', { as: alice, body: { add: [alice] } });
  assert.is(post.status, 404, post.text);
  assert.is((await app.call('GET', '/api/v1/limits', { as: alice })).status, 200);
});

test('a wrong method is 405 with an Allow header', async () => {
  const r = await app.call('DELETE', '/api/v1/limits', { as: alice });
  assert.is(r.status, 405);
  isErrorBody(r.body, 'MethodNotAllowed');
  assert.ok(r.headers.get('allow')?.includes('GET'));
});

const COMPLETE = '/api/v1/uploads/0190f5a6-0000-7000-8000-000000000001/complete';

test('a body over 256 KiB is 413', async () => {
  const big = JSON.stringify({ convo_id: 'c', pad: 'x'.repeat(300 * 1024) });
  const r = await app.call('POST', COMPLETE, { as: alice, body: big });
  assert.is(r.status, 413);
  isErrorBody(r.body, 'PayloadTooLarge');
});

test('a chunked body over 256 KiB is 413 too', async () => {
  const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
  const stream = new ReadableStream({
    start(c) {
      for (let i = 0; i < 6; i++) c.enqueue(chunk);
      c.close();
    },
  });
  const res = await fetch(app.url + COMPLETE, {
    method: 'POST',
    headers: { authorization: `Bearer ${await app.token(alice)}`, 'content-type': 'application/json' },
    body: stream,
    duplex: 'half',
  } as RequestInit);
  assert.is(res.status, 413);
  isErrorBody(await res.json(), 'PayloadTooLarge');
});

test('a non-JSON body is 415', async () => {
  const r = await app.call('POST', '/api/v1/uploads', { as: alice, body: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.is(r.status, 415);
  isErrorBody(r.body, 'UnsupportedMediaType');
});

test('malformed JSON is 400 InvalidRequest', async () => {
  const r = await app.call('POST', '/api/v1/uploads', { as: alice, body: '{"convo_id":', headers: { 'content-type': 'application/json' } });
  assert.is(r.status, 400);
  isErrorBody(r.body, 'InvalidRequest');
  assert.match(r.body.message, /not valid JSON/);
  const ready = await app.call('GET', '/healthz');
  assert.is(ready.status, 200);
});

/** The same broker with its pool (or its bucket) pointed at a port where nothing listens. */
async function withBrokenDatabase(fn: (base: string) => Promise<void>, part: 'database' | 'storage' = 'database'): Promise<void> {
  const { createApp } = await import('../src/app.js');
  const { createSql } = await import('../src/db/sql.js');
  const { BlobStore } = await import('../src/store/store.js');
  const broken = { ...app.ctx, sql: part === 'database' ? createSql('postgres://nobody:secret@127.0.0.1:1/none', { max: 1 }) : app.ctx.sql };
  if (part === 'storage') broken.store = new BlobStore({ ...app.config.store, endpoint: 'http://127.0.0.1:1' });
  const server = createApp(broken).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    await fn(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  } finally {
    server.close();
    if (part === 'database') await broken.sql.end({ timeout: 0 });
    else broken.store.close();
  }
}

test('a 5xx never leaks internals', async () => {
  await withBrokenDatabase(async (base) => {
    const res = await fetch(`${base}/api/v1/limits`, { headers: { authorization: `Bearer ${await app.token(alice)}` } });
    const text = await res.text();
    assert.is(res.status, 503);
    isErrorBody(JSON.parse(text), 'DatabaseUnavailable');
    assert.ok(res.headers.get('retry-after'));
    assert.not.ok(/127\.0\.0\.1|ECONNREFUSED|secret|stack/i.test(text), text);
  });
});

test('readyz names the failing part', async () => {
  const ok = await app.call('GET', '/readyz');
  assert.is(ok.status, 200);
  await withBrokenDatabase(async (base) => {
    const res = await fetch(`${base}/readyz`);
    const body = (await res.json()) as { message: string; details: Record<string, string> };
    assert.is(res.status, 503);
    assert.ok(body.message.includes('database'));
    assert.is(body.details.database, 'unavailable');
    assert.is(body.details.storage, 'ok');
  });
});

test('readyz names a failing bucket, and a reservation then answers 503 with nothing written', async () => {
  const put = await app.call('PUT', '/api/v1/convos/c-broken/members', { as: 'did:web:delivery.test', body: { members: [alice] } });
  assert.is(put.status, 200);
  await withBrokenDatabase(async (base) => {
    const res = await fetch(`${base}/readyz`);
    const body = (await res.json()) as { error: string; details: Record<string, string> };
    assert.is(res.status, 503);
    assert.is(body.error, 'StorageUnavailable');
    assert.equal(body.details, { database: 'ok', storage: 'unavailable' });
    const reserve = await fetch(`${base}/api/v1/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await app.token(alice)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ convo_id: 'c-broken', size: 100 * 1024 * 1024 + 1, sha256: `${'A'.repeat(43)}=` }),
    });
    // A multipart reservation needs the store first: it fails before anything is written.
    assert.is(reserve.status, 503);
    isErrorBody(await reserve.json(), 'StorageUnavailable');
    assert.ok(reserve.headers.get('retry-after'));
    assert.is((await app.ctx.sql`select 1 from uploads where convo_id = 'c-broken'`).length, 0);
  }, 'storage');
});

test('readiness answers from a result at most 2 s old, so it cannot be used to spend store requests', async () => {
  const { createApp } = await import('../src/app.js');
  let pings = 0;
  const store = Object.create(app.ctx.store) as typeof app.ctx.store;
  store.ping = async () => {
    pings++;
  };
  const server = createApp({ ...app.ctx, store }).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    for (let i = 0; i < 5; i++) assert.is((await fetch(`${base}/readyz`)).status, 200);
    assert.is(pings, 1);
  } finally {
    server.close();
  }
});

test('openapi.json documents the routes', async () => {
  const r = await app.call('GET', '/openapi.json');
  assert.is(r.status, 200);
  assert.is(r.body.openapi, '3.1.0');
  assert.ok(r.body.paths['/api/v1/limits'].get);
  assert.ok(r.body.paths['/readyz'].get);
});

test('metrics are Prometheus text', async () => {
  const r = await app.call('GET', '/metrics');
  assert.is(r.status, 200);
  assert.ok(r.text.includes('broker_http_requests_total'));
});

test.run();
