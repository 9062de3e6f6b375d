// The rules around the flow. Commit races, the per-DID request rate and a very large conversation.
import * as assert from 'uvu/assert';
import { TEST_SERVICE } from './helpers/harness.js';
import { bytes, commit, putBytes, reserve, send } from './helpers/flow.js';
import { alice, bob, CONVO, withApp } from './helpers/rules.js';

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
