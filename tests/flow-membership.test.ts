// The rules around the flow. Membership, enforced and off: who may send to whom, and what a member change does to a commit.
import * as assert from 'uvu/assert';
import { TEST_SERVICE } from './helpers/harness.js';
import { did } from './helpers/tokens.js';
import { bytes, commit, md5b64, putBytes, reserve, send, setMembers, withoutRequestId } from './helpers/flow.js';
import { alice, bob, carol, CONVO, mallory, withApp } from './helpers/rules.js';

const membership = withApp('flow: membership enforced');

membership('a non-member cannot reserve', async ({ app }) => {
  const data = bytes(10);
  const r = await app.call('POST', '/api/v1/uploads', { as: mallory, body: { convo_id: CONVO, size: 10, md5: md5b64(data) } });
  assert.is(r.status, 403);
  assert.is(r.body.error, 'Forbidden');
  assert.is((await app.ctx.sql`select 1 from uploads where sender_did = ${mallory}`).length, 0, 'no upload row was written');
});

membership('recipients outside the conversation are 403', async ({ app }) => {
  const data = bytes(10);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(await putBytes(r.upload, data), 200);
  const c = await commit(app, alice, { message_id: r.message_id, recipients: [bob, mallory] });
  assert.is(c.status, 403);
  assert.is(c.body.error, 'Forbidden');
});

membership('a sender removed after reserving cannot commit, and the refusal does not tell who is a member', async ({ app }) => {
  const dan = did('dan');
  await setMembers(app, 'c-removed', [alice, bob, dan]);
  const data = bytes(10);
  const r = await reserve(app, dan, 'c-removed', data);
  assert.is(await putBytes(r.upload, data), 200);
  const members = await app.call('POST', '/api/v1/convos/c-removed/members', { as: TEST_SERVICE, body: { remove: [dan] } });
  assert.equal(members.body.members, [alice, bob].sort());
  for (const body of [{ message_id: r.message_id }, { message_id: r.message_id, recipients: [bob] }]) {
    const c = await commit(app, dan, body);
    assert.is(c.status, 403, c.text);
    assert.is(c.body.message, 'The sender is not a member of this conversation.');
  }
  assert.is((await commit(app, TEST_SERVICE, { message_id: r.message_id })).status, 403, 'not on the sender\'s behalf either');
  assert.is((await app.ctx.sql`select 1 from messages where id = ${r.message_id}`).length, 0);
  // Recipients outside the conversation: one answer however many, so no membership oracle.
  const a = await reserve(app, alice, 'c-removed', data);
  assert.is(await putBytes(a.upload, data), 200);
  const one = await commit(app, alice, { message_id: a.message_id, recipients: [bob, mallory] });
  const two = await commit(app, alice, { message_id: a.message_id, recipients: [mallory, dan] });
  assert.is(one.status, 403);
  assert.is(withoutRequestId(one.text), withoutRequestId(two.text));
});

membership('a membership change and a commit never interleave: the commit sees the members after the change', async ({ app }) => {
  const dan = did('dan');
  await setMembers(app, 'c-race', [alice, bob]);
  const data = bytes(10);
  const r = await reserve(app, alice, 'c-race', data);
  assert.is(await putBytes(r.upload, data), 200);
  // Hold the conversation's exclusive lock as a membership change would, add dan, and commit meanwhile.
  const change = app.ctx.sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtextextended(${'convo:c-race'}, 0))`;
    await new Promise((res) => setTimeout(res, 300));
    await tx`insert into convo_members (convo_id, member_did) values ('c-race', ${dan})`;
  });
  await new Promise((res) => setTimeout(res, 50));
  const c = await commit(app, alice, { message_id: r.message_id });
  await change;
  assert.is(c.status, 201, c.text);
  assert.is(c.body.recipient_count, 2, 'bob and dan: the commit waited for the change');
});

membership('omitted recipients are every member but the sender', async ({ app }) => {
  const id = await send(app, alice, CONVO);
  const rows = await app.ctx.sql`select recipient_did from message_recipients where message_id = ${id} order by 1`;
  assert.equal(rows.map((r) => r.recipient_did), [bob, carol].sort());
});

membership('membership routes are service-only; members may list', async ({ app }) => {
  const members = () => app.ctx.sql`select member_did, added_at from convo_members where convo_id = ${CONVO} order by member_did`;
  const before = await members();
  const put = await app.call('PUT', `/api/v1/convos/${CONVO}/members`, { as: alice, body: { members: [alice] } });
  assert.is(put.status, 403);
  const post = await app.call('POST', `/api/v1/convos/${CONVO}/members`, { as: alice, body: { add: [mallory], remove: [bob] } });
  assert.is(post.status, 403);
  assert.equal(await members(), before, 'the refused changes left the members as they were');
  const change = await app.call('POST', '/api/v1/convos/other/members', { as: TEST_SERVICE, body: { add: [alice, bob], remove: [] } });
  assert.equal(change.body, { convo_id: 'other', members: [alice, bob].sort() });
  const removed = await app.call('POST', '/api/v1/convos/other/members', { as: TEST_SERVICE, body: { remove: [bob] } });
  assert.equal(removed.body.members, [alice]);
  const list = await app.call('GET', '/api/v1/convos/other/members', { as: alice });
  assert.equal(list.body.members, [alice]);
  const replaced = await app.call('PUT', '/api/v1/convos/other/members', { as: TEST_SERVICE, body: { members: [carol] } });
  assert.equal(replaced.body.members, [carol]);
  assert.is((await app.call('GET', '/api/v1/convos/other/members', { as: alice })).status, 404, 'alice is no longer a member');
});

membership.run();

const open = withApp('flow: membership off', { MEMBERSHIP: 'off' });

open('anyone may reserve and send to anyone, but recipients must be given', async ({ app }) => {
  const data = bytes(10);
  const r = await reserve(app, mallory, 'somewhere', data);
  assert.is(await putBytes(r.upload, data), 200);
  const none = await commit(app, mallory, { message_id: r.message_id });
  assert.is(none.status, 400);
  assert.is(none.body.details.field, '/recipients');
  assert.is((await commit(app, mallory, { message_id: r.message_id, recipients: [bob] })).status, 201);
});

open.run();
