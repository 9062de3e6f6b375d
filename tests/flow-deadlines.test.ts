// The rules around the flow. Commit deadlines and URL lifetimes: a late commit writes nothing; no URL outlives its deadline or its object.
import * as assert from 'uvu/assert';
import { bytes, commit, putBytes, reserve, send } from './helpers/flow.js';
import { alice, bob, CONVO, withApp } from './helpers/rules.js';

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
  assert.is(await putBytes(r.upload, data, { refusal: true }), 403);
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
