// Live upload progress in Node: the PUT body is a stream that counts what the connection takes,
// so a single large PUT reports as it goes instead of 0 → 100 %.
import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Progress } from '../src/client/index.js';
import { clientFor, recordingFetch, sameBytes } from './helpers/client.js';
import { setMembers } from './helpers/flow.js';
import { startTestApp, type TestApp } from './helpers/harness.js';
import { did } from './helpers/tokens.js';

const test = suite('client: live upload progress in Node');
const MIB = 1024 * 1024;
let app: TestApp;
const alice = did('alice');
const bob = did('bob');
const CONVO = 'convo-progress';

test.before(async () => {
  // 8 MiB is one PUT; larger is multipart in 5 MiB parts.
  app = await startTestApp({ env: { MULTIPART_THRESHOLD_BYTES: String(8 * MIB), PART_SIZE_BYTES: String(5 * MIB) } });
  await setMembers(app, CONVO, [alice, bob]);
});
test.after(() => app.close());

/** Starts at 0, ends at the total, never goes back, and no step is larger than `maxStep`. */
function assertSteady(progress: Progress[], total: number, maxStep: number): void {
  const sent = progress.map((p) => p.sent);
  assert.ok(progress.every((p) => p.total === total));
  assert.is(sent[0], 0);
  assert.is(sent[sent.length - 1], total);
  for (let i = 1; i < sent.length; i++) {
    assert.ok(sent[i]! > sent[i - 1]!, `progress moves forward and repeats nothing: ${sent[i - 1]} then ${sent[i]}`);
    assert.ok(sent[i]! - sent[i - 1]! <= maxStep, `a step of ${sent[i]! - sent[i - 1]!} bytes`);
  }
}

test('a single 8 MiB PUT reports progress at least every MiB while it sends', async () => {
  const data = randomBytes(8 * MIB);
  const progress: Progress[] = [];
  const done = await clientFor(app, alice).upload(CONVO, data, { recipients: [bob], onProgress: (p) => progress.push(p) });
  assertSteady(progress, data.length, MIB);
  assert.ok(progress.length >= 8, `${progress.length} progress events`);
  assert.ok(sameBytes((await clientFor(app, bob).fetchMessage(done.message_id)).data, data));
});

test('a multipart Blob reports within its parts too', async () => {
  const data = randomBytes(12 * MIB);
  const progress: Progress[] = [];
  const done = await clientFor(app, alice).upload(CONVO, new Blob([data]), { recipients: [bob], onProgress: (p) => progress.push(p) });
  // Parts in flight report together; the last report of a part and its completion add at most 1 MiB.
  assertSteady(progress, data.length, MIB);
  assert.ok(progress.length >= 12, `${progress.length} progress events`);
  assert.ok(sameBytes((await clientFor(app, bob).fetchMessage(done.message_id)).data, data));
});

test('a PUT that fails halfway is sent again, and progress does not go back', async () => {
  const data = randomBytes(4 * MIB);
  const rec = recordingFetch(app);
  let failed = false;
  rec.intercept = async ({ target, init }) => {
    if (target !== 'store' || failed) return undefined;
    failed = true;
    // The connection takes half of the body, then breaks.
    const reader = (init!.body as ReadableStream<Uint8Array>).getReader();
    for (let taken = 0; taken < 2 * MIB; ) taken += (await reader.read()).value!.length;
    await reader.cancel();
    return new TypeError('fetch failed');
  };
  const progress: Progress[] = [];
  const done = await clientFor(app, alice, { fetch: rec.fetch }).upload(CONVO, data, { recipients: [bob], onProgress: (p) => progress.push(p) });
  assertSteady(progress, data.length, MIB);
  assert.ok(progress.some((p) => p.sent >= MIB && p.sent < 2 * MIB), 'the broken attempt reported');
  assert.equal(rec.calls.filter((c) => c.target === 'store').map((c) => c.status), [-1, 200]);
  assert.ok(sameBytes((await clientFor(app, bob).fetchMessage(done.message_id)).data, data));
});

test('without a progress listener the body is sent as it is, not as a stream', async () => {
  const data = randomBytes(1000);
  const rec = recordingFetch(app);
  let body: unknown;
  rec.intercept = ({ target, init }) => {
    if (target === 'store') body = init?.body;
    return undefined;
  };
  await clientFor(app, alice, { fetch: rec.fetch }).upload(CONVO, data, { recipients: [bob] });
  assert.instance(body, Uint8Array);
});

test.run();
