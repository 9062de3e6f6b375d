// Development defaults: with DATABASE_URL or R2_ENDPOINT unset, start (or join) an embedded
// PostgreSQL and the local R2 emulator under DATA_DIR. A running broker records where they are in
// DATA_DIR/embedded.json so that `npm run reconcile` and `npm run migrate` use the same ones.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { corsRules } from '../store/bucket-rules.js';
import type { CorsFront } from './cors-front.js';

export interface DevServices {
  databaseUrl: string;
  storeEndpoint: string;
  /** What runs embedded, for the start-up banner; empty when everything is external. */
  started: { postgres?: string; r2?: string; joined?: boolean };
  /** The CORS front before the local emulator, when this process runs one. */
  storeFront: CorsFront | null;
  stop(): Promise<void>;
}

interface RuntimeFile {
  pid: number;
  databaseUrl: string | null;
  storeEndpoint: string | null;
  /** The emulator's workerd, so a broker started after a crash can stop it. */
  emulatorPid?: number | null;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

function readRuntime(file: string): RuntimeFile | null {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as RuntimeFile;
    return typeof r.pid === 'number' && alive(r.pid) && r.pid !== process.pid ? r : null;
  } catch {
    return null;
  }
}

/** A postgres left behind by a broker that was killed holds the data directory's lock. */
async function stopOrphanPostgres(dataDir: string, log: Logger): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  log.warn({ pid }, 'stopping an embedded PostgreSQL left running by an earlier broker');
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
}

const comm = (pid: number): string | null => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
};

/** The emulator's workerd: our child process of that name (Linux /proc; null elsewhere). */
function findOwnWorkerd(): number | null {
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && stat.includes('(workerd)')) return Number(entry);
    }
  } catch {
    // no /proc
  }
  return null;
}

/**
 * A workerd left behind by a broker that was killed (its pid is in the dead broker's
 * embedded.json) keeps the emulator's files open: stop it before starting a new one.
 */
async function stopOrphanEmulator(runtimeFile: string, log: Logger): Promise<void> {
  let previous: RuntimeFile;
  try {
    previous = JSON.parse(readFileSync(runtimeFile, 'utf8')) as RuntimeFile;
  } catch {
    return;
  }
  const pid = previous.emulatorPid;
  if (typeof pid !== 'number' || alive(previous.pid) || !alive(pid) || comm(pid) !== 'workerd') return;
  log.warn({ pid }, 'stopping an R2 emulator left running by an earlier broker');
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
}

/**
 * The code of the embedded services `config` needs, as `resolveDevServices` loads it: the broker
 * waits for it before loading its own modules, which would otherwise queue ahead of it and hold
 * the services' start back (scripts/bench/NOTES.md, "Round 3: cold start").
 */
export async function loadDevServiceModules(config: Pick<Config, 'databaseUrl' | 'store'>): Promise<void> {
  await Promise.all([
    config.databaseUrl === null ? import('./embedded-postgres.js').then((m) => m.loadEmbeddedPostgres()) : null,
    // The emulator's own code loads in its thread (./r2-emulator-thread.ts), beside the broker's.
    config.store.endpoint === null ? import('./r2-emulator-thread.js') : null,
    config.store.endpoint === null ? import('./cors-front.js') : null,
  ]);
}

export interface DevServiceOptions {
  /**
   * When true (the server), record the running services for other processes; when false (CLIs),
   * join a running server's services if there is one.
   */
  share: boolean;
  /**
   * Work on the database that need not wait for the rest (the server's migrations): called with
   * its URL as soon as it answers (at once for DATABASE_URL), while the emulator may still be
   * starting. The services resolve once it has too; when it fails, the start fails as when a part
   * does: with its reason (a part's own failure comes first), after everything started is stopped.
   */
  onDatabase?: (databaseUrl: string) => Promise<void>;
}

export async function resolveDevServices(config: Config, log: Logger, options: DevServiceOptions): Promise<DevServices> {
  const needPg = config.databaseUrl === null;
  const needR2 = config.store.endpoint === null;
  if (!needPg && !needR2) {
    await options.onDatabase?.(config.databaseUrl!);
    return { databaseUrl: config.databaseUrl!, storeEndpoint: config.store.endpoint!, started: {}, storeFront: null, stop: async () => {} };
  }
  await mkdir(config.dataDir, { recursive: true });
  const runtimeFile = path.join(config.dataDir, 'embedded.json');
  const running = readRuntime(runtimeFile);
  if (running && (!needPg || running.databaseUrl) && (!needR2 || running.storeEndpoint)) {
    if (options.share) {
      throw new Error(`another broker (pid ${running.pid}) already runs the embedded services in ${config.dataDir}; stop it or set DATA_DIR`);
    }
    await options.onDatabase?.(config.databaseUrl ?? running.databaseUrl!);
    return {
      databaseUrl: config.databaseUrl ?? running.databaseUrl!,
      storeEndpoint: config.store.endpoint ?? running.storeEndpoint!,
      started: { joined: true },
      storeFront: null,
      stop: async () => {},
    };
  }

  // PostgreSQL and the emulator are independent: they start side by side (each is a child process
  // booting on its own), and a start that fails stops whatever did start before its error goes on.
  // Work on the database (onDatabase) begins once PostgreSQL answers, whether or not the emulator
  // does yet; nothing is stopped before all three have settled.
  const pgStart = needPg ? startPostgres(path.join(config.dataDir, 'postgres'), log) : Promise.resolve(null);
  const [pg, r2, onDatabase] = await Promise.allSettled([
    pgStart,
    needR2 ? startStore(config, runtimeFile, log, options) : null,
    pgStart.then((started) => options.onDatabase?.(started?.url ?? config.databaseUrl!)),
  ]);
  const stopAll = async () => {
    // The store before the database, as a broker's close stops its clients: front, emulator, PostgreSQL.
    const stops = [r2.status === 'fulfilled' ? r2.value?.stop : undefined, pg.status === 'fulfilled' ? pg.value?.stop : undefined];
    for (const stop of stops) await stop?.().catch((err) => log.warn({ err }, 'stopping an embedded service failed'));
    if (options.share) await rm(runtimeFile, { force: true });
  };
  try {
    // PostgreSQL's failure is reported when both fail, as when they started one after the other;
    // a part's own failure before that of the work on the database.
    if (pg.status === 'rejected') throw pg.reason;
    if (r2.status === 'rejected') throw r2.reason;
    if (onDatabase.status === 'rejected') throw onDatabase.reason;
    const databaseUrl = pg.value?.url ?? config.databaseUrl!;
    const storeEndpoint = r2.value?.front.endpoint ?? config.store.endpoint!;
    const started: DevServices['started'] = {};
    if (pg.value) started.postgres = `embedded PostgreSQL on 127.0.0.1:${pg.value.port}, data in ${pg.value.dataDir}`;
    if (r2.value) {
      started.r2 = `local R2 emulator at ${storeEndpoint} (bucket ${config.store.bucket}; CORS as on R2 for CORS_ORIGINS and the broker's own origin), data in ${r2.value.dir}`;
    }
    if (options.share) {
      const runtime: RuntimeFile = {
        pid: process.pid,
        databaseUrl: needPg ? databaseUrl : null,
        storeEndpoint: needR2 ? storeEndpoint : null,
        emulatorPid: needR2 ? findOwnWorkerd() : null,
      };
      await writeFile(runtimeFile, JSON.stringify(runtime, null, 2), { mode: 0o600 });
    }
    return { databaseUrl, storeEndpoint, started, storeFront: r2.value?.front ?? null, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The embedded PostgreSQL under `pgDir`, after stopping one an earlier broker left running there. */
async function startPostgres(pgDir: string, log: Logger) {
  await stopOrphanPostgres(pgDir, log);
  const { startEmbeddedPostgres } = await import('./embedded-postgres.js');
  return startEmbeddedPostgres(pgDir, { onLog: (line) => log.trace({ postgres: line }) });
}

/** The local R2 emulator and the CORS front before it; stopping it stops both. */
async function startStore(config: Config, runtimeFile: string, log: Logger, options: DevServiceOptions) {
  const dir = path.join(config.dataDir, 'r2');
  if (options.share) await stopOrphanEmulator(runtimeFile, log);
  const { startR2EmulatorThread } = await import('./r2-emulator-thread.js');
  const r2 = await startR2EmulatorThread({
    persistDir: dir,
    buckets: [config.store.bucket],
    accessKeyId: config.store.accessKeyId,
    secretAccessKey: config.store.secretAccessKey,
  });
  // Started from a thread, miniflare's own exit hook (which kills workerd when the process exits) runs
  // only if that thread is stopped first: a process ending without stopping it (the shutdown deadline)
  // kills workerd here instead.
  const workerd = findOwnWorkerd();
  const killOnExit = () => {
    try {
      if (workerd !== null && comm(workerd) === 'workerd') process.kill(workerd, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', killOnExit);
  let front: CorsFront;
  try {
    // Browsers reach the emulator through a front that answers CORS as R2 does with setup-bucket's rules.
    const { startCorsFront } = await import('./cors-front.js');
    front = await startCorsFront({ emulatorEndpoint: r2.endpoint, rules: corsRules(config) });
  } catch (err) {
    process.off('exit', killOnExit);
    await r2.stop().catch(() => {});
    throw err;
  }
  const stop = async () => {
    await front.stop().catch((err) => log.warn({ err }, 'stopping the CORS front failed'));
    process.off('exit', killOnExit);
    await r2.stop();
  };
  return { dir, front, stop };
}

/** The origins a browser may use for a broker listening on host:port (every loopback name for a loopback host). */
export function brokerOrigins(host: string, port: number): string[] {
  const loopback = ['127.0.0.1', 'localhost', '::1', '0.0.0.0', '::'].includes(host);
  const hosts = loopback ? ['127.0.0.1', 'localhost', '[::1]'] : [host.includes(':') ? `[${host}]` : host];
  return hosts.map((h) => `http://${h}:${port}`);
}

/** The bucket's CORS rules for CORS_ORIGINS plus the broker's own origins (the /dev/ page). */
export function devStoreRules(config: Pick<Config, 'corsOrigins'>, host: string, port: number) {
  return corsRules({ corsOrigins: [...new Set([...config.corsOrigins, ...brokerOrigins(host, port)])] });
}
