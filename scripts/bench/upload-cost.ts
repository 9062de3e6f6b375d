// What a large upload costs the broker, and what presigning costs: sections 1 and 2 of
// scripts/bench/RESULTS.md (run by scripts/bench/run.ts).
// 1. The broker's CPU time and the bytes on its HTTP sockets for a 1 GiB (--quick: 64 MiB)
//    multipart upload against small single-PUT uploads. The broker runs as a child process
//    (scripts/bench/broker.ts) so its CPU is its own; the uploading client (src/client) runs in
//    this process. Both must scale with the number of parts, not with the bytes (invariant 7).
// 2. Presign cost per URL: the reused presigner against getSignedUrl, as a ratio in one run.
import { randomFillSync } from 'node:crypto';
import { BrokerClient } from '../../src/client/index.js';
import { BlobStore } from '../../src/store/store.js';
import { freshBucket, harness, testEnv, TEST_ACCESS_KEY, TEST_SECRET, TEST_SECRET_KEY } from '../../tests/helpers/harness.js';
import { did, mintToken } from '../../tests/helpers/tokens.js';
import { diff, startBrokerChild, type BrokerChild, type Sample } from './child.js';
import { benchPresign, type PresignResult } from './presign.js';

const MIB = 1024 * 1024;
const PART = 16 * MIB;
const SMALL = 1024;

interface UploadRow {
  scenario: string;
  payload: number;
  parts: number;
  uploads: number;
  seconds: number;
  broker: Sample;
}

type Breakdown = Map<string, { n: number; cpuUs: number; bytes: number }>;

/** A fetch that samples the broker around each of its API calls: CPU and bytes per route. */
function instrumentedFetch(broker: BrokerChild, breakdown: Breakdown): typeof fetch {
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.startsWith(broker.url)) return fetch(input, init);
    const route = `${init?.method ?? 'GET'} ${new URL(url).pathname.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/, ':id')}`;
    const before = await broker.sample();
    const res = await fetch(input, init);
    const body = await res.arrayBuffer(); // the whole answer, so the broker's work is done
    const d = diff(before, await broker.sample());
    const row = breakdown.get(route) ?? { n: 0, cpuUs: 0, bytes: 0 };
    row.n++;
    row.cpuUs += d.cpuUs;
    row.bytes += d.bytesIn + d.bytesOut;
    breakdown.set(route, row);
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

async function measure(broker: BrokerChild, fn: () => Promise<void>): Promise<{ seconds: number; broker: Sample }> {
  const before = await broker.sample();
  const t = performance.now();
  await fn();
  const seconds = (performance.now() - t) / 1000;
  return { seconds, broker: diff(before, await broker.sample()) };
}

/** Sections 1 and 2 of RESULTS.md, as markdown. */
export async function uploadCost(quick: boolean, log: (s: string) => void): Promise<string> {
  const LARGE = quick ? 64 * MIB : 1024 * MIB;
  const SMALL_COUNT = quick ? 10 : 20;
  const PRESIGN_N = quick ? 500 : 3000;
  const h = await harness();
  const env = await testEnv({
    PART_SIZE_BYTES: String(PART),
    MULTIPART_THRESHOLD_BYTES: String(PART),
    MAX_MESSAGE_BYTES: String(2048 * MIB),
    MAX_PENDING_UPLOADS: '100000',
    MEMBERSHIP: 'off',
    LOG_LEVEL: 'silent',
  });
  const broker = await startBrokerChild(env);
  const sender = did('bench-sender');
  const recipient = did('bench-recipient');
  const senderToken = await mintToken(TEST_SECRET, sender, { expiresIn: 3600 });
  const client = new BrokerClient({ baseUrl: broker.url, token: senderToken, concurrency: 4 });
  const largeBreakdown: Breakdown = new Map();
  const tracedClient = new BrokerClient({ baseUrl: broker.url, token: senderToken, concurrency: 4, fetch: instrumentedFetch(broker, largeBreakdown) });
  const rows: UploadRow[] = [];
  let presign: PresignResult[] = [];
  let idleCpuUsPerSecond = 0;
  try {
    // Idle baseline: what the broker burns doing nothing (timers, pool keep-alive).
    const idle = await measure(broker, () => new Promise((r) => setTimeout(r, quick ? 2000 : 5000)));
    idleCpuUsPerSecond = idle.broker.cpuUs / idle.seconds;

    // Small single-PUT uploads (warm the broker up first: the first requests compile schemas and JIT).
    for (let i = 0; i < 5; i++) await client.upload('bench', randomFillSync(new Uint8Array(SMALL)), { recipients: [recipient] });
    const small = await measure(broker, async () => {
      for (let i = 0; i < SMALL_COUNT; i++) await client.upload('bench', randomFillSync(new Uint8Array(SMALL)), { recipients: [recipient] });
    });
    rows.push({ scenario: `${SMALL} B single PUT`, payload: SMALL, parts: 1, uploads: SMALL_COUNT, ...small });
    log(`small: ${SMALL_COUNT} uploads, broker ${(small.broker.cpuUs / 1000).toFixed(1)} ms CPU, ${small.broker.bytesIn + small.broker.bytesOut} B`);

    // The smallest multipart upload (2 parts), to separate the fixed multipart cost from the per-part one.
    const two = new Uint8Array(PART + 1);
    const twoParts = await measure(broker, async () => {
      for (let i = 0; i < 3; i++) await client.upload('bench', randomFillSync(two), { recipients: [recipient] });
    });
    rows.push({ scenario: `${PART / MIB} MiB + 1 B multipart`, payload: two.length, parts: 2, uploads: 3, ...twoParts });

    // One large multipart upload, the client in this process.
    const large = await measure(broker, async () => {
      // Filled here so the 1 GiB buffer is garbage once the upload is done (before the presign bench).
      const data = new Uint8Array(LARGE);
      for (let at = 0; at < LARGE; at += 64 * MIB) randomFillSync(data, at, Math.min(64 * MIB, LARGE - at));
      const done = await tracedClient.upload('bench', data, { recipients: [recipient] });
      if (done.size !== LARGE) throw new Error('the large upload committed the wrong size');
    });
    rows.push({ scenario: `${LARGE / MIB} MiB multipart`, payload: LARGE, parts: Math.ceil(LARGE / PART), uploads: 1, ...large });
    log(`large: ${LARGE / MIB} MiB in ${large.seconds.toFixed(1)} s, broker ${(large.broker.cpuUs / 1000).toFixed(1)} ms CPU, ${large.broker.bytesIn + large.broker.bytesOut} B`);

    // Presign cost per URL, in this process (no network).
    const store = new BlobStore({ endpoint: h.storeEndpoint, bucket: freshBucket(), accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET_KEY, region: 'auto', forcePathStyle: true });
    presign = await benchPresign(store, PRESIGN_N);
    store.close();
    for (const p of presign) log(`presign ${p.kind}: reused ${p.reusedUs.toFixed(1)} µs, getSignedUrl ${p.getSignedUrlUs.toFixed(1)} µs (×${p.ratio.toFixed(1)})`);

  } finally {
    await broker.stop();
  }
  return report(rows, largeBreakdown, presign, idleCpuUsPerSecond);
}

const ms = (us: number) => (us / 1000).toFixed(1);
const kb = (b: number) => (b / 1024).toFixed(1);

function report(rows: UploadRow[], breakdown: Breakdown, presign: PresignResult[], idleUsPerSecond: number): string {
  const [small, two, large] = rows as [UploadRow, UploadRow, UploadRow];
  const per = (r: UploadRow) => ({
    cpuUs: r.broker.cpuUs / r.uploads,
    bytes: (r.broker.bytesIn + r.broker.bytesOut) / r.uploads,
    requests: r.broker.requests / r.uploads,
  });
  const s = per(small);
  const t = per(two);
  const l = per(large);
  const extraParts = large.parts - two.parts;
  const traced = [...breakdown.values()].reduce((a, r) => a + r.cpuUs, 0);
  const idleShare = idleUsPerSecond * large.seconds;
  const lines = [
    'Everything on loopback. The broker runs alone in a child process (`scripts/bench/broker.ts`); PostgreSQL',
    '(embedded), the R2 emulator (miniflare) and the client (`src/client`, 4 parts in flight) run in the',
    `parent. Broker CPU = \`process.cpuUsage()\` inside the broker (user + system), cross-checked against`,
    '`/proc/<pid>/stat` (10 ms ticks). Broker bytes = `bytesRead + bytesWritten` of every socket its HTTP',
    `server accepted. Part size ${PART / MIB} MiB. Idle broker CPU (no requests at all, measured first): ${ms(idleUsPerSecond)} ms per second.`,
    '',
    '## What an upload costs the broker',
    '',
    '| scenario | payload | parts | broker requests / upload | broker CPU / upload | (/proc) | broker bytes in + out / upload | wall |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const p = per(r);
      return `| ${r.scenario} (×${r.uploads}) | ${r.payload.toLocaleString('en')} B | ${r.parts} | ${p.requests.toFixed(1)} | ${ms(p.cpuUs)} ms | ${(r.broker.procCpuMs / r.uploads).toFixed(0)} ms | ${kb(p.bytes)} KiB | ${(r.seconds / r.uploads).toFixed(2)} s |`;
    }),
    '',
    'Ratios:',
    '',
    `- large against small: payload ×${(large.payload / small.payload).toLocaleString('en')}, broker bytes ×${(l.bytes / s.bytes).toFixed(1)}, broker CPU ×${(l.cpuUs / s.cpuUs).toFixed(1)}, requests ${l.requests.toFixed(0)} against ${s.requests.toFixed(0)}`,
    `- large against the 2-part upload: payload ×${(large.payload / two.payload).toFixed(0)}, parts ×${(large.parts / two.parts).toFixed(0)}, broker bytes ×${(l.bytes / t.bytes).toFixed(1)}, broker CPU ×${(l.cpuUs / t.cpuUs).toFixed(1)}`,
    `- per extra part (slope between the two multipart rows): ${kb((l.bytes - t.bytes) / extraParts)} KiB of broker traffic (its URL in the reservation, its ETag in /complete) and ${ms((l.cpuUs - t.cpuUs) / extraParts)} ms of broker CPU`,
    `- broker bytes are ${((l.bytes / large.payload) * 100).toFixed(4)} % of the large payload: no ciphertext passes through the broker`,
    `- client throughput to the emulator: ${(large.payload / MIB / large.seconds).toFixed(0)} MiB/s (hashing included)`,
    '',
    `Broker CPU of the large upload by request, sampled around each call. The other ${ms(large.broker.cpuUs - traced)} ms accrued between`,
    `calls, while the client PUT the parts to the store and the broker served nothing: ${ms((large.broker.cpuUs - traced) / large.seconds)} ms per second`,
    'of wall time, a background cost of the broker process (timers, pools) that grows with time, not with parts',
    '— it also inflates the per-part CPU slope above, which spans a longer upload. The work done per request:',
    '',
    '| request | calls | broker CPU | broker bytes in + out |',
    '|---|---:|---:|---:|',
    ...[...breakdown.entries()].map(([route, r]) => `| \`${route}\` | ${r.n} | ${ms(r.cpuUs)} ms | ${kb(r.bytes)} KiB |`),
    '',
    '## Presign cost per URL (same S3 client configuration, one run; the two ways alternate over 3 rounds, best round kept)',
    '',
    '| URL | calls | reused S3RequestPresigner (BlobStore) | getSignedUrl | ratio |',
    '|---|---:|---:|---:|---:|',
    ...presign.map((p) => `| ${p.kind} | ${p.n} | ${p.reusedUs.toFixed(1)} µs | ${p.getSignedUrlUs.toFixed(1)} µs | ×${p.ratio.toFixed(1)} |`),
    '',
  ];
  return lines.join('\n');
}

