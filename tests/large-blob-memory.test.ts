// A large Blob is hashed and uploaded in slices: the sender's memory stays bounded by a few parts,
// whatever the file size. Not a timing test: a child process holding only the client library
// uploads a 128 MiB file-backed Blob (fs.openAsBlob, what the README tells Node callers to pass)
// and measures its live heap and buffer growth (tests/helpers/upload-memory-child.ts).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { CommittedMessage } from '../src/client/index.js';
import { WHOLE_HASH_MAX_BYTES } from '../src/client/digests.js';
import { multipartEtag } from '../src/services/part-md5s.js';
import { clientFor } from './helpers/client.js';
import { startTestApp, type TestApp } from './helpers/harness.js';
import { did } from './helpers/tokens.js';

const MIB = 1024 * 1024;
const PART = 5 * MIB;
const CONCURRENCY = 2;
const SIZE = 128 * MIB + 12_345;
/** What the library holds (CONCURRENCY parts in flight, one hash slice: 18 MiB here) plus slack. */
const BOUND = 48 * MIB;
const alice = did('alice');
const bob = did('bob');

const CHILD = fileURLToPath(new URL('./helpers/upload-memory-child.ts', import.meta.url));
const run = promisify(execFile);

const test = suite('large Blob: bounded memory while hashing and uploading');
let app: TestApp;
let dir: string;
let file: string;

test.before(async () => {
  app = await startTestApp({ env: { PART_SIZE_BYTES: String(PART), MULTIPART_THRESHOLD_BYTES: String(PART), MEMBERSHIP: 'off' } });
  dir = await mkdtemp(path.join(tmpdir(), 'broker-large-'));
  file = path.join(dir, 'large.bin');
  // Distinct content per MiB (so every part has its own MD5), written lazily a MiB at a time.
  const fh = await open(file, 'w');
  const chunk = Buffer.alloc(MIB);
  for (let at = 0; at < SIZE; at += MIB) {
    for (let i = 0; i < MIB; i += 4096) chunk.writeUInt32LE((at / MIB) * 256 + i / 4096, i);
    await fh.write(chunk, 0, Math.min(MIB, SIZE - at));
  }
  await fh.close();
});
test.after(async () => {
  await app.close();
  await rm(dir, { recursive: true, force: true });
});

async function digestsOfFile(): Promise<{ sha256: string; partMd5s: string[] }> {
  const sha = createHash('sha256');
  const md5s: string[] = [];
  let part = createHash('md5');
  let inPart = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: MIB }) as AsyncIterable<Buffer>) {
    sha.update(chunk);
    for (let off = 0; off < chunk.length; ) {
      const take = Math.min(chunk.length - off, PART - inPart);
      part.update(chunk.subarray(off, off + take));
      off += take;
      inPart += take;
      if (inPart === PART) {
        md5s.push(part.digest('base64'));
        part = createHash('md5');
        inPart = 0;
      }
    }
  }
  if (inPart > 0) md5s.push(part.digest('base64'));
  return { sha256: sha.digest('base64'), partMd5s: md5s };
}

test('a 128 MiB Blob is uploaded with live memory growth under a fixed bound, and arrives verified', async () => {
  assert.ok(SIZE > 2 * BOUND, 'the bound is well below the file size: reading the file whole would break it');
  assert.ok(SIZE > WHOLE_HASH_MAX_BYTES);
  // Asynchronous: the broker answering the child runs in this process.
  const child = await run(process.execPath, ['--expose-gc', '--import', 'tsx', CHILD, app.url, await app.token(alice), file, bob, String(CONCURRENCY)], {
    timeout: 300_000,
    maxBuffer: 1024 * 1024,
  });
  const { peak, samples, message } = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as { peak: number; samples: number; message: CommittedMessage };
  process.stdout.write(`\n    peak live memory growth ${(peak / MIB).toFixed(1)} MiB over ${samples} samples, ${(SIZE / MIB).toFixed(0)} MiB Blob (bound ${BOUND / MIB} MiB)\n`);
  assert.ok(samples > 10);
  assert.ok(peak < BOUND, `peak growth ${(peak / MIB).toFixed(1)} MiB must stay under ${BOUND / MIB} MiB`);

  // The declared digests are those of the file: the broker compared the multipart ETag with the
  // part MD5s at commit, and the SHA-256 is what recipients verify.
  assert.is(message.size, SIZE);
  const expected = await digestsOfFile();
  const info = await clientFor(app, bob).getMessage(message.message_id);
  assert.is(info.sha256, expected.sha256);
  const row = await app.ctx.sql<{ blob_key: string }[]>`select blob_key from messages where id = ${message.message_id}`;
  assert.is((await app.ctx.store.head(row[0]!.blob_key))?.etag, multipartEtag(expected.partMd5s));
});

test.run();
