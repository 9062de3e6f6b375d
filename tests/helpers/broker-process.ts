// The broker as a real child process (src/main.ts), for tests that kill it.
import { spawn, type ChildProcess } from 'node:child_process';

export interface BrokerProcess {
  child: ChildProcess;
  url: string;
  lines: string[];
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  exited: Promise<number | null>;
}

/**
 * Starts `src/main.ts` with only `env` (plus PATH and HOME) and waits for its "listening" line,
 * which is logged at info: LOG_LEVEL is always info here.
 */
export function startBroker(env: Record<string, string>, timeoutMs = 60_000): Promise<BrokerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', PORT: '0', HOST: '127.0.0.1', ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`not ready in ${timeoutMs} ms:\n${lines.join('\n')}${buffered}`));
    }, timeoutMs);
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      let i;
      while ((i = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        if (lines.length < 2000) lines.push(line);
        const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve({ child, url: m[1]!, lines, exited });
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ready:\n${lines.join('\n')}`));
    });
  });
}
