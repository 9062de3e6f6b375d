// Real PgBouncer and redis-server for the scale tests (Debian's `pgbouncer` and `redis-server`
// packages), each started here on a free port with its own configuration in a temp dir, and
// stopped by the test that started it. Nothing here is used by `npm test`.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../../src/dev/free-port.js';

export interface Service {
  port: number;
  /** Output so far, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** Resolves once something accepts TCP connections on the port. */
async function waitForPort(port: number, child: ChildProcess, out: () => string, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}:\n${out()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ port, host: '127.0.0.1' });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${port} after ${ms} ms:\n${out()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function run(bin: string, args: string[], port: number, dir: string): Promise<Service> {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  let text = '';
  child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  const output = () => text;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await waitForPort(port, child, output);
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface PgBouncerOptions {
  /** PostgreSQL behind it. */
  host: string;
  port: number;
  user: string;
  password: string;
  poolMode?: 'transaction' | 'session';
  /** Server connections per database: small, so that client connections share them. */
  poolSize?: number;
}

/**
 * PgBouncer in transaction mode in front of every database of the server (`*`), as a managed
 * PostgreSQL's pooler would be. `auth_type = any`: clients need no password, PgBouncer logs in
 * as the given user.
 */
export async function startPgBouncer(o: PgBouncerOptions): Promise<Service & { urlFor(database: string): string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pgbouncer-'));
  await chmod(dir, 0o755);
  const port = await freePort();
  const ini = path.join(dir, 'pgbouncer.ini');
  await writeFile(
    ini,
    [
      '[databases]',
      `* = host=${o.host} port=${o.port} user=${o.user} password=${o.password}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = any',
      `pool_mode = ${o.poolMode ?? 'transaction'}`,
      `default_pool_size = ${o.poolSize ?? 3}`,
      'max_client_conn = 1000',
      'ignore_startup_parameters = extra_float_digits,options',
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
  );
  await chmod(ini, 0o644);
  // PgBouncer refuses to run as root; -u drops to the postgres user (the one PostgreSQL runs as).
  const args = process.getuid?.() === 0 ? ['-u', 'postgres', ini] : [ini];
  const svc = await run('pgbouncer', args, port, dir);
  return {
    ...svc,
    urlFor: (database: string) => `postgres://${o.user}@127.0.0.1:${port}/${database}`,
  };
}

/** redis-server with no persistence, on a free loopback port. */
export async function startRedis(): Promise<Service & { url: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'redis-'));
  const port = await freePort();
  const svc = await run('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], port, dir);
  return { ...svc, url: `redis://127.0.0.1:${port}` };
}
