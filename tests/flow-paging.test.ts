// The rules around the flow. Pending pages (keyset, cursors, per conversation) and batch acknowledgement.
import * as assert from 'uvu/assert';
import { type TestApp } from './helpers/harness.js';
import { send } from './helpers/flow.js';
import { alice, bob, carol, withApp } from './helpers/rules.js';

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

paging('a pending entry says what the message itself says, spelt the same (created_at to the millisecond, in UTC), as JSON', async ({ app }) => {
  // Forward to a moment with a millisecond part of 089 (presigned URLs need a clock near the real one).
  const at = new Date(Math.ceil(app.clock.now().getTime() / 1000) * 1000 + 1089);
  app.clock.set(at);
  const id = await send(app, alice, 'spelling', [carol], 1234);
  const page = await app.call('GET', '/api/v1/messages/pending?convo_id=spelling', { as: carol });
  assert.match(page.headers.get('content-type') ?? '', /^application\/json/);
  const message = await app.call('GET', `/api/v1/messages/${id}`, { as: carol });
  const { message_id, convo_id, sender_did, size, created_at } = message.body;
  assert.equal(page.body, { messages: [{ message_id, convo_id, sender_did, size, created_at }], cursor: null });
  assert.is(created_at, at.toISOString());
  assert.match(created_at, /\.089Z$/);
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
