// Fixes from the reliability review (issue 11): headers on every answer, bounded error text,
// metadata PostgreSQL cannot store, and what a service token may not do.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestApp, TEST_SERVICE, type TestApp } from './helpers/harness.js';
import { did } from './helpers/tokens.js';
import { bytes, commit, putBytes, reserve, setMembers } from './helpers/flow.js';

const test = suite('hardening: headers, error text, unstorable strings, service powers');
let app: TestApp;
const lines: string[] = [];
const alice = did('alice');
const bob = did('bob');
const CONVO = 'c-hardening';

test.before(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  app = await startTestApp({ log: pino({ level: 'debug' }, sink) });
  await setMembers(app, CONVO, [alice, bob]);
});
test.after(() => app.close());

const CSP = "default-src 'none'; frame-ancestors 'none'";

test('every answer says nosniff, no-store and a CSP that allows nothing: 2xx, 4xx, 5xx-free ops and redirects', async () => {
  const answers = [
    await app.call('GET', '/api/v1/limits', { as: alice }),
    await app.call('GET', '/api/v1/limits'),
    await app.call('GET', '/nothing-here'),
    await app.call('DELETE', '/api/v1/limits', { as: alice }),
    await app.call('POST', '/api/v1/uploads', { as: alice, body: '{', headers: { 'content-type': 'application/json' } }),
    await app.call('GET', '/healthz'),
    await app.call('GET', '/openapi.json'),
    await app.call('GET', '/metrics'),
  ];
  for (const r of answers) {
    assert.is(r.headers.get('x-content-type-options'), 'nosniff', `${r.status} ${r.text.slice(0, 80)}`);
    assert.is(r.headers.get('content-security-policy'), CSP);
    assert.is(r.headers.get('cache-control'), 'no-store');
  }
});

test('a validation error does not repeat an unbounded field name the caller sent', async () => {
  const name = `x${'A'.repeat(10_000)}<script>`;
  const r = await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: CONVO, size: 1, [name]: 1 } });
  assert.is(r.status, 400);
  assert.is(r.body.error, 'InvalidRequest');
  assert.not.ok(r.text.includes('AAAAAAAAAA'), r.text.slice(0, 200));
  assert.ok(r.text.length < 500, `answer of ${r.text.length} bytes`);
  const short = await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: CONVO, size: 1, colour: 1 } });
  assert.is(short.body.details.field, '/colour', 'a short plain name is still named');
});

test('metadata with NUL or a lone surrogate, in a key or a value, is 400 with nothing written and nothing of it logged', async () => {
  const bad: [string, string][] = [
    ['NUL value', '{"note":"se\\u0000cret-fragment"}'],
    ['NUL key', '{"se\\u0000cret-fragment":1}'],
    ['lone high surrogate', '{"note":"se\\ud800cret-fragment"}'],
    ['lone low surrogate key', '{"deep":{"se\\udc00cret-fragment":[1]}}'],
    ['in an array', '{"list":["ok","\\ud83dsecret-fragment"]}'],
  ];
  for (const [name, metadata] of bad) {
    const data = bytes(32);
    const r = await reserve(app, alice, CONVO, data);
    assert.is(await putBytes(r.upload, data), 200);
    lines.length = 0;
    const c = await app.call('POST', '/api/v1/messages', {
      as: alice,
      body: `{"message_id":"${r.message_id}","recipients":["${bob}"],"metadata":${metadata}}`,
    });
    assert.is(c.status, 400, `${name}: ${c.text}`);
    assert.is(c.body.error, 'InvalidRequest', name);
    assert.is(c.body.details.field, '/metadata', name);
    assert.is((await app.ctx.sql`select 1 from messages where id = ${r.message_id}`).length, 0, name);
    assert.is((await app.ctx.sql`select state from uploads where message_id = ${r.message_id}`)[0]!.state, 'pending', name);
    assert.not.ok(lines.join('').includes('cret-fragment'), `${name}: logged ${lines.join('')}`);
  }
  // A well-formed pair (an emoji) and ordinary control characters other than NUL are stored.
  const data = bytes(32);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(await putBytes(r.upload, data), 200);
  const ok = await commit(app, alice, { message_id: r.message_id, recipients: [bob], metadata: { note: '\ud83d\ude00 tab\there' } });
  assert.is(ok.status, 201, ok.text);
  const got = await app.call('GET', `/api/v1/messages/${r.message_id}`, { as: bob });
  assert.equal(got.body.metadata, { note: '\ud83d\ude00 tab\there' });
});

test("a service may not abort a user's pending upload: 404 as for a stranger, the upload stays pending", async () => {
  const data = bytes(16);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(await putBytes(r.upload, data), 200);
  const byService = await app.call('DELETE', `/api/v1/uploads/${r.message_id}`, { as: TEST_SERVICE });
  const byStranger = await app.call('DELETE', `/api/v1/uploads/${r.message_id}`, { as: did('mallory') });
  const unknown = await app.call('DELETE', '/api/v1/uploads/0190f5a6-0000-7000-8000-000000000000', { as: TEST_SERVICE });
  // Byte-identical but for the request id every answer carries.
  const same = (r: { body: { request_id?: string } }) => JSON.stringify({ ...r.body, request_id: undefined });
  assert.is(byService.status, 404);
  assert.is(same(byService), same(byStranger));
  assert.is(same(byService), same(unknown));
  assert.is((await app.ctx.sql`select state from uploads where message_id = ${r.message_id}`)[0]!.state, 'pending');
  // It may still commit it (the contract's service power).
  const c = await commit(app, TEST_SERVICE, { message_id: r.message_id, recipients: [bob] });
  assert.is(c.status, 201, c.text);
});

test.run();
