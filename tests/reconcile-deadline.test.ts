// Reconciliation against commits at the deadline, through the real commit route: whichever wins,
// a committed message keeps its object and an expired upload has none.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { reconcile } from '../src/jobs/reconcile.js';
import { EXPIRY_MARGIN_MS } from '../src/lifecycle.js';
import { bytes, commit, putBytes, reserve as reserveUpload, setMembers, type Reserved } from './helpers/flow.js';
import { startTestApp, type TestApp } from './helpers/harness.js';
import { RECIPIENT, SENDER } from './helpers/reconcile.js';

const boundary = suite('reconcile against commits at the deadline (HTTP)');
let web: TestApp;

boundary.before(async () => {
  web = await startTestApp();
  await setMembers(web, 'convo-boundary', [SENDER, RECIPIENT]);
});
boundary.after(async () => {
  await web?.close();
});

async function reservedAndPut(): Promise<Reserved> {
  const body = bytes(100);
  const r = await reserveUpload(web, SENDER, 'convo-boundary', body);
  assert.is(await putBytes(r.upload, body), 200);
  return r;
}

async function outcome(r: Reserved) {
  const [u] = await web.ctx.sql<{ state: string }[]>`select state from uploads where message_id = ${r.message_id}`;
  const [m] = await web.ctx.sql<{ n: number }[]>`select count(*)::int as n from messages where id = ${r.message_id}`;
  return { state: u?.state, messages: m!.n, object: (await web.ctx.store.head(r.blob_key)) !== null };
}

boundary('a commit at the deadline wins over a later pass; a pass that expired the upload makes the commit 410', async () => {
  const first = await reservedAndPut();
  const second = await reservedAndPut();
  const deadline = new Date(first.commit_deadline).getTime();
  const passAt = new Date(Math.max(deadline, new Date(second.commit_deadline).getTime()) + EXPIRY_MARGIN_MS + 1);
  web.clock.set(deadline);

  const c = await commit(web, SENDER, { message_id: first.message_id });
  assert.is(c.status, 201, c.text);
  const r = await reconcile(web.ctx, { now: passAt });
  assert.is(r.expiredUploads.count, 1, 'only the uncommitted one');
  assert.equal(await outcome(first), { state: 'committed', messages: 1, object: true });
  assert.is((await reconcile(web.ctx, { now: passAt, audit: true })).missing.count, 0);

  const late = await commit(web, SENDER, { message_id: second.message_id });
  assert.is(late.status, 410, late.text);
  assert.is(late.body.error, 'UploadExpired');
  assert.equal(await outcome(second), { state: 'expired', messages: 0, object: false });
});

boundary('commits racing a pass whose clock is past the deadline: each is committed with its object or refused with nothing left', async () => {
  const uploads: Reserved[] = [];
  for (let i = 0; i < 8; i++) uploads.push(await reservedAndPut());
  const deadline = Math.min(...uploads.map((u) => new Date(u.commit_deadline).getTime()));
  const latest = Math.max(...uploads.map((u) => new Date(u.commit_deadline).getTime()));
  // The committing broker's clock reads the deadline (still in time); the reconciler's reads past
  // deadline + margin (clock skew beyond the margin): only the row lock keeps them apart.
  web.clock.set(deadline);
  const [statuses, report] = await Promise.all([
    Promise.all(uploads.map((u) => commit(web, SENDER, { message_id: u.message_id }).then((x) => x.status))),
    reconcile(web.ctx, { now: new Date(latest + EXPIRY_MARGIN_MS + 1) }),
  ]);
  let committed = 0;
  for (const [i, u] of uploads.entries()) {
    const o = await outcome(u);
    if (statuses[i] === 201) {
      committed++;
      assert.equal(o, { state: 'committed', messages: 1, object: true }, `upload ${i}`);
    } else {
      // 410 whether the commit read the row already expired or read it pending and its HEAD came
      // after the pass deleted the object (the pass marks the row before it deletes). Nothing written.
      assert.is(statuses[i], 410, `upload ${i}`);
      assert.equal(o, { state: 'expired', messages: 0, object: false }, `upload ${i}`);
    }
  }
  assert.is(report.expiredUploads.count, uploads.length - committed);
  const again = await reconcile(web.ctx, { now: new Date(latest + EXPIRY_MARGIN_MS + 1) });
  const audit = await reconcile(web.ctx, { now: new Date(latest + EXPIRY_MARGIN_MS + 1), audit: true });
  assert.is(audit.missing.count, 0, 'no message row without its object');
  assert.is(again.expiredUploads.count + again.cleanedUploads.count + audit.strays.count, 0);
});

boundary.run();
