// The rules around the flow. Schema violations are 400 InvalidRequest naming the field.
import * as assert from 'uvu/assert';
import { TEST_SERVICE } from './helpers/harness.js';
import { did } from './helpers/tokens.js';
import { bytes, md5b64 } from './helpers/flow.js';
import { alice, bob, CONVO, withApp } from './helpers/rules.js';

const schemas = withApp('flow: schema violations are 400 with the field', { MAX_RECIPIENTS: '3', MAX_MESSAGE_BYTES: '1000000' });

schemas('every route rejects bad input with InvalidRequest and the failing field', async ({ app }) => {
  const md5 = md5b64(bytes(1));
  const id = '0190b2a4-7c1e-7000-8000-000000000001';
  const cases: [string, string, unknown, string][] = [
    ['POST', '/api/v1/uploads', { convo_id: CONVO, size: '10', md5 }, '/size'],
    ['POST', '/api/v1/uploads', { convo_id: CONVO, size: 0, md5 }, '/size'],
    ['POST', '/api/v1/uploads', { convo_id: CONVO, size: 1.5, md5 }, '/size'],
    ['POST', '/api/v1/uploads', { convo_id: 'bad convo!', size: 10, md5 }, '/convo_id'],
    ['POST', '/api/v1/uploads', { convo_id: CONVO, size: 10, md5: 'nope' }, '/md5'],
    ['POST', '/api/v1/uploads', { convo_id: CONVO, size: 10 }, '/md5'],
    ['POST', '/api/v1/uploads', { convo_id: CONVO, size: 10, md5, extra: 1 }, '/extra'],
    ['POST', '/api/v1/uploads', { size: 10, md5 }, '/convo_id'],
    // A URL cannot name these conversations: every WHATWG URL parser (fetch's) resolves the path
    // segments "." and "..", percent-encoded or not (found by the fuzz).
    ['POST', '/api/v1/uploads', { convo_id: '..', size: 10, md5 }, '/convo_id'],
    ['POST', '/api/v1/uploads', { convo_id: '.', size: 10, md5 }, '/convo_id'],
    ['GET', '/api/v1/messages/pending?convo_id=..', undefined, '/convo_id'],
    ['POST', '/api/v1/messages', { message_id: 'not-a-uuid' }, '/message_id'],
    ['POST', '/api/v1/messages', { message_id: id, recipients: ['did:plc:bad'] }, '/recipients/0'],
    ['POST', '/api/v1/messages', { message_id: id, recipients: [bob, bob] }, '/recipients/1'],
    ['POST', '/api/v1/messages', { message_id: id, recipients: [did('a'), did('b'), did('c'), did('d')] }, '/recipients'],
    ['POST', '/api/v1/messages', { message_id: id, recipients: [] }, '/recipients'],
    ['POST', '/api/v1/messages', { message_id: id, recipients: [bob], metadata: { pad: 'x'.repeat(5000) } }, '/metadata'],
    ['POST', '/api/v1/messages', { message_id: id, metadata: [] }, '/metadata'],
    ['POST', '/api/v1/messages/ack', { message_ids: ['x'] }, '/message_ids/0'],
    ['POST', '/api/v1/messages/ack', { message_ids: [] }, '/message_ids'],
    ['PUT', `/api/v1/convos/${CONVO}/members`, { members: ['alice'] }, '/members/0'],
    ['POST', `/api/v1/convos/${CONVO}/members`, {}, '/'],
    ['POST', `/api/v1/uploads/${id}/urls`, { part_numbers: [0] }, '/part_numbers/0'],
    ['POST', `/api/v1/uploads/${id}/complete`, { parts: [{ part_number: 1 }] }, '/parts/0/etag'],
    ['GET', '/api/v1/messages/not-a-uuid', undefined, '/message_id'],
    ['GET', '/api/v1/messages/pending?limit=0', undefined, '/limit'],
    ['GET', '/api/v1/messages/pending?limit=501', undefined, '/limit'],
    ['GET', '/api/v1/messages/pending?limit=ten', undefined, '/limit'],
    ['GET', '/api/v1/messages/pending?convo_id=bad%20id', undefined, '/convo_id'],
    ['GET', '/api/v1/convos/bad%20id/members', undefined, '/convo_id'],
  ];
  for (const [method, path, body, field] of cases) {
    const as = method === 'PUT' || path.includes('/convos/') ? TEST_SERVICE : alice;
    const r = await app.call(method, path, { as, body });
    const label = `${method} ${path} ${JSON.stringify(body)?.slice(0, 80)}`;
    assert.is(r.status, 400, `${label}: ${r.text}`);
    assert.is(r.body.error, 'InvalidRequest', label);
    assert.is(r.body.details.field, field, `${label}: ${r.text}`);
  }
});

schemas('deeply nested metadata is 400, not a crash', async ({ app }) => {
  // Deep enough to overflow any recursive reader were it parsed; small enough for the commit's body limit.
  const deep = '{"a":' + '['.repeat(3000) + ']'.repeat(3000) + '}';
  const r = await app.call('POST', '/api/v1/messages', {
    as: alice,
    body: `{"message_id":"0190b2a4-7c1e-7000-8000-000000000001","recipients":["${bob}"],"metadata":${deep}}`,
  });
  assert.is(r.status, 400, r.text.slice(0, 200));
  assert.is(r.body.details.field, '/metadata');
});

schemas('a declared size above MAX_MESSAGE_BYTES is 413', async ({ app }) => {
  const r = await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: CONVO, size: 1_000_001, md5: md5b64(bytes(1)) } });
  assert.is(r.status, 413);
  assert.is(r.body.error, 'PayloadTooLarge');
});

schemas.run();
