// The R2 emulator `npm start` runs from a worker thread (src/dev/r2-emulator-thread.ts): it answers
// at its endpoint, stops with its workerd, and a start that fails rejects with the reason and
// leaves no workerd behind.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startR2EmulatorThread } from '../src/dev/r2-emulator-thread.js';
import { descendants, isAlive } from './helpers/processes.js';

const test = suite('the R2 emulator in a thread');
const dirs: string[] = [];
const dir = async () => {
  const d = await mkdtemp(path.join(tmpdir(), 'r2-thread-'));
  dirs.push(d);
  return path.join(d, 'r2');
};
test.after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const ownWorkerds = () =>
  descendants(process.pid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'workerd';
    } catch {
      return false;
    }
  });

const options = (persistDir: string) => ({ persistDir, buckets: ['thread-bucket'], accessKeyId: 'thread-key', secretAccessKey: 'thread-secret' });

test('answers S3 at its endpoint, and stopping it ends its workerd', async () => {
  const before = new Set(ownWorkerds());
  const r2 = await startR2EmulatorThread(options(await dir()));
  assert.match(r2.endpoint, /^http:\/\/127\.0\.0\.1:\d+\/cdn-cgi\/local\/r2\/s3$/);
  const started = ownWorkerds().filter((pid) => !before.has(pid));
  assert.is(started.length, 1, 'one workerd of its own');
  try {
    // Unsigned: refused, but answered by the emulator's S3 endpoint.
    const res = await fetch(`${r2.endpoint}/thread-bucket`, { method: 'HEAD' });
    assert.ok(res.status >= 400 && res.status < 500, String(res.status));
  } finally {
    await r2.stop();
  }
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(started.filter(isAlive), [], 'its workerd is gone');
});

test('a start that fails rejects with the reason and leaves no workerd', async () => {
  const before = new Set(ownWorkerds());
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  const port = (taken.address() as { port: number }).port;
  try {
    await startR2EmulatorThread({ ...options(await dir()), port }).then(
      async (r2) => {
        await r2.stop();
        assert.unreachable('started on a port in use');
      },
      (err: Error) => assert.ok(err instanceof Error && err.message.length > 0, String(err)),
    );
  } finally {
    taken.close();
  }
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(ownWorkerds().filter((pid) => !before.has(pid) && isAlive(pid)), [], 'no workerd left');
});

test.run();
