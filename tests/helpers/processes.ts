import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Every live descendant of a process, from /proc (Linux). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // the process ended while we looked
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(stat); // a zombie has exited
  } catch {
    return false;
  }
}

export interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a TypeScript entry point (a script, or src/main.ts) to its end with only `env` set. */
export function runScript(file: string, args: string[], env: Record<string, string>): Promise<ScriptResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

/** The environment a child gets: only what a user's shell would have, plus `env`. */
export const childEnv = (env: Record<string, string>): Record<string, string> => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env });

export interface Running<T> {
  child: ChildProcess;
  /** Its stdout and stderr, line by line, as they come (the first 2000 lines). */
  lines: string[];
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  exited: Promise<number | null>;
  /** What `ready` found in the line that said the process was ready. */
  found: T;
}

export interface SpawnUntilOptions<T> {
  /** The child's environment, besides PATH and HOME. */
  env: Record<string, string>;
  /** What a line of its output says: a value once the process is ready, else undefined. */
  ready: (line: string) => T | undefined;
  cwd?: string;
  /** A process group of its own, signalled as a whole (for `npm start`: npm, a shell, the broker). */
  detached?: boolean;
  timeoutMs?: number;
}

/**
 * Starts a process and resolves once a line of its output says it is ready. Rejects, with what it
 * printed, when it exits first or is not ready within the timeout (it is then killed: SIGKILL, or
 * SIGTERM to its whole group when detached, so a PostgreSQL under it can stop cleanly).
 */
export function spawnUntil<T>(cmd: string, args: string[], o: SpawnUntilOptions<T>): Promise<Running<T>> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const child = spawn(cmd, args, { cwd: o.cwd, env: childEnv(o.env), stdio: ['ignore', 'pipe', 'pipe'], detached: o.detached ?? false });
  const lines: string[] = [];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    let buffered = '';
    let done = false;
    const fail = (why: string) => {
      clearTimeout(timer);
      if (!done) reject(new Error(`${why}:\n${lines.join('\n')}${buffered}`));
      done = true;
    };
    const timer = setTimeout(() => {
      if (o.detached) process.kill(-child.pid!, 'SIGTERM');
      else child.kill('SIGKILL');
      fail(`not ready in ${timeoutMs} ms`);
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      let i;
      while ((i = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        if (lines.length < 2000) lines.push(line);
        if (done) continue;
        const found = o.ready(line);
        if (found !== undefined) {
          done = true;
          clearTimeout(timer);
          resolve({ child, lines, exited, found });
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => fail(`exited with ${code} before ready`));
  });
}
