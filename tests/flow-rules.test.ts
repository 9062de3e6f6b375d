// The rules around the flow: deadlines, who may do what, membership, no existence oracle,
// paging, quota, abort, limits and schema errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestApp, TEST_SERVICE, type TestApp } from './helpers/harness.js';
import { did } from './helpers/tokens.js';
import { bytes, commit, md5b64, putBytes, reserve, send, setMembers } from './helpers/flow.js';

const alice = did('alice');
const bob = did('bob');
const carol = did('carol');
const mallory = did('mallory');
const CONVO = 'convo-rules';

function withApp(name: string, env: Record<string, string> = {}) {
  const s = suite<{ app: TestApp }>(name, {} as { app: TestApp });
  s.before(async (ctx) => {
    ctx.app = await startTestApp({ env });
    await setMembers(ctx.app, CONVO, [alice, bob, carol]);
  });
  s.after((ctx) => ctx.app.close());
  return s;
}

// ---------------------------------------------------------------------------------------------
const deadlines = withApp('flow: commit deadline and URL lifetimes', { COMMIT_WINDOW_SECONDS: '600', UPLOAD_URL_TTL_SECONDS: '300' });

deadlines('a commit after the deadline is 410 and writes nothing', async ({ app }) => {
  const data = bytes(100);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(await putBytes(r.upload, data), 200);
  app.clock.set(new Date(r.commit_deadline).getTime() + 1000);
  const c = await commit(app, alice, { message_id: r.message_id, recipients: [bob] });
  assert.is(c.status, 410, c.text);
  assert.is(c.body.error, 'UploadExpired');
  assert.is((await app.ctx.sql`select 1 from messages where id = ${r.message_id}`).length, 0);
  app.clock.set(Date.now());
});

deadlines('upload URLs, first and refreshed, never expire after the deadline', async ({ app }) => {
  app.clock.set(Date.now());
  const data = bytes(100);
  const r = await reserve(app, alice, CONVO, data);
  const deadline = new Date(r.commit_deadline).getTime();
  assert.ok(new Date(r.expires_at).getTime() <= deadline);
  assert.is(new Date(r.expires_at).getTime() - app.clock.now().getTime(), 300_000);
  app.clock.set(deadline - 100_000); // 100 s before the deadline: a refreshed URL is cut to 100 s
  const fresh = await app.call('POST', `/api/v1/uploads/${r.message_id}/urls`, { as: alice, body: {} });
  assert.is(fresh.status, 200, fresh.text);
  assert.is(new Date(fresh.body.expires_at).getTime(), deadline);
  assert.match(fresh.body.upload.url, /X-Amz-Expires=100&/);
  app.clock.set(deadline + 1);
  const late = await app.call('POST', `/api/v1/uploads/${r.message_id}/urls`, { as: alice });
  assert.is(late.status, 410);
  app.clock.set(Date.now());
});

deadlines('a URL refreshed through /urls uploads the bytes', async ({ app }) => {
  app.clock.set(Date.now() - 400_000); // the first URL is signed long ago and has expired
  const data = bytes(100);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(await putBytes(r.upload, data), 403);
  app.clock.set(Date.now());
  const fresh = await app.call('POST', `/api/v1/uploads/${r.message_id}/urls`, { as: alice });
  assert.is(await putBytes(fresh.body.upload, data), 200);
  assert.is((await commit(app, alice, { message_id: r.message_id, recipients: [bob] })).status, 201);
});

deadlines('download URLs never outlive the object: cut at retention and at the ack grace', async ({ app }) => {
  app.clock.set(Date.now());
  const id = await send(app, alice, CONVO, [bob]);
  const retentionEnd = app.clock.now().getTime() + app.config.retentionDays * 86_400_000;
  app.clock.set(retentionEnd - 100_000);
  const late = await app.call('GET', `/api/v1/messages/${id}`, { as: bob });
  assert.is(new Date(late.body.download.expires_at).getTime(), retentionEnd);
  app.clock.set(retentionEnd + 1000);
  assert.is((await app.call('GET', `/api/v1/messages/${id}`, { as: bob })).status, 404, 'due for deletion: gone');
  app.clock.set(Date.now());
  assert.is((await app.call('POST', `/api/v1/messages/${id}/ack`, { as: bob })).status, 204);
  const [{ fully_acked_at: acked }] = (await app.ctx.sql`select fully_acked_at from messages where id = ${id}`) as unknown as [{ fully_acked_at: Date }];
  app.clock.set(acked.getTime() + 3600_000 - 60_000);
  const graced = await app.call('GET', `/api/v1/messages/${id}`, { as: bob });
  assert.is(new Date(graced.body.download.expires_at).getTime(), acked.getTime() + 3600_000);
  app.clock.set(Date.now());
});

deadlines.run();

// ---------------------------------------------------------------------------------------------
const access = withApp('flow: who may commit, see and ack');

access('only the uploader or a service may commit; anyone else gets 404', async ({ app }) => {
  const data = bytes(64);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(await putBytes(r.upload, data), 200);
  const byBob = await commit(app, bob, { message_id: r.message_id, recipients: [carol] });
  assert.is(byBob.status, 404);
  const unknown = await commit(app, bob, { message_id: '0190b2a4-7c1e-7000-8000-000000000000', recipients: [carol] });
  assert.equal(byBob.body, unknown.body, 'not yours looks exactly like absent');
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
    assert.is(hidden.text, none.text, path);
  }
  const ackHidden = await app.call('POST', `/api/v1/messages/${id}/ack`, { as: carol });
  const ackNone = await app.call('POST', `/api/v1/messages/${absent}/ack`, { as: carol });
  assert.is(ackHidden.status, 404);
  assert.is(ackHidden.text, ackNone.text);
  const urls = await app.call('POST', `/api/v1/uploads/${id}/urls`, { as: mallory });
  assert.is(urls.status, 404);
  const convo = await app.call('GET', `/api/v1/convos/${CONVO}/members`, { as: mallory });
  const noConvo = await app.call('GET', '/api/v1/convos/nope/members', { as: mallory });
  assert.is(convo.status, 404);
  assert.is(convo.text, noConvo.text);
  // carol's ack changed nothing; bob still has it pending
  const [row] = await app.ctx.sql`select delivered from message_recipients where message_id = ${id} and recipient_did = ${bob}`;
  assert.is(row!.delivered, false);
  assert.is((await app.ctx.sql`select 1 from message_recipients where message_id = ${id} and recipient_did = ${carol}`).length, 0);
});

access('the sender may read its own message', async ({ app }) => {
  const id = await send(app, alice, CONVO, [bob]);
  assert.is((await app.call('GET', `/api/v1/messages/${id}`, { as: alice })).status, 200);
});

access.run();

// ---------------------------------------------------------------------------------------------
const membership = withApp('flow: membership enforced');

membership('a non-member cannot reserve', async ({ app }) => {
  const data = bytes(10);
  const r = await app.call('POST', '/api/v1/uploads', { as: mallory, body: { convo_id: CONVO, size: 10, md5: md5b64(data) } });
  assert.is(r.status, 403);
  assert.is(r.body.error, 'Forbidden');
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
  assert.is(one.text, two.text);
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
  const put = await app.call('PUT', `/api/v1/convos/${CONVO}/members`, { as: alice, body: { members: [alice] } });
  assert.is(put.status, 403);
  const post = await app.call('POST', `/api/v1/convos/${CONVO}/members`, { as: alice, body: { add: [mallory] } });
  assert.is(post.status, 403);
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

// ---------------------------------------------------------------------------------------------
const paging = withApp('flow: pending pages and batch ack', { MAX_PENDING_UPLOADS: '1000', MEMBERSHIP: 'off' });

async function pendingIds(app: TestApp, as: string, query = ''): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const q: string = `?limit=100${query}${cursor ? `&cursor=${cursor}` : ''}`;
    const r = await app.call('GET', `/api/v1/messages/pending${q}`, { as });
    assert.is(r.status, 200, r.text);
    ids.push(...r.body.messages.map((m: { message_id: string }) => m.message_id));
    cursor = r.body.cursor;
    pages++;
  } while (cursor !== null);
  return { ids, pages };
}

paging('250 messages come in 3 pages of 100, oldest first, none missing or repeated, also with arrivals between pages', async ({ app }) => {
  const sent: string[] = [];
  for (let i = 0; i < 250; i++) {
    app.clock.advance(2); // distinct milliseconds keep UUIDv7 order equal to send order
    sent.push(await send(app, alice, i % 2 ? 'even' : 'odd', [bob], 16));
  }
  const first = await app.call('GET', '/api/v1/messages/pending?limit=100', { as: bob });
  assert.is(first.body.messages.length, 100);
  app.clock.advance(5);
  const late = await send(app, alice, 'odd', [bob], 16);
  const rest: string[] = [];
  let cursor = first.body.cursor;
  let pages = 1;
  while (cursor) {
    const r = await app.call('GET', `/api/v1/messages/pending?limit=100&cursor=${cursor}`, { as: bob });
    rest.push(...r.body.messages.map((m: { message_id: string }) => m.message_id));
    cursor = r.body.cursor;
    pages++;
  }
  const all = [...first.body.messages.map((m: { message_id: string }) => m.message_id), ...rest];
  assert.is(pages, 3);
  assert.equal(all, [...sent, late]);
  const odd = await pendingIds(app, bob, '&convo_id=odd');
  assert.equal(odd.ids, [...sent.filter((_, i) => i % 2 === 0), late]);
});

paging('batch ack reports acked and not_found', async ({ app }) => {
  const { ids } = await pendingIds(app, bob);
  const someone = await send(app, alice, 'x', [carol]);
  const absent = '0190b2a4-7c1e-7000-8000-00000000ffff';
  const r = await app.call('POST', '/api/v1/messages/ack', { as: bob, body: { message_ids: [ids[0], ids[1], someone, absent] } });
  assert.is(r.status, 200);
  assert.equal(r.body, { acked: [ids[0], ids[1]], not_found: [someone, absent] });
  assert.is((await pendingIds(app, bob)).ids.length, ids.length - 2);
});

paging('upper-case ids are accepted and answered in lower case', async ({ app }) => {
  const id = await send(app, alice, 'x', [carol]);
  const upper = id.toUpperCase();
  assert.is((await app.call('GET', `/api/v1/messages/${upper}`, { as: carol })).body.message_id, id);
  const r = await app.call('POST', '/api/v1/messages/ack', { as: carol, body: { message_ids: [upper] } });
  assert.equal(r.body, { acked: [id], not_found: [] });
});

paging('a malformed cursor is 400', async ({ app }) => {
  const r = await app.call('GET', '/api/v1/messages/pending?cursor=bm90LWEtY3Vyc29y', { as: bob });
  assert.is(r.status, 400);
  assert.is(r.body.details.field, '/cursor');
});

paging.run();

// ---------------------------------------------------------------------------------------------
const quota = withApp('flow: pending cap, abort, state and limits', { MAX_PENDING_UPLOADS: '3' });

quota('the pending cap answers 429 with Retry-After; an aborted upload frees its slot when its URL expires', async ({ app }) => {
  app.clock.set(Date.now());
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await reserve(app, alice, CONVO, bytes(10))).message_id);
  const data = bytes(10);
  const over = await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: CONVO, size: 10, md5: md5b64(data) } });
  assert.is(over.status, 429);
  assert.is(over.body.error, 'RateLimited');
  assert.ok(Number(over.headers.get('retry-after')) > 0);
  const limits = await app.call('GET', '/api/v1/limits', { as: alice });
  const c = app.config;
  assert.equal(limits.body, {
    max_message_bytes: c.maxMessageBytes,
    multipart_threshold_bytes: c.multipartThresholdBytes,
    part_size_bytes: c.partSizeBytes,
    max_recipients: c.maxRecipients,
    upload_url_ttl_seconds: 300,
    download_url_ttl_seconds: 300,
    commit_window_seconds: c.commitWindowSeconds,
    max_pending_uploads: 3,
    pending_uploads: 3,
  });

  assert.is((await app.call('DELETE', `/api/v1/uploads/${ids[0]}`, { as: alice })).status, 204);
  assert.is((await app.call('DELETE', `/api/v1/uploads/${ids[0]}`, { as: alice })).status, 204, 'abort is idempotent');
  const state = await app.call('GET', `/api/v1/uploads/${ids[0]}`, { as: alice });
  assert.is(state.body.state, 'aborted');
  assert.is(state.body.convo_id, CONVO);
  assert.is((await app.call('GET', `/api/v1/uploads/${ids[0]}`, { as: TEST_SERVICE })).status, 200, 'a service may look');
  // Its URL still works for a while, so the slot is still taken: aborting must not be a way to
  // write more than the cap allows.
  assert.is((await app.call('GET', '/api/v1/limits', { as: alice })).body.pending_uploads, 3);
  assert.is((await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: CONVO, size: 10, md5: md5b64(data) } })).status, 429);
  app.clock.advance(301_000);
  assert.is((await app.call('GET', '/api/v1/limits', { as: alice })).body.pending_uploads, 2);
  assert.is((await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: CONVO, size: 10, md5: md5b64(data) } })).status, 201);
  app.clock.set(Date.now());
});

quota('uploads past their deadline do not hold a slot', async ({ app }) => {
  app.clock.set(Date.now());
  const dan = did('dan');
  await setMembers(app, CONVO, [alice, bob, carol, dan]);
  for (let i = 0; i < 3; i++) await reserve(app, dan, CONVO, bytes(10));
  assert.is((await app.call('GET', '/api/v1/limits', { as: dan })).body.pending_uploads, 3);
  app.clock.advance(app.config.commitWindowSeconds * 1000 + 1000);
  assert.is((await app.call('GET', '/api/v1/limits', { as: dan })).body.pending_uploads, 0);
  app.clock.set(Date.now());
});

quota('abort removes the object; bytes written again through a still-valid URL are removed once it expires', async ({ app }) => {
  app.clock.set(Date.now());
  const data = bytes(10);
  const r = await app.call('POST', '/api/v1/uploads', { as: bob, body: { convo_id: CONVO, size: 10, md5: md5b64(data) } });
  assert.is(await putBytes(r.body.upload, data), 200);
  assert.is((await app.call('DELETE', `/api/v1/uploads/${r.body.message_id}`, { as: bob })).status, 204);
  assert.is(await app.ctx.store.head(r.body.blob_key), null);
  assert.is((await commit(app, bob, { message_id: r.body.message_id, recipients: [alice] })).status, 410);
  // The URL is still valid at the store: the bytes come back...
  assert.is(await putBytes(r.body.upload, data), 200);
  const [row] = await app.ctx.sql`select cleaned_at from uploads where message_id = ${r.body.message_id}`;
  assert.is(row!.cleaned_at, null, 'not recorded as cleaned while a URL can write the key');
  // ... and the reconciler removes them once no URL can write them again.
  const { reconcile } = await import('../src/jobs/reconcile.js');
  await reconcile(app.ctx, { now: app.clock.now() });
  assert.ok(await app.ctx.store.head(r.body.blob_key), 'the sweep waits for the URL to expire');
  await reconcile(app.ctx, { now: new Date(app.clock.now().getTime() + 301_000) });
  assert.is(await app.ctx.store.head(r.body.blob_key), null);
  const [after] = await app.ctx.sql`select cleaned_at from uploads where message_id = ${r.body.message_id}`;
  assert.ok(after!.cleaned_at instanceof Date);
});

quota('recipients are written with one multi-row statement', async ({ app }) => {
  await app.ctx.sql`create table stmt_count (n int not null)`;
  await app.ctx.sql`insert into stmt_count values (0)`;
  await app.ctx.sql`create function bump_stmt() returns trigger language plpgsql as $$ begin update stmt_count set n = n + 1; return null; end $$`;
  await app.ctx.sql`create trigger count_stmt after insert on message_recipients for each statement execute function bump_stmt()`;
  const members = Array.from({ length: 20 }, (_, i) => did(`member-${i}`));
  await setMembers(app, 'big', [carol, ...members]);
  await send(app, carol, 'big');
  const [{ n }] = (await app.ctx.sql`select n from stmt_count`) as unknown as [{ n: number }];
  assert.is(n, 1);
  assert.is((await app.ctx.sql`select count(*)::int as c from message_recipients r join messages m on m.id = r.message_id where m.convo_id = 'big'`)[0]!.c, 20);
  await app.ctx.sql`drop trigger count_stmt on message_recipients`;
});

quota.run();

// ---------------------------------------------------------------------------------------------
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
  const deep = '{"a":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}';
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

// ---------------------------------------------------------------------------------------------
const races = withApp('flow: commit races');

races('an upload expired between the commit reading it and HEAD answers 410, not 409', async ({ app }) => {
  const data = bytes(50);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(await putBytes(r.upload, data), 200);
  // Fault injection: a reconciliation pass expires the upload and deletes the object just before
  // the commit's HEAD reaches the store.
  const store = app.ctx.store;
  const head = store.head.bind(store);
  store.head = async (key: string) => {
    await app.ctx.sql`update uploads set state = 'expired' where message_id = ${r.message_id}`;
    await store.delete(key);
    return head(key);
  };
  try {
    const c = await commit(app, alice, { message_id: r.message_id, recipients: [bob] });
    assert.is(c.status, 410, c.text);
    assert.is(c.body.error, 'UploadExpired');
  } finally {
    store.head = head;
  }
  assert.is((await app.ctx.sql`select 1 from messages where id = ${r.message_id}`).length, 0);
});

races.run();

// ---------------------------------------------------------------------------------------------
const rate = withApp('flow: per-DID request rate', { RATE_LIMIT_PER_MINUTE: '60' });

rate('a DID past its rate gets 429 with Retry-After; others and services are not affected; time refills', async ({ app }) => {
  app.clock.set(Date.now());
  const statuses: number[] = [];
  for (let i = 0; i < 16; i++) statuses.push((await app.call('GET', '/api/v1/limits', { as: alice })).status);
  assert.equal(statuses.slice(0, 15), Array(15).fill(200), 'a burst of a quarter minute passes');
  assert.is(statuses[15], 429);
  const limited = await app.call('GET', '/api/v1/limits', { as: alice });
  assert.is(limited.body.error, 'RateLimited');
  assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  assert.is((await app.call('GET', '/api/v1/limits', { as: bob })).status, 200, 'another DID has its own bucket');
  for (let i = 0; i < 30; i++) assert.is((await app.call('GET', `/api/v1/convos/${CONVO}/members`, { as: TEST_SERVICE })).status, 200);
  app.clock.advance(2000);
  assert.is((await app.call('GET', '/api/v1/limits', { as: alice })).status, 200, 'two seconds refill two requests');
  assert.is((await app.call('GET', '/api/v1/limits', { as: alice })).status, 200);
  assert.is((await app.call('GET', '/api/v1/limits', { as: alice })).status, 429);
});

rate.run();

// ---------------------------------------------------------------------------------------------
const big = withApp('flow: a very large conversation', { MAX_RECIPIENTS: '50000' });

big('a commit to 40,000 members writes every recipient row in one go', async ({ app }) => {
  const n = 40_000;
  await app.ctx.sql`
    insert into convo_members (convo_id, member_did)
    select 'huge', 'did:web:m' || g || '.example' from generate_series(1, ${n}) g`;
  await app.ctx.sql`insert into convo_members (convo_id, member_did) values ('huge', ${alice})`;
  const id = await send(app, alice, 'huge');
  const [{ c }] = (await app.ctx.sql`select count(*)::int as c from message_recipients where message_id = ${id}`) as unknown as [{ c: number }];
  assert.is(c, n);
});

big.run();
