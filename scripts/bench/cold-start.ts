// Cold start: `npm start` (fully embedded: PostgreSQL and the R2 emulator under a fresh DATA_DIR)
// until /readyz answers 200, first start (initdb, migrations) and restart (same DATA_DIR),
// against the embedded parts' own start (scripts/bench/embedded-start.ts) in the same run.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

export interface ColdStart {
  brokerFirst: number;
  brokerRestart: number;
  partsFirst: number;
  partsRestart: number;
}

/** The child's environment: only what a user's shell would have, plus `extra`. */
function env(extra: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...extra };
}

/** Spawns, waits for `ready(line)` on its output, returns seconds since spawn and the child. */
async function startUntil(cmd: string, args: string[], e: Record<string, string>, ready: (line: string) => Promise<boolean>): Promise<{ seconds: number; child: ChildProcess }> {
  const t = performance.now();
  // A process group of its own: `npm start` runs the broker under npm and a shell, and a signal to
  // npm alone would leave the broker (and its PostgreSQL) running.
  const child = spawn(cmd, args, { cwd: root, env: env(e), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const lines: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(-child.pid!, 'SIGTERM');
      reject(new Error(`not ready in 120 s:\n${lines.slice(-20).join('\n')}`));
    }, 120_000);
    let buffered = '';
    let done = false;
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      let i;
      while ((i = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        lines.push(line);
        if (done) continue;
        void ready(line).then((ok) => {
          if (ok && !done) {
            done = true;
            clearTimeout(timer);
            resolve();
          }
        }, reject);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!done) reject(new Error(`${cmd} exited with ${code}:\n${lines.slice(-20).join('\n')}`));
    });
  });
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
async function readyz(url: string): Promise<boolean> {
  for (;;) {
    const res = await fetch(`${url}/readyz`).catch(() => null);
    if (res?.status === 200) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function npmStart(dir: string): Promise<{ seconds: number; child: ChildProcess }> {
  return startUntil('npm', ['start', '--silent'], { DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', RECONCILE_CRON: 'off' }, async (line) => {
    const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(line);
    return m ? readyz(m[1]!) : false;
  });
}

async function partsStart(dir: string): Promise<{ seconds: number; child: ChildProcess }> {
  return startUntil(process.execPath, ['--import', 'tsx', path.join(here, 'embedded-start.ts'), dir], {}, async (line) => line === 'ready');
}

export async function coldStart(log: (s: string) => void): Promise<ColdStart> {
  const brokerDir = await mkdtemp(path.join(tmpdir(), 'bench-start-'));
  const partsDir = await mkdtemp(path.join(tmpdir(), 'bench-parts-'));
  try {
    const times: number[] = [];
    // Parts and broker alternate, so both see the machine in the same state.
    for (const [fn, dir] of [[partsStart, partsDir], [npmStart, brokerDir], [partsStart, partsDir], [npmStart, brokerDir]] as const) {
      const s = await fn(dir);
      times.push(s.seconds);
      await stop(s.child, dir);
    }
    const [partsFirst, brokerFirst, partsRestart, brokerRestart] = times as [number, number, number, number];
    log(`cold start: npm start ${brokerFirst.toFixed(2)} s first, ${brokerRestart.toFixed(2)} s restart; embedded parts ${partsFirst.toFixed(2)} s / ${partsRestart.toFixed(2)} s`);
    return { brokerFirst, brokerRestart, partsFirst, partsRestart };
  } finally {
    await rm(brokerDir, { recursive: true, force: true });
    await rm(partsDir, { recursive: true, force: true });
  }
}
