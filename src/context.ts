// Every client the broker uses is built here, once, and passed explicitly. Nothing connects at import.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createTokenVerifier, type TokenVerifier } from './auth.js';
import type { Config } from './config.js';
import { systemClock, type Clock } from './clock.js';
import { prepareSchema } from './db/migrate.js';
import { poolStats } from './db/pool-stats.js';
import { createSql, type Sql } from './db/sql.js';
import type { CorsFront } from './dev/cors-front.js';
import { resolveDevServices, type DevServices } from './dev/embedded.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, storeObserver, type Metrics } from './metrics.js';
import { RateLimiter, sharedLimiter, type RequestLimiter } from './rate-limit.js';
import { BlobStore } from './store/store.js';

export interface AppContext {
  config: Readonly<Config>;
  /** The database in use (DATABASE_URL, or the embedded one), for a connection outside the pool. */
  databaseUrl: string;
  sql: Sql;
  store: BlobStore;
  auth: TokenVerifier;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /** Per-DID request limit: shared through Redis with REDIS_URL, else this instance's; null when off. */
  limiter: RequestLimiter | null;
  /** What runs embedded (development defaults), for the start-up banner. */
  embedded: DevServices['started'];
  /** Development: the CORS front before the local R2 emulator this process runs; null otherwise. */
  storeFront: CorsFront | null;
  close(): Promise<void>;
}

export interface ContextOptions {
  clock?: Clock;
  log?: Logger;
  /**
   * Apply pending migrations at start (default true); 'check' refuses to start while this build's
   * migrations are not all applied (MIGRATE_ON_START=false: migrating is a release step).
   */
  migrate?: boolean | 'check';
  /** A server records its embedded services for CLIs; a CLI joins a running server's. */
  share?: boolean;
  /**
   * The embedded services, already starting (the server starts them before loading its modules);
   * without it they are resolved here, with `share`. Stopped here when the context cannot be made.
   */
  dev?: Promise<DevServices>;
  /** Pool size instead of DATABASE_POOL_SIZE; CLIs need few connections. */
  poolSize?: number;
  /** Process-wide default metrics (event loop, memory): for the server only. */
  defaultMetrics?: boolean;
  /** Sees every statement sent to PostgreSQL (the round-trip budget tests count them). */
  onQuery?: (statement: string) => void;
}

export async function createContext(config: Readonly<Config>, options: ContextOptions = {}): Promise<AppContext> {
  const log = options.log ?? createLogger(config.logLevel);
  const dev = await (options.dev ?? resolveDevServices(config, log, { share: options.share ?? false }));
  let sql: Sql | undefined;
  let store: BlobStore | undefined;
  let redis: Redis | undefined;
  const metrics = createMetrics({ defaults: options.defaultMetrics ?? false });
  try {
    const auth = await createTokenVerifier(config.jwt, config.serviceDids, {
      jwks: { onStale: (err, ageMs) => log.warn({ err, ageSeconds: Math.round(ageMs / 1000) }, 'the JWKS cannot be refreshed; verifying with the last good keys') },
      observe: (outcome) => metrics.tokenVerifications.inc({ outcome }),
    });
    const poolSize = options.poolSize ?? config.databasePoolSize;
    // Its own name in pg_stat_activity, so the pool gauges count this process's connections only.
    const applicationName = `mls-blob-broker ${randomBytes(4).toString('hex')}`;
    sql = createSql(dev.databaseUrl, { max: poolSize, prepare: config.databasePrepare, applicationName, onQuery: options.onQuery });
    metrics.observePool(poolSize, poolStats(sql, applicationName));
    store = new BlobStore({ ...config.store, endpoint: dev.storeEndpoint }, storeObserver(metrics));
    const mode = options.migrate ?? true;
    if (mode !== false) {
      const { applied } = await prepareSchema(config, dev.databaseUrl, mode);
      if (applied.length > 0) log.info({ applied }, 'migrations applied');
    }
    const clock = options.clock ?? systemClock;
    let limiter: RequestLimiter | null = null;
    if (config.rateLimitPerMinute > 0 && config.redisUrl !== null) {
      // Fail fast instead of queueing while Redis is away: the insurance limiter answers meanwhile.
      // Loaded only when used: ioredis is a large part of what a start would otherwise load.
      const { Redis } = await import('ioredis');
      redis = new Redis(config.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: false });
      limiter = sharedLimiter(redis, config.rateLimitPerMinute, log, metrics);
      // Shared from the first request when Redis is there; a start never waits on it for long.
      await redisReady(redis, 2000);
    } else if (config.rateLimitPerMinute > 0) {
      limiter = new RateLimiter(clock, config.rateLimitPerMinute);
    }
    const app: AppContext = {
      config,
      databaseUrl: dev.databaseUrl,
      sql,
      store,
      auth,
      clock,
      log,
      metrics,
      limiter,
      embedded: dev.started,
      storeFront: dev.storeFront,
      async close() {
        // Order matters: the pool before the database under it, the client before the emulator.
        await sql!.end({ timeout: 2 }).catch((err) => log.warn({ err }, 'closing the database pool failed'));
        store!.close();
        redis?.disconnect();
        await dev.stop();
      },
    };
    return app;
  } catch (err) {
    await sql?.end({ timeout: 1 }).catch(() => {});
    store?.close();
    redis?.disconnect();
    await dev.stop();
    throw err;
  }
}

/** Resolves when the client is ready, or after `ms` (the insurance limiter covers the rest). */
function redisReady(redis: Redis, ms: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    }
    redis.once('ready', done);
  });
}
