// Cold start: `npm start` (fully embedded: PostgreSQL and the R2 emulator under a fresh DATA_DIR)
// until /readyz answers 200, first start (initdb, migrations) and restart (same DATA_DIR),
// against the embedded parts' own start (scripts/bench/embedded-start.ts) in the same run.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnUntil } from '../../tests/helpers/processes.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

export interface ColdStart {
  /** Seconds to build npm start's bundle from scratch, as the first start after a change to src/ does. */
  bundleSeconds: number;
  brokerFirst: number;
  brokerRestart: number;
  partsFirst: number;
  partsRestart: number;
}

type Started = { seconds: number; child: ChildProcess };

/**
 * Spawns, waits until a line says `ready`, then for `then` (a readiness probe); returns the seconds
 * since spawn and the child.
 */
async function startUntil<T>(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  ready: (line: string) => T | undefined,
  then: (found: T) => Promise<void> = async () => {},
): Promise<Started> {
  const t = performance.now();
  // A process group of its own: `npm start` runs the broker under npm and a shell, and a signal to
  // npm alone would leave the broker (and its PostgreSQL) running.
  const { child, found } = await spawnUntil(cmd, args, { cwd: root, env, ready, detached: true, timeoutMs: 120_000 });
  try {
    await then(found);
  } catch (err) {
    process.kill(-child.pid!, 'SIGTERM');
    throw err;
  }
  return { seconds: (performance.now() - t) / 1000, child };
}

/** SIGTERM to the whole group; then waits until its PostgreSQL has let go of the data directory. */
async function stop(child: ChildProcess, dir: string): Promise<void> {
  const exited = once(child, 'exit');
  process.kill(-child.pid!, 'SIGTERM');
  await exited;
  for (let i = 0; i < 300 && (groupAlive(child.pid!) || existsSync(path.join(dir, 'postgres', 'postmaster.pid'))); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls /readyz until 200 (the broker is listening once it prints its URL). */
async function readyz(url: string): Promise<void> {
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
    const res = await fetch(`${url}/readyz`).catch(() => null);
    if (res?.status === 200) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${url}/readyz did not answer 200 in 120 s`);
}

async function npmStart(dir: string): Promise<Started> {
  const env = { DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', RECONCILE_CRON: 'off' };
  return startUntil('npm', ['start', '--silent'], env, (line) => /listening on (http:\/\/[0-9.]+:\d+)/.exec(line)?.[1], readyz);
}

async function partsStart(dir: string): Promise<Started> {
  return startUntil(process.execPath, ['--import', 'tsx', path.join(here, 'embedded-start.ts'), dir], {}, (line) => (line === 'ready' ? true : undefined));
}

export async function coldStart(log: (s: string) => void): Promise<ColdStart> {
  const brokerDir = await mkdtemp(path.join(tmpdir(), 'bench-start-'));
  const partsDir = await mkdtemp(path.join(tmpdir(), 'bench-parts-'));
  const buildDir = await mkdtemp(path.join(tmpdir(), 'bench-bundle-'));
  try {
    // npm start's bundle (scripts/bundle.mjs): made current first, so that both starts below measure
    // a start; what a build adds to the first start after a change is measured on its own.
    const { bundledEntry } = (await import(pathToFileURL(path.join(root, 'scripts', 'bundle.mjs')).href)) as {
      bundledEntry(root: string, entry: string, cacheDir?: string): Promise<{ file: string; built: boolean }>;
    };
    await bundledEntry(root, 'src/main.ts');
    const b0 = performance.now();
    await bundledEntry(root, 'src/main.ts', buildDir);
    const bundleSeconds = (performance.now() - b0) / 1000;
    const times: number[] = [];
    // Parts and broker alternate, so both see the machine in the same state.
    for (const [fn, dir] of [[partsStart, partsDir], [npmStart, brokerDir], [partsStart, partsDir], [npmStart, brokerDir]] as const) {
      const s = await fn(dir);
      times.push(s.seconds);
      await stop(s.child, dir);
    }
    const [partsFirst, brokerFirst, partsRestart, brokerRestart] = times as [number, number, number, number];
    log(`cold start: npm start ${brokerFirst.toFixed(2)} s first, ${brokerRestart.toFixed(2)} s restart; embedded parts ${partsFirst.toFixed(2)} s / ${partsRestart.toFixed(2)} s; building the bundle ${bundleSeconds.toFixed(2)} s`);
    return { bundleSeconds, brokerFirst, brokerRestart, partsFirst, partsRestart };
  } finally {
    await rm(buildDir, { recursive: true, force: true });
    await rm(brokerDir, { recursive: true, force: true });
    await rm(partsDir, { recursive: true, force: true });
  }
}
