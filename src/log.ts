import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

export interface LoggerOptions {
  /** Human-readable lines through pino-pretty (a devDependency: development on a terminal only). */
  pretty?: boolean;
  /** Where lines go (default stdout). */
  destination?: DestinationStream;
  bindings?: Record<string, unknown>;
}

/**
 * Structured JSON lines on stdout; readable ones on a development terminal. Stdout is written
 * asynchronously: a synchronous write per line cost the broker a system call per request (the access
 * log) and would stall every request while a log collector is slow to read the pipe. Lines that pile
 * up during one write go out together with the next; pino flushes what is left when the process
 * exits (a crash included: it exits through the normal shutdown). Only a SIGKILL can lose the
 * lines of the write in progress.
 */
export function createLogger(level: LogLevel, options: LoggerOptions = {}): Logger {
  const opts = { level, base: { service: 'mls-blob-broker', ...options.bindings } };
  if (options.pretty) {
    // Loaded only when asked for, synchronously: a production install has no pino-pretty.
    const pretty = createRequire(import.meta.url)('pino-pretty') as (o: Record<string, unknown>) => DestinationStream;
    return pino(opts, pretty({ sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', ...(options.destination ? { destination: options.destination } : {}) }));
  }
  return pino(opts, options.destination ?? pino.destination({ dest: 1, sync: false }));
}
