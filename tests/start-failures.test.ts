// `npm start` when an embedded service cannot start. PostgreSQL and the R2 emulator start side by
// side while the broker loads its modules (scripts/bench/NOTES.md, "Round 3: cold start"), and the
// migrations run as soon as PostgreSQL answers, while the emulator may still be starting (round 5):
// whichever fails must still end the start with its own reason and exit code 1, and leave nothing
// running.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/config.js';
import { resolveDevServices } from '../src/dev/embedded.js';
import { createLogger } from '../src/log.js';
import { childEnv, descendants, isAlive } from './helpers/processes.js';

const test = suite('npm start: a part that cannot start');
const dirs: string[] = [];

/** A fresh DATA_DIR (its own temporary directory: PostgreSQL runs as another user and must reach it). */
async function dataDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'broker-start-fail-'));
  dirs.push(dir);
  return dir;
}

test.after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const comm = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};

/**
 * Runs src/main.ts on `dataDir` to its end; meanwhile notes every postgres and workerd process it
 * starts, to check afterwards that none outlives it.
 */
async function runBroker(dataDir: string, env: Record<string, string> = {}): Promise<{ code: number | null; lines: string[]; started: Map<number, string> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: childEnv({ DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'info', RECONCILE_CRON: 'off', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const started = new Map<number, string>();
  const watch = setInterval(() => {
    for (const pid of descendants(child.pid!)) {
      const name = comm(pid);
      if (name === 'postgres' || name === 'workerd') started.set(pid, name);
    }
  }, 25);
  const timeout = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearInterval(watch);
  clearTimeout(timeout);
  await new Promise((r) => setTimeout(r, 200));
  return { code, lines: out.split('\n').filter((l) => l !== ''), started };
}

const fatal = (lines: string[]): { msg?: string; err?: { message?: string } } | undefined =>
  lines
    .map((l) => {
      try {
        return JSON.parse(l) as { level?: number; msg?: string; err?: { message?: string } };
      } catch {
        return null;
      }
    })
    .find((l) => l?.level === 60) ?? undefined;

/** A data directory whose PostgreSQL cannot start: a PG_VERSION without the cluster's files. */
async function brokenPostgres(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'postgres'), { recursive: true });
  await writeFile(path.join(dir, 'postgres', 'PG_VERSION'), '18\n');
}

/** A data directory whose emulator cannot start: its storage directory is a file. */
async function brokenEmulator(dir: string): Promise<void> {
  await writeFile(path.join(dir, 'r2'), 'not a directory');
}

test('PostgreSQL cannot start: its reason, exit code 1, and the emulator started beside it is stopped', async () => {
  const dir = await dataDir();
  await brokenPostgres(dir);
  const r = await runBroker(dir);
  assert.is(r.code, 1, r.lines.join('\n'));
  const line = fatal(r.lines);
  assert.is(line?.msg, 'start failed', r.lines.join('\n'));
  assert.match(String(line?.err?.message), /embedded PostgreSQL in .* did not start: .*postgresql\.conf/);
  assert.ok([...r.started.values()].includes('workerd'), 'the emulator was starting beside PostgreSQL');
  assert.equal([...r.started.keys()].filter(isAlive), [], 'nothing it started is left running');
});

test('the emulator cannot start: its reason, exit code 1, and the PostgreSQL started beside it is stopped', async () => {
  const dir = await dataDir();
  await brokenEmulator(dir);
  const r = await runBroker(dir);
  assert.is(r.code, 1, r.lines.join('\n'));
  const line = fatal(r.lines);
  assert.is(line?.msg, 'start failed', r.lines.join('\n'));
  assert.match(String(line?.err?.message), /EEXIST.*r2/);
  assert.ok([...r.started.values()].includes('postgres'), 'PostgreSQL was starting beside the emulator');
  assert.equal([...r.started.keys()].filter(isAlive), [], 'nothing it started is left running');
});

test('both cannot start: PostgreSQL’s reason is the one given, exit code 1', async () => {
  const dir = await dataDir();
  await brokenPostgres(dir);
  await brokenEmulator(dir);
  const r = await runBroker(dir);
  assert.is(r.code, 1, r.lines.join('\n'));
  assert.match(String(fatal(r.lines)?.err?.message), /embedded PostgreSQL in .* did not start/);
  assert.equal([...r.started.keys()].filter(isAlive), []);
});

test('the migrations check fails once PostgreSQL answers (a new database, MIGRATE_ON_START=false): its reason, exit code 1, the emulator stopped', async () => {
  const dir = await dataDir();
  const r = await runBroker(dir, { MIGRATE_ON_START: 'false' });
  assert.is(r.code, 1, r.lines.join('\n'));
  const line = fatal(r.lines);
  assert.is(line?.msg, 'start failed', r.lines.join('\n'));
  assert.match(String(line?.err?.message), /the database lacks migrations 00001_init\.sql/);
  assert.ok([...r.started.values()].includes('workerd'), 'the emulator was starting beside PostgreSQL');
  assert.ok([...r.started.values()].includes('postgres'));
  assert.equal([...r.started.keys()].filter(isAlive), [], 'nothing it started is left running');
});

test('the emulator cannot start and the migrations check fails: the emulator’s reason (a part’s own failure comes first), exit code 1', async () => {
  const dir = await dataDir();
  await brokenEmulator(dir);
  const r = await runBroker(dir, { MIGRATE_ON_START: 'false' });
  assert.is(r.code, 1, r.lines.join('\n'));
  assert.match(String(fatal(r.lines)?.err?.message), /EEXIST.*r2/);
  assert.equal([...r.started.keys()].filter(isAlive), [], 'nothing it started is left running');
});

const external = (dir: string) =>
  loadConfig({ DATA_DIR: dir, DATABASE_URL: 'postgres://u:p@127.0.0.1:9/none', R2_ENDPOINT: 'http://127.0.0.1:9', R2_ACCESS_KEY_ID: 'k', R2_SECRET_ACCESS_KEY: 's', JWT_SECRET: 'k'.repeat(40) });

test('the work on the database gets DATABASE_URL at once, and the services wait for it', async () => {
  const config = external(await dataDir());
  const seen: string[] = [];
  let release!: () => void;
  const resolved = resolveDevServices(config, createLogger('silent'), {
    share: true,
    onDatabase: (url) => {
      seen.push(url);
      return new Promise<void>((r) => (release = r));
    },
  });
  let done = false;
  void resolved.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(seen, ['postgres://u:p@127.0.0.1:9/none']);
  assert.is(done, false, 'not resolved before the work on the database');
  release();
  const dev = await resolved;
  assert.is(dev.databaseUrl, 'postgres://u:p@127.0.0.1:9/none');
});

test('the work on the database fails: the services fail with its reason', async () => {
  const config = external(await dataDir());
  const failing = resolveDevServices(config, createLogger('silent'), { share: true, onDatabase: async () => Promise.reject(new Error('schema step refused')) });
  await failing.then(
    () => assert.unreachable('resolved'),
    (err: Error) => assert.is(err.message, 'schema step refused'),
  );
});

test.run();
