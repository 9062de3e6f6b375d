// Every client the broker uses is built here, once, and passed explicitly. Nothing connects at import.
import { createTokenVerifier, type TokenVerifier } from './auth.js';
import type { Config } from './config.js';
import { systemClock, type Clock } from './clock.js';
import { migrate } from './db/migrate.js';
import { createSql, type Sql } from './db/sql.js';
import { resolveDevServices, type DevServices } from './dev/embedded.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { BlobStore } from './store/store.js';

export interface AppContext {
  config: Readonly<Config>;
  /** The database in use (DATABASE_URL, or the embedded one): for the reconciler's lock session. */
  databaseUrl: string;
  sql: Sql;
  store: BlobStore;
  auth: TokenVerifier;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /** What runs embedded (development defaults), for the start-up banner. */
  embedded: DevServices['started'];
  close(): Promise<void>;
}

export interface ContextOptions {
  clock?: Clock;
  log?: Logger;
  /** Apply pending migrations at start (default true). */
  migrate?: boolean;
  /** A server records its embedded services for CLIs; a CLI joins a running server's. */
  share?: boolean;
  /** Pool size; CLIs need few connections. */
  poolSize?: number;
  /** Process-wide default metrics (event loop, memory): for the server only. */
  defaultMetrics?: boolean;
}

export async function createContext(config: Readonly<Config>, options: ContextOptions = {}): Promise<AppContext> {
  const log = options.log ?? createLogger(config.logLevel);
  const dev = await resolveDevServices(config, log, { share: options.share ?? false });
  let sql: Sql | undefined;
  let store: BlobStore | undefined;
  try {
    const auth = await createTokenVerifier(config.jwt, config.serviceDids);
    sql = createSql(dev.databaseUrl, { max: options.poolSize ?? 10 });
    store = new BlobStore({ ...config.store, endpoint: dev.storeEndpoint });
    if (options.migrate ?? true) {
      const { applied } = await migrate(sql);
      if (applied.length > 0) log.info({ applied }, 'migrations applied');
    }
    const app: AppContext = {
      config,
      databaseUrl: dev.databaseUrl,
      sql,
      store,
      auth,
      clock: options.clock ?? systemClock,
      log,
      metrics: createMetrics({ defaults: options.defaultMetrics ?? false }),
      embedded: dev.started,
      async close() {
        // Order matters: the pool before the database under it, the client before the emulator.
        await sql!.end({ timeout: 2 }).catch((err) => log.warn({ err }, 'closing the database pool failed'));
        store!.close();
        await dev.stop();
      },
    };
    return app;
  } catch (err) {
    await sql?.end({ timeout: 1 }).catch(() => {});
    store?.close();
    await dev.stop();
    throw err;
  }
}
