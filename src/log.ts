import { createRequire } from 'node:module';
import type * as Pino from 'pino';
import type { DestinationStream, Logger } from 'pino';
import { requireCjs } from './cjs.js';
import type { LogLevel } from './config.js';

// Required, not imported: src/cjs.ts.
const { pino } = requireCjs('pino') as typeof Pino;

export type { Logger };

export interface LoggerOptions {
  /** Human-readable lines through pino-pretty (a devDependency: development on a terminal only). */
  pretty?: boolean;
  /** Where lines go (default stdout). */
  destination?: DestinationStream;
  bindings?: Record<string, unknown>;
}

/** Lines are written to stdout once 4 KiB have gathered, or after this long. */
const FLUSH_MS = 250;

/**
 * Structured JSON lines on stdout; readable ones on a development terminal. Stdout is written
 * asynchronously in batches of about 4 KiB (a dozen access-log lines), and at least every 250 ms: a
 * write per line cost the broker ~8 % of its CPU under load (the access log writes one per request;
 * scripts/bench/RESULTS.md), and a synchronous one would stall every request while a log collector
 * is slow to read the pipe. pino flushes what is left when the process exits (a crash included: it
 * exits through the normal shutdown); a SIGKILL loses at most the last 250 ms.
 */
export function createLogger(level: LogLevel, options: LoggerOptions = {}): Logger {
  const opts = { level, base: { service: 'mls-blob-broker', ...options.bindings } };
  if (options.pretty) {
    // Loaded only when asked for, synchronously: a production install has no pino-pretty.
    const pretty = createRequire(import.meta.url)('pino-pretty') as (o: Record<string, unknown>) => DestinationStream;
    return pino(opts, pretty({ sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', ...(options.destination ? { destination: options.destination } : {}) }));
  }
  if (options.destination) return pino(opts, options.destination);
  const stdout = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  const timer = setInterval(() => {
    try {
      stdout.flush();
    } catch {
      // Ended (the process is exiting): nothing more to write.
    }
  }, FLUSH_MS).unref();
  stdout.once('close', () => clearInterval(timer));
  return pino(opts, stdout);
}
