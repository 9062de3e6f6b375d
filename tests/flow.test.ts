// The product path with real bytes: reserve → PUT to the emulator → commit → pending → fetch → ack.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestApp, type TestApp } from './helpers/harness.js';
import { did } from './helpers/tokens.js';
import { bytes, commit, md5b64, putBytes, reserve, send, setMembers, sha256b64 } from './helpers/flow.js';

const test = suite('flow: reserve, PUT, commit, pending, fetch, ack');
let app: TestApp;
const alice = did('alice');
const bob = did('bob');
const carol = did('carol');
const dave = did('dave');
const CONVO = 'convo-1';

test.before(async () => {
  app = await startTestApp();
  await setMembers(app, CONVO, [alice, bob, carol]);
});
test.after(() => app.close());

test('the whole path works with real bytes', async () => {
  const data = bytes(10_000);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(r.upload.method, 'PUT');
  const raw = await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: CONVO, size: 3, md5: md5b64(bytes(3)) } });
  assert.is(raw.headers.get('cache-control'), 'no-store', 'presigned URLs are never cached');
  assert.equal(Object.keys(r.upload.headers).sort(), ['content-length', 'content-md5', 'content-type', 'if-none-match']);
  assert.match(r.blob_key, /^m\/\d{4}\/\d{2}\/\d{2}\/[0-9a-f-]{36}$/);
  assert.is(await putBytes(r.upload, data), 200);
  const c = await commit(app, alice, { message_id: r.message_id, recipients: [bob, carol], metadata: { epoch: 7 } });
  assert.is(c.status, 201, c.text);
  assert.is(c.body.recipient_count, 2);
  assert.is(c.body.sender_did, alice);
  assert.is(c.body.size, 10_000);

  const pending = await app.call('GET', '/api/v1/messages/pending', { as: bob });
  assert.is(pending.status, 200);
  assert.equal(pending.body.messages.map((m: { message_id: string }) => m.message_id), [r.message_id]);
  assert.is(pending.body.cursor, null);

  const m = await app.call('GET', `/api/v1/messages/${r.message_id}`, { as: bob });
  assert.is(m.status, 200, m.text);
  assert.is(m.body.md5, md5b64(data));
  assert.is(m.body.sha256, sha256b64(data));
  assert.equal(m.body.metadata, { epoch: 7 });
  const dl = await fetch(m.body.download.url);
  assert.is(dl.status, 200);
  assert.ok(Buffer.from(await dl.arrayBuffer()).equals(data), 'downloaded bytes are identical');

  const blob = await app.call('GET', `/api/v1/messages/${r.message_id}/blob`, { as: bob });
  assert.is(blob.status, 302);
  const viaRedirect = await fetch(blob.headers.get('location')!);
  assert.ok(Buffer.from(await viaRedirect.arrayBuffer()).equals(data));

  const ack = await app.call('POST', `/api/v1/messages/${r.message_id}/ack`, { as: bob });
  assert.is(ack.status, 204);
  const again = await app.call('POST', `/api/v1/messages/${r.message_id}/ack`, { as: bob });
  assert.is(again.status, 204, 'ack is idempotent');
  assert.equal((await app.call('GET', '/api/v1/messages/pending', { as: bob })).body.messages, []);
  const carolPending = await app.call('GET', '/api/v1/messages/pending', { as: carol });
  assert.equal(carolPending.body.messages.map((x: { message_id: string }) => x.message_id), [r.message_id]);
  const [row] = await app.ctx.sql`select fully_acked_at from messages where id = ${r.message_id}`;
  assert.is(row!.fully_acked_at, null, 'not fully acked while carol has not acked');
  assert.is((await app.call('POST', `/api/v1/messages/${r.message_id}/ack`, { as: carol })).status, 204);
  const [after] = await app.ctx.sql`select fully_acked_at from messages where id = ${r.message_id}`;
  assert.ok(after!.fully_acked_at instanceof Date, 'fully acked once everyone acked');
});

test('only opaque content types are stored, and download URLs ask for an attachment', async () => {
  const data = bytes(64);
  const r = await reserve(app, alice, CONVO, data, { content_type: 'message/mls' });
  assert.is(r.upload.headers['content-type'], 'message/mls');
  assert.is(await putBytes(r.upload, data), 200);
  assert.is((await commit(app, alice, { message_id: r.message_id, recipients: [bob] })).status, 201);
  const m = await app.call('GET', `/api/v1/messages/${r.message_id}`, { as: bob });
  // R2 and S3 answer with these instead of what the uploader stored (unsigned extra PUT headers
  // such as Content-Disposition included); the emulator ignores them, so the URL is what is checked.
  const url = new URL(m.body.download.url);
  assert.is(url.searchParams.get('response-content-disposition'), 'attachment');
  assert.is(url.searchParams.get('response-content-type'), 'application/octet-stream');
  const dl = await fetch(url);
  assert.ok(Buffer.from(await dl.arrayBuffer()).equals(data));
  url.searchParams.set('response-content-disposition', 'inline');
  const tampered = await fetch(url);
  await tampered.arrayBuffer();
  assert.is(tampered.status, 403, 'the overrides are part of the signature');
  for (const type of ['text/html', 'image/svg+xml', 'application/javascript']) {
    const bad = await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: CONVO, size: 3, md5: md5b64(bytes(3)), content_type: type } });
    assert.is(bad.status, 400, type);
    assert.is(bad.body.details.field, '/content_type');
  }
});

test('every URL is signed by the one presigner built at start (no per-request signer, no getSignedUrl)', async () => {
  const store = app.ctx.store as unknown as { presigner: { presign: (...a: unknown[]) => Promise<unknown> } };
  const presigner = store.presigner;
  const original = presigner.presign;
  let calls = 0;
  presigner.presign = function (this: unknown, ...a: unknown[]) {
    calls++;
    return original.apply(this, a);
  };
  try {
    const data = bytes(32);
    const r = await reserve(app, alice, CONVO, data);
    await app.call('POST', `/api/v1/uploads/${r.message_id}/urls`, { as: alice });
    assert.is(await putBytes(r.upload, data), 200);
    assert.is((await commit(app, alice, { message_id: r.message_id, recipients: [bob] })).status, 201);
    await app.call('GET', `/api/v1/messages/${r.message_id}`, { as: bob });
    await app.call('GET', `/api/v1/messages/${r.message_id}/blob`, { as: bob });
    assert.is(calls, 5, "reserve, /urls, the commit's HEAD, GET and /blob each signed through the shared presigner");
    assert.is(store.presigner, presigner, 'still the same presigner');
  } finally {
    presigner.presign = original;
  }
  const { readdir, readFile } = await import('node:fs/promises');
  for (const f of await readdir(new URL('../src/', import.meta.url), { recursive: true })) {
    if (!String(f).endsWith('.ts')) continue;
    const text = await readFile(new URL(`../src/${f}`, import.meta.url), 'utf8');
    assert.not.ok(text.includes('getSignedUrl('), `${f} calls getSignedUrl (~0.9 ms a call)`);
  }
});

test('commit before the PUT is 409 UploadIncomplete with no rows; after the PUT it succeeds', async () => {
  const data = bytes(500);
  const r = await reserve(app, alice, CONVO, data);
  const early = await commit(app, alice, { message_id: r.message_id, recipients: [bob] });
  assert.is(early.status, 409);
  assert.is(early.body.error, 'UploadIncomplete');
  assert.is((await app.ctx.sql`select 1 from messages where id = ${r.message_id}`).length, 0);
  assert.is((await app.ctx.sql`select 1 from message_recipients where message_id = ${r.message_id}`).length, 0);
  assert.is(await putBytes(r.upload, data), 200);
  const late = await commit(app, alice, { message_id: r.message_id, recipients: [bob] });
  assert.is(late.status, 201, late.text);
});

async function writeStraight(key: string, data: Buffer) {
  // The store's own credentials, as if the bytes had arrived some other way.
  const p = await app.ctx.store.presignPut({ key, size: data.length, md5: md5b64(data), contentType: 'application/octet-stream', now: new Date(), expiresIn: 60 });
  assert.is(await putBytes(p, data), 200);
}

for (const [name, declared, actual] of [
  ['size', bytes(300), bytes(301)],
  ['MD5', bytes(300), bytes(300)],
] as const) {
  test(`an object whose ${name} differs from the declaration is 422, deleted, and the upload rejected`, async () => {
    const r = await reserve(app, alice, CONVO, declared);
    await writeStraight(r.blob_key, actual);
    const c = await commit(app, alice, { message_id: r.message_id, recipients: [bob] });
    assert.is(c.status, 422, c.text);
    assert.is(c.body.error, 'UploadMismatch');
    assert.is(await app.ctx.store.head(r.blob_key), null, 'the object is deleted');
    const u = await app.call('GET', `/api/v1/uploads/${r.message_id}`, { as: alice });
    assert.is(u.body.state, 'rejected');
    assert.is((await app.ctx.sql`select 1 from messages where id = ${r.message_id}`).length, 0);
    const replay = await commit(app, alice, { message_id: r.message_id, recipients: [bob] });
    assert.is(replay.status, 422);
  });
}

test('a replay returns 200 with the first body; other recipients or metadata are 409 Conflict', async () => {
  const data = bytes(100);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(await putBytes(r.upload, data), 200);
  const first = await commit(app, alice, { message_id: r.message_id, recipients: [bob, carol], metadata: { a: 1, b: [1, 2] } });
  assert.is(first.status, 201);
  const rows = async () => ({
    message: await app.ctx.sql`select * from messages where id = ${r.message_id}`,
    recipients: await app.ctx.sql`select * from message_recipients where message_id = ${r.message_id} order by recipient_did`,
    upload: await app.ctx.sql`select * from uploads where message_id = ${r.message_id}`,
  });
  const committed = await rows();
  const replay = await commit(app, alice, { message_id: r.message_id, recipients: [carol, bob], metadata: { b: [1, 2], a: 1 } });
  assert.is(replay.status, 200);
  assert.equal(replay.body, first.body);
  const other = await commit(app, alice, { message_id: r.message_id, recipients: [bob] });
  assert.is(other.status, 409);
  assert.is(other.body.error, 'Conflict');
  const otherMeta = await commit(app, alice, { message_id: r.message_id, recipients: [bob, carol], metadata: { a: 2 } });
  assert.is(otherMeta.status, 409);
  assert.equal(await rows(), committed, 'the replay and the refused commits left every row as the first commit wrote it');
  const plain = await reserve(app, alice, CONVO, data.subarray(0, 50));
  assert.is(await putBytes(plain.upload, data.subarray(0, 50)), 200);
  assert.is((await commit(app, alice, { message_id: plain.message_id, recipients: [bob] })).status, 201);
  assert.is((await commit(app, alice, { message_id: plain.message_id, recipients: [bob], metadata: {} })).status, 200, 'empty metadata is no metadata');
});

test('50 concurrent commits of one message leave one row set and give every caller the same body', async () => {
  const data = bytes(100);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(await putBytes(r.upload, data), 200);
  const token = await app.token(alice);
  const results = await Promise.all(
    Array.from({ length: 50 }, () => app.call('POST', '/api/v1/messages', { token, body: { message_id: r.message_id, recipients: [bob, carol] } })),
  );
  const statuses = results.map((x) => x.status).sort();
  assert.is(statuses.filter((s) => s === 201).length, 1, statuses.join(','));
  assert.is(statuses.filter((s) => s === 200).length, 49, statuses.join(','));
  for (const x of results) assert.equal(x.body, results[0]!.body);
  assert.is((await app.ctx.sql`select 1 from messages where id = ${r.message_id}`).length, 1);
  assert.is((await app.ctx.sql`select 1 from message_recipients where message_id = ${r.message_id}`).length, 2);
});

test('all or nothing: a recipient insert that fails inside the commit leaves no message row and the upload pending', async () => {
  const data = bytes(100);
  const r = await reserve(app, alice, CONVO, data);
  assert.is(await putBytes(r.upload, data), 200);
  // A real database failure on the recipient rows: a trigger that raises for one DID.
  await app.ctx.sql.file(await writeTrigger(dave));
  try {
    await setMembers(app, CONVO, [alice, bob, carol, dave]);
    const c = await commit(app, alice, { message_id: r.message_id, recipients: [bob, carol, dave] });
    assert.is(c.status, 500, c.text);
    assert.is(c.body.error, 'InternalError');
    assert.is((await app.ctx.sql`select 1 from messages where id = ${r.message_id}`).length, 0);
    assert.is((await app.ctx.sql`select 1 from message_recipients where message_id = ${r.message_id}`).length, 0);
    const u = await app.call('GET', `/api/v1/uploads/${r.message_id}`, { as: alice });
    assert.is(u.body.state, 'pending');
  } finally {
    await app.ctx.sql`drop trigger if exists refuse_recipient on message_recipients`;
    await setMembers(app, CONVO, [alice, bob, carol]);
  }
  const ok = await commit(app, alice, { message_id: r.message_id, recipients: [bob, carol] });
  assert.is(ok.status, 201, 'the same upload commits once the failure is gone');
});

async function writeTrigger(refused: string): Promise<string> {
  const { writeFile, mkdtemp } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const dir = await mkdtemp(path.join(tmpdir(), 'trigger-'));
  const file = path.join(dir, 'trigger.sql');
  await writeFile(
    file,
    `create or replace function refuse_recipient() returns trigger language plpgsql as $$
     begin if new.recipient_did = '${refused}' then raise exception 'recipient refused'; end if; return new; end $$;
     create trigger refuse_recipient before insert on message_recipients for each row execute function refuse_recipient();`,
  );
  return file;
}

test.run();
