// The emulator's bulk loader (the benchmark's, src/dev/r2-emulator.ts): objects it stores are
// objects like any other, and nobody without the secret made at start can use it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startR2Emulator, type R2Emulator } from '../src/dev/r2-emulator.js';
import { BlobStore } from '../src/store/store.js';
import { TEST_ACCESS_KEY, TEST_SECRET_KEY } from './helpers/harness.js';

const test = suite('the R2 emulator: bulk loader');
const bucket = 'loader-test';
let dir: string;
let r2: R2Emulator;

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'r2-loader-'));
  r2 = await startR2Emulator({ persistDir: dir, buckets: [bucket], accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET_KEY, loader: true });
});
test.after(async () => {
  await r2?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('loaded objects are seen through the S3 endpoint like PUT ones', async () => {
  const store = new BlobStore({ endpoint: r2.endpoint, bucket, accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET_KEY, region: 'auto', forcePathStyle: true });
  try {
    const keys = Array.from({ length: 1500 }, (_, i) => `m/2026/12/02/loaded-${i}`);
    await r2.load!(bucket, keys, 'xyz');
    for (const key of [keys[0]!, keys[777]!, keys[1499]!]) assert.is((await store.head(key))?.size, 3, key);
    assert.is(await store.head('m/2026/12/02/never-loaded'), null);
    let listed = 0;
    let next: string | null = null;
    do {
      const page = await store.list({ prefix: 'm/', next });
      listed += page.objects.length;
      next = page.next;
    } while (next !== null);
    assert.is(listed, 1500);
  } finally {
    store.close();
  }
});

test('the loader answers only its own process: without the secret the origin is a 404 and stores nothing', async () => {
  const origin = new URL(r2.endpoint).origin;
  for (const headers of [{}, { 'x-loader-secret': 'guess' }]) {
    const res = await fetch(origin, { method: 'POST', headers: headers as Record<string, string>, body: JSON.stringify({ binding: 'B0', keys: ['m/evil'], body: 'x' }) });
    await res.arrayBuffer();
    assert.is(res.status, 404);
  }
  const refused = await r2.load!('no-such-bucket', ['k'], 'x').then(() => null, (err: Error) => err.message);
  assert.match(String(refused), /no bucket/);
});

test.run();
