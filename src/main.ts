// Entry: config → embedded services and modules → context → app → listen → scheduler. The broker
// owns shutdown: on SIGINT or SIGTERM it stops accepting, finishes in-flight requests, closes the pool
// and stops the embedded services, within 5 s.
import type { Server } from 'node:http';
import { ConfigError, loadConfig, loadDotEnv, quietAwsSdkNodeWarning } from './config.js';
import type { AppContext } from './context.js';
import { devStoreRules, loadDevServiceModules, resolveDevServices } from './dev/embedded.js';
import type { Scheduler } from './jobs/scheduler.js';
import { requestsInFlight } from './http/request-scope.js';
import { createLogger } from './log.js';

const SHUTDOWN_DEADLINE_MS = 4500;

async function main(): Promise<void> {
  loadDotEnv();
  quietAwsSdkNodeWarning();
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // Readable lines for a person at a development terminal; JSON lines for everything else.
  const log = createLogger(config.logLevel, { pretty: config.nodeEnv !== 'production' && process.stdout.isTTY === true });
  let app: AppContext | undefined;
  let server: Server | undefined;
  let scheduler: Scheduler | undefined;
  let stopping = false;

  /** Drains and closes everything, then exits with `code` (non-zero after a crash). */
  let exitCode = 0;
  const shutdown = async (signal: string, code = 0) => {
    exitCode = Math.max(exitCode, code); // a crash during a clean shutdown still exits non-zero
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    force.unref();
    try {
      // Stopping the scheduler asks a running pass to finish its batch; it runs while HTTP drains.
      const schedulerStopped = scheduler?.stop();
      if (server) {
        const closed = new Promise<void>((resolve) => server!.close(() => resolve()));
        // Keep-alive connections become idle as their last response goes out: close each then,
        // rather than wait for the client to hang up.
        const sweep = setInterval(() => server!.closeIdleConnections(), 50);
        server.closeIdleConnections();
        await closed;
        clearInterval(sweep);
      }
      await schedulerStopped;
      await app?.close();
      log.info('stopped');
      process.exit(exitCode);
    } catch (err) {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  // An error nobody caught leaves the process in an unknown state: name the requests in flight (one
  // of them may have set it off; their ids find their other lines), finish them, and exit non-zero
  // so the supervisor restarts a clean process. Never hang.
  const crash = (err: unknown, origin: string) => {
    const { count, requests } = requestsInFlight();
    log.fatal({ err, origin, in_flight: count, requests }, 'uncaught error; draining and exiting');
    void shutdown(origin, 1);
  };
  process.on('uncaughtException', (err, origin) => crash(err, origin));
  process.on('unhandledRejection', (reason) => crash(reason, 'unhandledRejection'));

  // The embedded services (development defaults) take longest to come up: they start first, and the
  // broker's own modules (the AWS SDK, Koa, the schemas: about a second) load while they boot, once
  // the services' own code has loaded (loaded side by side, it would wait behind the broker's).
  // The migrations (applied, or checked with MIGRATE_ON_START=false) run as soon as the database
  // answers, while the emulator and the broker's modules may still be on their way.
  const dev = resolveDevServices(config, log, {
    share: true,
    onDatabase: async (databaseUrl) => {
      const { prepareSchema } = await import('./db/migrate.js');
      const started = performance.now();
      const { applied } = await prepareSchema(config, databaseUrl, config.migrateOnStart ? true : 'check');
      const ms = Math.round(performance.now() - started);
      if (applied.length > 0) log.info({ applied, ms }, 'migrations applied');
      else log.debug({ ms }, 'migrations checked');
    },
  });
  dev.catch(() => {}); // handled by createContext; meanwhile not an "unhandled rejection"
  let modules;
  try {
    await loadDevServiceModules(config);
    modules = await loadModules();
  } catch (err) {
    await dev.then((d) => d.stop(), () => {});
    log.fatal({ err }, 'start failed');
    process.exit(1);
  }
  const { createContext, createServer, startScheduler } = modules;
  try {
    // The migrations were done with the services (onDatabase above).
    app = await createContext(config, { log, dev, defaultMetrics: true, migrate: false });
  } catch (err) {
    log.fatal({ err }, 'start failed');
    process.exit(1);
  }
  if (stopping) return;
  if (app.embedded.postgres) log.info(app.embedded.postgres);
  if (app.embedded.r2) log.info(app.embedded.r2);

  server = createServer(app).listen({ port: config.port, host: config.host });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server!.once('listening', resolve);
    server!.once('error', reject);
  }).catch((err) => {
    log.fatal({ err }, 'cannot listen');
    void shutdown('listen-error', 1);
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  // The local bucket now also answers CORS for the broker's own origin (the /dev/ page).
  app.storeFront?.setRules(devStoreRules(config, config.host, port));
  log.info({ url: `http://${config.host}:${port}` }, `mls-blob-broker listening on http://${config.host}:${port}`);
  // Out now rather than with the next batch (up to 250 ms later): whoever waits for this line
  // (a person, a supervisor, the cold-start bench) learns at once that the broker listens.
  log.flush();
  if (stopping) return;
  try {
    scheduler = startScheduler(app);
  } catch (err) {
    log.fatal({ err }, 'cannot schedule reconciliation');
    void shutdown('scheduler-error', 1);
  }
}

/** What the broker runs on, loaded once the embedded services are on their way. */
async function loadModules() {
  const [{ createContext }, { createServer }, { startScheduler }] = await Promise.all([
    import('./context.js'),
    import('./app.js'),
    import('./jobs/scheduler.js'),
  ]);
  return { createContext, createServer, startScheduler };
}

void main();
