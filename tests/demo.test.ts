// npm run demo: a real MLS conversation (ts-mls) through the broker, against a running broker
// (BROKER_URL) and on a broker the demo starts itself; any failure exits non-zero.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runScript } from './helpers/processes.js';
import { startTestApp, TEST_SECRET, TEST_SERVICE, type TestApp } from './helpers/harness.js';

const test = suite('npm run demo: an MLS conversation through the broker');
let app: TestApp;

test.before(async () => {
  app = await startTestApp();
});
test.after(() => app.close());

const clientEnv = () => ({ NODE_ENV: 'test', JWT_SECRET: TEST_SECRET, SERVICE_DIDS: TEST_SERVICE, LOG_LEVEL: 'silent' });

test('against a running broker: Welcome, application message and commit go through as ciphertext, all delivered', async () => {
  const run = await runScript('scripts/demo.ts', [], { ...clientEnv(), BROKER_URL: app.url });
  assert.is(run.code, 0, run.stderr + run.stdout);
  for (const line of [/Alice creates MLS group/, /Bob joins the group from the Welcome: epoch 1/, /Bob decrypts Alice's application message: "Hello Bob/, /Bob processes the commit: epoch 2, like Alice/, /Carol joins from her Welcome: epoch 2/, /Carol: downloaded, verified, decrypted "Welcome, Carol\."/]) {
    assert.match(run.stdout, line);
  }
  const convo = /conversation (demo-[0-9a-f]+)/.exec(run.stdout)![1]!;
  const rows = await app.ctx.sql<{ id: string; blob_key: string; kind: string; pending: number }[]>`
    select m.id, m.blob_key, m.metadata->>'kind' as kind,
           (select count(*)::int from message_recipients r where r.message_id = m.id and not r.delivered) as pending
    from messages m where m.convo_id = ${convo} order by m.id`;
  assert.equal(rows.map((r) => r.kind), ['welcome', 'application', 'commit', 'welcome', 'application']);
  assert.ok(rows.every((r) => r.pending === 0), 'every recipient acknowledged');
  const types = await app.ctx.sql<{ content_type: string }[]>`select distinct content_type from uploads where convo_id = ${convo}`;
  assert.equal(types.map((t) => t.content_type), ['message/mls']);
  // The bucket holds ciphertext only: no plaintext of the conversation appears in any object.
  for (const r of rows) {
    const url = (await app.ctx.store.presignGet({ key: r.blob_key, now: new Date(), expiresIn: 60 })).url;
    const bytes = Buffer.from(await (await fetch(url)).arrayBuffer());
    assert.ok(bytes.length > 0);
    assert.not.ok(bytes.includes('Hello Bob') || bytes.includes('Welcome, Carol'), `object of ${r.kind} ${r.id} holds plaintext`);
  }
});

test('without BROKER_URL it starts the embedded parts itself and stops them', async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'broker-demo-'));
  try {
    const run = await runScript('scripts/demo.ts', [], { NODE_ENV: 'development', DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
    assert.is(run.code, 0, run.stderr + run.stdout);
    assert.match(run.stdout, /broker http:\/\/127\.0\.0\.1:\d+/);
    assert.match(run.stdout, /done: every MLS message went through the broker/);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('a failure exits non-zero with one line', async () => {
  const run = await runScript('scripts/demo.ts', [], { ...clientEnv(), BROKER_URL: 'http://127.0.0.1:9' });
  assert.is(run.code, 1);
  assert.match(run.stderr, /^demo failed: /);
  const bad = await runScript('scripts/demo.ts', [], { ...clientEnv(), BROKER_URL: 'ftp://example' });
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /BROKER_URL must be http/);
});

test.run();
