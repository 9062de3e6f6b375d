// Three broker instances on one database and one bucket behave as one: they share nothing else.
// Two are in-process (separate AppContexts, pools, clocks and ports), one is a child process
// running src/main.ts, so that it can be stopped with a real SIGTERM in the middle of requests.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ReconcileReport } from '../src/jobs/reconcile-report.js';
import { startScheduler } from '../src/jobs/scheduler.js';
import { bytes, md5b64, putBytes, setMembers } from './helpers/flow.js';
import { startTestApp, testEnv, type TestApp } from './helpers/harness.js';
import { did, mintToken } from './helpers/tokens.js';

const test = suite('three broker instances on one database and bucket');
const alice = did('alice');
const bob = did('bob');
const carol = did('carol');
const CONVO = 'shared';
let env: Record<string, string>;
let apps: TestApp[] = [];
const logs: string[][] = [[], [], []];

test.before(async () => {
  // Every second: the scheduler test watches passes on all three; the others stop them.
  env = await testEnv({ MAX_PENDING_UPLOADS: '5', RECONCILE_CRON: '* * * * * *' });
  apps = await Promise.all(
    [0, 1, 2].map((i) =>
      startTestApp({
        sharedEnv: env,
        log: pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (logs[i]!.push(String(c)), cb()) })),
      }),
    ),
  );
  await setMembers(apps[0]!, CONVO, [alice, bob, carol]);
});
test.after(async () => {
  for (const a of apps) await a.close();
});

/** Reserves and PUTs one message from alice through `app`; returns its id. */
async function uploaded(app: TestApp): Promise<string> {
  const data = bytes(256);
  const r = await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: CONVO, size: data.length, md5: md5b64(data) } });
  assert.is(r.status, 201, r.text);
  assert.is(await putBytes(r.body.upload, data), 200);
  return r.body.message_id as string;
}

test('concurrent commits of one upload spread over the three: one 201, the rest 200 with the same body, one row set', async () => {
  const id = await uploaded(apps[0]!);
  const answers = await Promise.all(
    Array.from({ length: 12 }, (_, i) => apps[i % 3]!.call('POST', '/api/v1/messages', { as: alice, body: { message_id: id } })),
  );
  const statuses = answers.map((a) => a.status).sort();
  assert.equal(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
  for (const a of answers) assert.equal(a.body, answers[0]!.body);
  const sql = apps[1]!.ctx.sql;
  assert.is((await sql`select count(*)::int as n from messages where id = ${id}`)[0]!.n, 1);
  assert.is((await sql`select count(*)::int as n from message_recipients where message_id = ${id}`)[0]!.n, 2);
  for (const a of apps) {
    const p = await a.call('GET', '/api/v1/messages/pending', { as: bob });
    assert.ok(p.body.messages.some((m: { message_id: string }) => m.message_id === id), 'every instance offers it');
  }
});

test('the pending cap is exact across instances', async () => {
  const data = bytes(16);
  const answers = await Promise.all(
    Array.from({ length: 15 }, (_, i) =>
      apps[i % 3]!.call('POST', '/api/v1/uploads', { as: carol, body: { convo_id: CONVO, size: data.length, md5: md5b64(data) } }),
    ),
  );
  const statuses = answers.map((a) => a.status);
  assert.is(statuses.filter((s) => s === 201).length, 5, statuses.join(' '));
  assert.is(statuses.filter((s) => s === 429).length, 10, statuses.join(' '));
  const sql = apps[2]!.ctx.sql;
  assert.is((await sql`select count(*)::int as n from uploads where sender_did = ${carol}`)[0]!.n, 5);
  for (const a of apps) {
    const limits = await a.call('GET', '/api/v1/limits', { as: carol });
    assert.is(limits.status, 200, limits.text);
  }
});

test('scheduled reconciliation on all three runs one pass at a time', async () => {
  for (const l of logs) l.length = 0;
  const schedulers = apps.map((a) => startScheduler(a.ctx));
  await new Promise((r) => setTimeout(r, 4500));
  await Promise.all(schedulers.map((s) => s.stop()));
  const reports = logs.flatMap((lines, instance) =>
    lines
      .map((l) => JSON.parse(l) as { msg: string; reconcile?: ReconcileReport })
      .filter((l) => l.reconcile !== undefined)
      .map((l) => ({ instance, r: l.reconcile! })),
  );
  const ran = reports.filter((x) => x.r.skipped === null);
  assert.ok(ran.length >= 2, `passes ran: ${ran.length}`);
  for (const x of ran) assert.equal(x.r.errors, []);
  const spans = ran.map((x) => ({ instance: x.instance, from: Date.parse(x.r.startedAt!), to: Date.parse(x.r.finishedAt!) })).sort((a, b) => a.from - b.from);
  for (let i = 1; i < spans.length; i++) {
    assert.ok(spans[i]!.from >= spans[i - 1]!.to, `passes overlap: ${JSON.stringify(spans)}`);
  }
  // All three schedule; whichever takes the lease runs, the others skip that tick.
  assert.is(new Set(reports.map((x) => x.instance)).size, 3, 'all three instances scheduled passes');
});

/** src/main.ts as a child process on the shared database and bucket. */
async function startChild(): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const childEnv = { ...env, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', RECONCILE_CRON: 'off' };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening in 60 s:\n${out}`)), 60_000);
    const onData = (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`exited with ${code}:\n${out}`)));
  });
  return { child, url, exited };
}

/** A POST whose headers and first bytes go out now, and the rest when `finish` is called. */
function halfSent(url: string, path: string, token: string, body: string) {
  const u = new URL(url);
  let finish!: () => void;
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path, method: 'POST', agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.write(body.slice(0, 5));
    finish = () => req.end(body.slice(5));
  });
  return { answer, finish: () => finish() };
}

test('an instance stopped with SIGTERM mid-request loses nothing: in-flight commits finish, the rest go elsewhere', async () => {
  // Five: the pending cap of this suite (MAX_PENDING_UPLOADS=5).
  const ids = await Promise.all(Array.from({ length: 5 }, (_, i) => uploaded(apps[i % 3]!)));
  const child = await startChild();
  const token = await mintToken(env.JWT_SECRET!, alice);
  const inFlight = ids.slice(0, 3).map((id) => halfSent(child.url, '/api/v1/messages', token, JSON.stringify({ message_id: id })));
  await new Promise((r) => setTimeout(r, 300)); // the requests are being read by the child
  child.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  for (const r of inFlight) r.finish();
  const answers = await Promise.all(inFlight.map((r) => r.answer));
  assert.equal(answers.map((a) => a.status), [201, 201, 201], answers.map((a) => a.body).join('\n'));
  assert.is(await child.exited, 0);
  // New requests to the stopped instance are refused at connect; a client retries on another.
  let refused = false;
  try {
    await fetch(`${child.url}/healthz`);
  } catch {
    refused = true;
  }
  assert.ok(refused, 'the stopped instance accepts nothing');
  for (const id of ids.slice(3)) {
    const c = await apps[1]!.call('POST', '/api/v1/messages', { as: alice, body: { message_id: id } });
    assert.is(c.status, 201, c.text);
  }
  // Everything that was answered is there, once.
  const sql = apps[0]!.ctx.sql;
  const rows = await sql`select id from messages where id = any(${sql.array(ids)}::uuid[])`;
  assert.is(rows.length, 5);
  const pending = await apps[2]!.call('GET', '/api/v1/messages/pending?limit=100', { as: bob });
  for (const id of ids) assert.ok(pending.body.messages.some((m: { message_id: string }) => m.message_id === id), id);
  // Replays of the in-flight commits on another instance agree with what the stopped one answered.
  for (const [i, id] of ids.slice(0, 3).entries()) {
    const again = await apps[i % 3]!.call('POST', '/api/v1/messages', { as: alice, body: { message_id: id } });
    assert.is(again.status, 200);
    assert.equal(again.body, JSON.parse(answers[i]!.body));
  }
});

test.run();
