// The rules around the flow. The pending-upload cap, abort, an upload's state and /limits.
import * as assert from 'uvu/assert';
import { TEST_SERVICE } from './helpers/harness.js';
import { did } from './helpers/tokens.js';
import { bytes, commit, md5b64, putBytes, reserve, send, setMembers } from './helpers/flow.js';
import { alice, bob, carol, CONVO, withApp } from './helpers/rules.js';

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
    max_bytes_per_day: c.maxBytesPerDay,
    bytes_reserved: 30,
    bytes_available: c.maxBytesPerDay - 30,
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
