// `npm start` with no environment: embedded PostgreSQL and R2 emulator, ready, clean shutdown.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startBroker, type BrokerProcess } from './helpers/broker-process.js';
import { testEnv } from './helpers/harness.js';
import { descendants, isAlive, runScript } from './helpers/processes.js';

const test = suite('npm start as a child process');
let dataDir: string;

/** `npm start`'s entry point with DATA_DIR and `extra` only. */
const start = (dir: string, extra: Record<string, string> = {}): Promise<BrokerProcess> => startBroker({ DATA_DIR: dir, ...extra });

async function stop(s: BrokerProcess, signal: NodeJS.Signals): Promise<{ code: number | null; ms: number; leftovers: number[] }> {
  const tree = descendants(s.child.pid!);
  const t0 = Date.now();
  s.child.kill(signal);
  const code = await Promise.race([s.exited, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
  const ms = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 200));
  return { code, ms, leftovers: tree.filter(isAlive) };
}

test.before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'broker-start-'));
});
test.after(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

test('starts on embedded defaults, is ready, and stops cleanly on SIGTERM', async () => {
  const s = await start(dataDir);
  assert.ok(s.lines.some((l) => l.includes('embedded PostgreSQL on 127.0.0.1:')), 'says where PostgreSQL runs');
  assert.ok(s.lines.some((l) => l.includes('local R2 emulator at http://127.0.0.1:')), 'says where the emulator runs');
  assert.ok(s.lines.some((l) => l.includes('00001_init.sql')), 'applies migrations');
  const health = await fetch(`${s.url}/healthz`);
  assert.is(health.status, 200);
  const ready = await fetch(`${s.url}/readyz`);
  assert.is(ready.status, 200, await ready.text());
  const tree = descendants(s.child.pid!);
  assert.ok(tree.length >= 2, `expected postgres and workerd children, got ${tree.length}`);
  const r = await stop(s, 'SIGTERM');
  assert.is(r.code, 0, s.lines.slice(-5).join('\n'));
  assert.ok(r.ms < 5000, `took ${r.ms} ms`);
  assert.equal(r.leftovers, [], 'no postgres or workerd process is left behind');
});

test('a signal to its whole process group (Ctrl-C on a terminal) stops it as cleanly, within 5 s', async () => {
  // The embedded PostgreSQL and the emulator get the signal too, and may be gone before the broker
  // stops them: stopping one that already exited must not wait for an exit that already happened.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const s = await startBroker({ DATA_DIR: dataDir }, { detached: true });
    const tree = descendants(s.child.pid!);
    const t0 = Date.now();
    process.kill(-s.child.pid!, signal);
    const code = await Promise.race([s.exited, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
    const ms = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 200));
    assert.is(code, 0, `${signal}: ${s.lines.slice(-5).join('\n')}`);
    assert.ok(ms < 5000, `${signal}: took ${ms} ms`);
    assert.not.ok(s.lines.some((l) => l.includes('shutdown took too long')), signal);
    assert.equal(tree.filter(isAlive), [], `${signal}: no postgres or workerd process is left behind`);
  }
});

test('SIGTERM lets an in-flight request finish before the process exits', async () => {
  const s = await start(dataDir);
  const { connect } = await import('node:net');
  const url = new URL(s.url);
  const socket = connect(Number(url.port), url.hostname);
  await new Promise((r) => socket.once('connect', r));
  let answer = '';
  socket.on('data', (c) => (answer += c.toString()));
  const body = JSON.stringify({ message_ids: ['0190b2a4-7c1e-7000-8000-000000000001'] });
  // Headers and half the body now; the rest after the signal.
  socket.write(`POST /api/v1/messages/ack HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
  await new Promise((r) => setTimeout(r, 200));
  const exited = new Promise<number | null>((r) => s.child.once('exit', (code) => r(code)));
  s.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  socket.write(body.slice(10));
  const code = await exited;
  socket.destroy();
  assert.match(answer, /^HTTP\/1\.1 401 /, 'the request was answered (it has no token) before the exit');
  assert.match(answer, /AuthRequired/);
  assert.is(code, 0);
});

test('npm run reconcile joins a running npm start: same embedded database and bucket', async () => {
  // No scheduled pass: one falling on a ten-minute tick would hold the lease and the CLI's would skip.
  const s = await start(dataDir, { RECONCILE_CRON: 'off' });
  try {
    const { DEV_JWT_SECRET, DEV_SERVICE_DID } = await import('../src/config.js');
    const { mintToken, did } = await import('./helpers/tokens.js');
    const alice = did('alice');
    const call = async (method: string, p: string, as: string, body: unknown) =>
      fetch(`${s.url}${p}`, {
        method,
        headers: { authorization: `Bearer ${await mintToken(DEV_JWT_SECRET, as)}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    assert.is((await call('PUT', '/api/v1/convos/joined/members', DEV_SERVICE_DID, { members: [alice] })).status, 200);
    const reserved = await call('POST', '/api/v1/uploads', alice, { convo_id: 'joined', size: 4, md5: 'AAAAAAAAAAAAAAAAAAAAAA==' });
    assert.is(reserved.status, 201);
    const { commit_deadline: deadline } = (await reserved.json()) as { commit_deadline: string };
    const later = new Date(new Date(deadline).getTime() + 3600_000).toISOString();
    const r = await runScript('scripts/reconcile.ts', ['--dry-run', '--json', '--now', later], { DATA_DIR: dataDir });
    assert.is(r.code, 0, r.stderr);
    assert.is(JSON.parse(r.stdout).expiredUploads.count, 1, 'it saw the upload the running broker reserved');
  } finally {
    const r = await stop(s, 'SIGTERM');
    assert.is(r.code, 0);
  }
});

test('a second start finds the data of the first and SIGINT stops it cleanly', async () => {
  const s = await start(dataDir);
  assert.not.ok(s.lines.some((l) => l.includes('migrations applied')), 'nothing to migrate the second time');
  const ready = await fetch(`${s.url}/readyz`);
  assert.is(ready.status, 200);
  const r = await stop(s, 'SIGINT');
  assert.is(r.code, 0);
  assert.ok(r.ms < 5000, `took ${r.ms} ms`);
  assert.equal(r.leftovers, []);
});

test('after a broker is killed (SIGKILL), the next start stops its orphaned PostgreSQL and emulator', async () => {
  const first = await start(dataDir);
  const orphans = descendants(first.child.pid!).filter((pid) => {
    try {
      return /postgres|workerd/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
    } catch {
      return false;
    }
  });
  assert.ok(orphans.length >= 2, 'postgres and workerd were running');
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  assert.ok(orphans.some(isAlive), 'a SIGKILL leaves them running');
  const second = await start(dataDir);
  assert.ok(second.lines.some((l) => l.includes('left running by an earlier broker')));
  assert.equal(orphans.filter(isAlive), [], 'the orphans are gone');
  assert.is((await fetch(`${second.url}/readyz`)).status, 200);
  const r = await stop(second, 'SIGTERM');
  assert.is(r.code, 0);
  assert.equal(r.leftovers, []);
});

test('with DATABASE_URL and R2_ENDPOINT set, nothing embedded starts', async () => {
  const env = await testEnv({ LOG_LEVEL: 'info' });
  const s = await start(path.join(dataDir, 'unused'), env);
  assert.not.ok(s.lines.some((l) => l.includes('embedded PostgreSQL') || l.includes('local R2 emulator')), s.lines.join('\n'));
  const ready = await fetch(`${s.url}/readyz`);
  assert.is(ready.status, 200);
  const commands = descendants(s.child.pid!).map((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      return '';
    }
  });
  assert.not.ok(commands.some((c) => /postgres|workerd/.test(c)), commands.join('\n'));
  assert.not.ok(existsSync(path.join(dataDir, 'unused', 'embedded.json')));
  const r = await stop(s, 'SIGTERM');
  assert.is(r.code, 0);
});

test('a configuration error exits non-zero with every problem listed', async () => {
  const r = await runScript('src/main.ts', [], { NODE_ENV: 'production', PORT: 'x' });
  assert.is(r.code, 2);
  for (const name of ['PORT', 'DATABASE_URL', 'R2_ENDPOINT', 'JWT']) assert.ok(r.stderr.includes(name), r.stderr);
});

test.run();
