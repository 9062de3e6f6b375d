// The rules around the flow. Who may commit, see and ack: anything a caller may not see answers like what does not exist.
import * as assert from 'uvu/assert';
import { TEST_SERVICE } from './helpers/harness.js';
import { bytes, commit, putBytes, reserve, send, withoutRequestId } from './helpers/flow.js';
import { alice, bob, carol, CONVO, mallory, withApp } from './helpers/rules.js';

const access = withApp('flow: who may commit, see and ack');

access('only the uploader or a service may commit; anyone else gets 404', async ({ app }) => {
  const data = bytes(64);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(await putBytes(r.upload, data), 200);
  const byBob = await commit(app, bob, { message_id: r.message_id, recipients: [carol] });
  assert.is(byBob.status, 404);
  const unknown = await commit(app, bob, { message_id: '0190b2a4-7c1e-7000-8000-000000000000', recipients: [carol] });
  assert.is(withoutRequestId(byBob.text), withoutRequestId(unknown.text), 'not yours looks exactly like absent');
  const byService = await commit(app, TEST_SERVICE, { message_id: r.message_id, recipients: [bob, carol] });
  assert.is(byService.status, 201, byService.text);
  assert.is(byService.body.sender_did, alice, 'the sender stays the uploader');
});

access('no existence oracle for messages, uploads and acks', async ({ app }) => {
  const id = await send(app, alice, CONVO, [bob]);
  const absent = '0190b2a4-7c1e-7000-8000-00000000abcd';
  for (const path of [`/api/v1/messages/${id}`, `/api/v1/messages/${id}/blob`, `/api/v1/uploads/${id}`]) {
    const hidden = await app.call('GET', path, { as: mallory });
    const none = await app.call('GET', path.replace(id, absent), { as: mallory });
    assert.is(hidden.status, 404, path);
    assert.is(withoutRequestId(hidden.text), withoutRequestId(none.text), path);
  }
  const ackHidden = await app.call('POST', `/api/v1/messages/${id}/ack`, { as: carol });
  const ackNone = await app.call('POST', `/api/v1/messages/${absent}/ack`, { as: carol });
  assert.is(ackHidden.status, 404);
  assert.is(withoutRequestId(ackHidden.text), withoutRequestId(ackNone.text));
  const urls = await app.call('POST', `/api/v1/uploads/${id}/urls`, { as: mallory });
  assert.is(urls.status, 404);
  const convo = await app.call('GET', `/api/v1/convos/${CONVO}/members`, { as: mallory });
  const noConvo = await app.call('GET', '/api/v1/convos/nope/members', { as: mallory });
  assert.is(convo.status, 404);
  assert.is(withoutRequestId(convo.text), withoutRequestId(noConvo.text));
  // carol's ack changed nothing; bob still has it pending
  const [row] = await app.ctx.sql`select delivered from message_recipients where message_id = ${id} and recipient_did = ${bob}`;
  assert.is(row!.delivered, false);
  assert.is((await app.ctx.sql`select 1 from message_recipients where message_id = ${id} and recipient_did = ${carol}`).length, 0);
});

access('reading a message, its URL or its blob does not mark it delivered; only the ack does', async ({ app }) => {
  const id = await send(app, alice, CONVO, [bob]);
  assert.is((await app.call('GET', `/api/v1/messages/${id}`, { as: bob })).status, 200);
  assert.is((await app.call('GET', `/api/v1/messages/${id}/blob`, { as: bob })).status, 302);
  const row = () => app.ctx.sql`select delivered, delivered_at from message_recipients where message_id = ${id} and recipient_did = ${bob}`;
  const [before] = await row();
  assert.is(before!.delivered, false);
  assert.is(before!.delivered_at, null);
  const pending = await app.call('GET', '/api/v1/messages/pending', { as: bob });
  assert.ok(pending.body.messages.some((m: { message_id: string }) => m.message_id === id), 'still pending');
  assert.is((await app.call('POST', `/api/v1/messages/${id}/ack`, { as: bob })).status, 204);
  assert.is((await row())[0]!.delivered, true);
});

access('the sender may read its own message', async ({ app }) => {
  const id = await send(app, alice, CONVO, [bob]);
  assert.is((await app.call('GET', `/api/v1/messages/${id}`, { as: alice })).status, 200);
});

access.run();
