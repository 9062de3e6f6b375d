// The local R2 emulator of `npm start`, started from a worker thread: miniflare's code (its one
// 4.4 MB file: ~1 s of CPU to load) loads and the emulator starts there, beside the broker's own
// module loading on the other core, instead of before it on the one main thread
// (scripts/bench/NOTES.md, "Round 5"). The emulator is the same (./r2-emulator.ts's options); the
// thread is plain CommonJS, so it needs no TypeScript loader, and it only reports the emulator's
// endpoint and stops it when asked.
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { miniflareOptions, s3Endpoint, type R2EmulatorOptions } from './r2-emulator.js';

export interface R2EmulatorThread {
  /** The S3 endpoint, as startR2Emulator's. */
  endpoint: string;
  /** Stops the emulator, then the thread. */
  stop(): Promise<void>;
}

type ThreadMessage = { origin: string } | { stopped: true } | { error: unknown };

const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const { Miniflare, Log, LogLevel } = require(workerData.miniflare);
const post = (m) => parentPort.postMessage(m);
const mf = new Miniflare({ ...workerData.options, log: new Log(LogLevel.WARN) });
mf.ready.then(
  (origin) => {
    parentPort.once('message', () => {
      mf.dispose().then(() => post({ stopped: true }), (error) => post({ error })).finally(() => parentPort.close());
    });
    post({ origin: origin.href });
  },
  (error) => {
    mf.dispose().catch(() => {}).finally(() => {
      post({ error });
      parentPort.close();
    });
  },
);
`;

export async function startR2EmulatorThread(options: Omit<R2EmulatorOptions, 'loader'>): Promise<R2EmulatorThread> {
  await mkdir(options.persistDir, { recursive: true });
  const workerData = {
    miniflare: createRequire(import.meta.url).resolve('miniflare'),
    options: miniflareOptions(options, ''),
  };
  // No loader hooks in the thread (execArgv: []): it runs CommonJS only.
  const worker = new Worker(THREAD, { eval: true, workerData, execArgv: [] });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const next = () =>
    new Promise<ThreadMessage>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      void exited.then((code) => reject(new Error(`the R2 emulator's thread ended (exit code ${code}) without an answer`)));
    });
  const first = await next();
  if ('error' in first) {
    await exited;
    throw first.error;
  }
  if (!('origin' in first)) throw new Error('the R2 emulator thread answered out of turn');
  return {
    endpoint: s3Endpoint(first.origin),
    async stop() {
      const answer = next();
      worker.postMessage('stop');
      const reply = await answer;
      await exited;
      if ('error' in reply) throw reply.error;
    },
  };
}
