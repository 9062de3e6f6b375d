// Reconciliation against the real PostgreSQL and the R2 emulator. What reconciliation does with reservations: expiry after the commit window, sweeping
// the bytes of finished uploads, pruning their rows.
import { randomUUID } from 'node:crypto';
import * as assert from 'uvu/assert';
import { blobKeyFor } from '../src/ids.js';
import { EXPIRY_MARGIN_MS } from '../src/lifecycle.js';
import { assertNothingDone, DAY, HOUR, MIN, SENDER, reconcileSuite } from './helpers/reconcile.js';
import { bytes } from './helpers/flow.js';

const [test, fx] = reconcileSuite('reconcile: expired and finished uploads');

// --- expired uploads ----------------------------------------------------------------------------

test('an upload inside its commit window survives any number of passes', async () => {
  const u = await fx.upload(fx.T, { object: true });
  const deadline = fx.T + fx.app.config.commitWindowSeconds * 1000;
  for (const now of [fx.T, fx.T + MIN, deadline - 1, deadline, deadline + 1, deadline + EXPIRY_MARGIN_MS]) {
    for (let i = 0; i < 2; i++) assertNothingDone(await fx.pass(now));
    assert.is((await fx.uploadRow(u.id))?.state, 'pending');
    assert.ok(await fx.exists(u.key), `object kept at ${now - fx.T} ms`);
  }
});

test('past deadline + margin the upload is marked expired, its object deleted and cleaned_at set; a second pass finds nothing', async () => {
  const u = await fx.upload(fx.T, { object: true, size: 40 });
  const after = fx.T + fx.app.config.commitWindowSeconds * 1000 + EXPIRY_MARGIN_MS + 1;
  const r = await fx.pass(after);
  assert.equal(r.expiredUploads, { count: 1, bytes: 40 });
  assert.equal(r.cleanedUploads, { count: 1, bytes: 40 });
  assert.ok(r.complete);
  const row = await fx.uploadRow(u.id);
  assert.is(row?.state, 'expired');
  assert.ok(row?.cleaned_at instanceof Date);
  assert.not.ok(await fx.exists(u.key));
  assertNothingDone(await fx.pass(after));
});

test('an expired multipart upload is aborted, found from our own row', async () => {
  const id = randomUUID();
  const key = blobKeyFor(id, new Date(fx.T));
  const uploadId = await fx.app.store.createMultipart(key, 'application/octet-stream');
  const part = bytes(1024);
  const p = await fx.app.store.presignPart({ key, uploadId, partNumber: 1, size: part.length, now: new Date(), expiresIn: 60 });
  const res = await fetch(p.url, { method: 'PUT', body: part });
  await res.arrayBuffer();
  assert.is(res.status, 200);
  const etag = (res.headers.get('etag') ?? '').replace(/"/g, '');
  await fx.app.sql`
    insert into uploads (message_id, sender_did, convo_id, blob_key, size, content_type, multipart_upload_id, part_size,
                         state, created_at, commit_deadline, updated_at, urls_valid_until)
    values (${id}, ${SENDER}, 'c1', ${key}, 1024, 'application/octet-stream', ${uploadId}, ${5 * 1024 * 1024}, 'pending',
            ${new Date(fx.T)}, ${new Date(fx.T + HOUR)}, ${new Date(fx.T)}, ${fx.urlsUntil(fx.T, new Date(fx.T + HOUR))})`;
  const r = await fx.pass(fx.T + HOUR + EXPIRY_MARGIN_MS + 1);
  assert.is(r.expiredUploads.count, 1);
  assert.is(r.cleanedUploads.count, 1);
  try {
    await fx.app.store.completeMultipart(key, uploadId, [{ partNumber: 1, etag }]);
    assert.unreachable('the multipart upload should be gone');
  } catch (err) {
    assert.instance(err, Error);
    assert.is((err as { storeCode?: string }).storeCode, 'NoSuchUpload');
  }
  assert.not.ok(await fx.exists(key));
});

test('aborted, expired and rejected uploads whose bytes were left behind are swept once', async () => {
  const aborted = await fx.upload(fx.T - HOUR, { object: true, state: 'aborted' });
  const rejected = await fx.upload(fx.T - HOUR, { object: true, state: 'rejected' });
  const crashed = await fx.upload(fx.T - 3 * HOUR, { object: true, state: 'expired' });
  const done = await fx.upload(fx.T - HOUR, { object: false, state: 'aborted', cleaned: true });
  const r = await fx.pass(fx.T);
  assert.is(r.cleanedUploads.count, 3);
  assert.is(r.expiredUploads.count, 0);
  for (const u of [aborted, rejected, crashed]) {
    assert.not.ok(await fx.exists(u.key));
    assert.ok((await fx.uploadRow(u.id))?.cleaned_at instanceof Date);
  }
  assert.ok((await fx.uploadRow(done.id)) !== null);
  assertNothingDone(await fx.pass(fx.T));
});

test('finished upload rows are pruned after retention; pending ones never are', async () => {
  const old = fx.T - 31 * DAY;
  const committed = await fx.upload(old, { state: 'committed' });
  const cleaned = await fx.upload(old, { state: 'expired', cleaned: true });
  const pending = await fx.upload(old, { state: 'pending', windowMs: 40 * DAY });
  const young = await fx.upload(fx.T - DAY, { state: 'aborted', cleaned: true });
  const r = await fx.pass(fx.T);
  assert.is(r.prunedUploads.count, 2);
  assert.is(await fx.uploadRow(committed.id), null);
  assert.is(await fx.uploadRow(cleaned.id), null);
  assert.is((await fx.uploadRow(pending.id))?.state, 'pending');
  assert.ok((await fx.uploadRow(young.id)) !== null);
  assertNothingDone(await fx.pass(fx.T));
});

test.run();
