// The broker as a real child process (src/main.ts), for tests that start, signal or kill it.
import { spawnUntil, type Running } from './processes.js';

export type BrokerProcess = Omit<Running<string>, 'found'> & { url: string };

export interface BrokerOptions {
  /** Node flags after tsx's and before the entry point, e.g. `--import` of a TypeScript fixture. */
  nodeArgs?: string[];
  timeoutMs?: number;
  /** A process group of its own (signal the whole tree with `process.kill(-pid, …)`, as a terminal does). */
  detached?: boolean;
}

const LISTENING = /listening on (http:\/\/[0-9.]+:\d+)/;

/**
 * Starts `src/main.ts` with only `env` (plus PATH, HOME and PORT=0) and waits for its "listening"
 * line, which is logged at info: LOG_LEVEL is always info here.
 */
export async function startBroker(env: Record<string, string>, options: BrokerOptions = {}): Promise<BrokerProcess> {
  const { found, ...running } = await spawnUntil(process.execPath, ['--import', 'tsx', ...(options.nodeArgs ?? []), 'src/main.ts'], {
    env: { PORT: '0', ...env, LOG_LEVEL: 'info' },
    ready: (line) => LISTENING.exec(line)?.[1],
    timeoutMs: options.timeoutMs,
    detached: options.detached,
  });
  return { ...running, url: found };
}
