// Soak: `npm run soak -- --minutes N [--concurrency C] [--out file.json]`. Starts the real broker
// (src/main.ts) as a child process on the test harness's PostgreSQL and R2 emulator, all on
// 127.0.0.1, and drives a mixed workload against it for N minutes: reserve, PUT, commit, pending
// page, fetch (metadata, then the bytes from the bucket), ack (single and batch), an occasional
// abort, and a reconciliation pass every 30 s. Every minute it prints requests, errors, p50/p99
// and the broker's resident memory (VmRSS of its own process); at the end a summary with the RSS
// trend over the run after the first minute (least squares, MiB per minute).
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig, quietAwsSdkNodeWarning } from '../src/config.js';
import { createContext } from '../src/context.js';
import { reconcile } from '../src/jobs/reconcile.js';
import { createLogger } from '../src/log.js';
import { startBroker } from '../tests/helpers/broker-process.js';
import { stopHarness, testEnv, TEST_SECRET, TEST_SERVICE } from '../tests/helpers/harness.js';
import { did, mintToken } from '../tests/helpers/tokens.js';

quietAwsSdkNodeWarning();
const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '4' },
    out: { type: 'string' },
  },
});
const minutes = Number(values.minutes);
const concurrency = Number(values.concurrency);
if (!(minutes > 0 && minutes <= 120) || !(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 64)) {
  process.stderr.write('usage: npm run soak -- --minutes N (0 < N <= 120) [--concurrency C (1..64)] [--out file.json]\n');
  process.exit(2);
}

type Op = 'reserve' | 'put' | 'commit' | 'pending' | 'fetch' | 'get' | 'ack' | 'ack_batch' | 'abort' | 'reconcile';

interface Window {
  minute: number;
  requests: number;
  errors: number;
  latencies: number[];
  byOp: Partial<Record<Op, number>>;
  rssMiB: number[];
}

const env = await testEnv({
  MAX_PENDING_UPLOADS: '10000',
  RATE_LIMIT_PER_MINUTE: '0',
  RECONCILE_CRON: 'off',
});
const broker = await startBroker(env);
const pid = broker.child.pid!;
const base = broker.url;
const ctx = await createContext(loadConfig({ ...env, LOG_LEVEL: 'warn' }), { log: createLogger('warn'), migrate: false, poolSize: 2 });

const PAIRS = Math.max(2, concurrency);
const pairs = Array.from({ length: PAIRS }, (_, i) => ({ convo: `soak-${i}`, sender: did(`soak-sender-${i}`), recipient: did(`soak-recipient-${i}`) }));
const tokens = new Map<string, string>();
const token = async (d: string) => {
  let t = tokens.get(d);
  if (!t) {
    t = await mintToken(TEST_SECRET, d, { expiresIn: 3 * 3600 });
    tokens.set(d, t);
  }
  return t;
};

const started = Date.now();
const windows: Window[] = [];
const errorSamples: string[] = [];
const windowAt = (t: number): Window => {
  // Rounds still in flight at the end (and the last pass) count in the last minute.
  const minute = Math.min(Math.floor((t - started) / 60_000), Math.ceil(minutes) - 1);
  while (windows.length <= minute) windows.push({ minute: windows.length, requests: 0, errors: 0, latencies: [], byOp: {}, rssMiB: [] });
  return windows[minute]!;
};

/** One request, timed and counted; `ok` decides whether the answer is the expected one. */
async function timed<T>(op: Op, fn: () => Promise<T>, ok: (r: T) => boolean): Promise<T | null> {
  const t = performance.now();
  let result: T | null = null;
  let good = false;
  let why = '';
  try {
    result = await fn();
    good = ok(result);
    if (!good) why = JSON.stringify(result).slice(0, 300);
  } catch (err) {
    why = String(err);
  }
  const w = windowAt(Date.now());
  w.requests++;
  w.latencies.push(performance.now() - t);
  w.byOp[op] = (w.byOp[op] ?? 0) + 1;
  if (!good) {
    w.errors++;
    if (errorSamples.length < 20) errorSamples.push(`${op}: ${why}`);
    return null;
  }
  return result;
}

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function api(method: string, path: string, as: string, body?: unknown): Promise<Answer> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${await token(as)}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const is = (status: number) => (a: Answer) => a.status === status;

async function setup(): Promise<void> {
  for (const p of pairs) {
    const r = await api('PUT', `/api/v1/convos/${p.convo}/members`, TEST_SERVICE, { members: [p.sender, p.recipient] });
    if (r.status !== 200) throw new Error(`setting members failed: ${JSON.stringify(r)}`);
  }
}

/** One round of the mixed workload for one conversation. */
async function round(p: (typeof pairs)[number], n: number): Promise<void> {
  const data = randomBytes(256 + (n % 8) * 512);
  const md5 = createHash('md5').update(data).digest('base64');
  const reserved = await timed('reserve', () => api('POST', '/api/v1/uploads', p.sender, { convo_id: p.convo, size: data.length, md5 }), is(201));
  if (!reserved) return;
  const id = reserved.body.message_id as string;
  if (n % 10 === 9) {
    // Now and then a sender gives up: the abort, and later reconciliation, reclaim the slot.
    await timed('abort', () => api('DELETE', `/api/v1/uploads/${id}`, p.sender), is(204));
    return;
  }
  const { 'content-length': _len, ...headers } = reserved.body.upload.headers as Record<string, string>;
  const put = await timed('put', () => fetch(reserved.body.upload.url, { method: 'PUT', headers, body: data }).then(async (r) => (await r.arrayBuffer(), r.status)), (s) => s === 200);
  if (put === null) return;
  if (!(await timed('commit', () => api('POST', '/api/v1/messages', p.sender, { message_id: id, metadata: { n } }), is(201)))) return;
  await timed('pending', () => api('GET', '/api/v1/messages/pending?limit=50', p.recipient), is(200));
  const m = await timed('fetch', () => api('GET', `/api/v1/messages/${id}`, p.recipient), is(200));
  if (!m) return;
  await timed(
    'get',
    () => fetch(m.body.download.url).then(async (r) => ({ status: r.status, size: (await r.arrayBuffer()).byteLength })),
    (r) => r.status === 200 && r.size === data.length,
  );
  if (n % 4 === 3) {
    // Batch ack of whatever is still pending for this recipient (this message among them).
    const page = await api('GET', '/api/v1/messages/pending?limit=100', p.recipient);
    const ids = (page.body?.messages ?? []).map((x: { message_id: string }) => x.message_id);
    if (ids.length > 0) await timed('ack_batch', () => api('POST', '/api/v1/messages/ack', p.recipient, { message_ids: ids }), is(200));
  } else {
    await timed('ack', () => api('POST', `/api/v1/messages/${id}/ack`, p.recipient), is(204));
  }
}

function rssMiB(): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};

function slopePerMinute(points: { t: number; v: number }[]): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mt = points.reduce((a, p) => a + p.t, 0) / n;
  const mv = points.reduce((a, p) => a + p.v, 0) / n;
  const num = points.reduce((a, p) => a + (p.t - mt) * (p.v - mv), 0);
  const den = points.reduce((a, p) => a + (p.t - mt) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 60_000;
}

const rssPoints: { t: number; v: number }[] = [];
let stopping = false;
let endAt = started + minutes * 60_000;
// Ctrl-C ends the workload early and still reports, stops the broker and the harness.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => (endAt = Date.now()));
let printed = 0;

function printMinute(w: Window): void {
  const by = Object.entries(w.byOp).map(([k, v]) => `${k} ${v}`).join(', ');
  const rss = w.rssMiB.length ? `${Math.min(...w.rssMiB).toFixed(1)}–${Math.max(...w.rssMiB).toFixed(1)}` : '-';
  process.stdout.write(
    `minute ${w.minute + 1}: ${w.requests} requests, ${w.errors} errors, p50 ${pct(w.latencies, 0.5).toFixed(1)} ms, p99 ${pct(w.latencies, 0.99).toFixed(1)} ms, broker RSS ${rss} MiB (${by})\n`,
  );
}

try {
  await setup();
  const sampler = setInterval(() => {
    const now = Date.now();
    const v = rssMiB();
    rssPoints.push({ t: now - started, v });
    windowAt(now).rssMiB.push(v);
    const current = Math.floor((now - started) / 60_000);
    while (printed < current && printed < windows.length) printMinute(windows[printed++]!);
  }, 5000);
  const reconciler = (async () => {
    while (!stopping) {
      await new Promise((r) => setTimeout(r, 30_000));
      if (stopping) break;
      await timed('reconcile', () => reconcile(ctx), (r) => r.errors.length === 0);
    }
  })();
  let n = 0;
  await Promise.all(
    pairs.slice(0, concurrency).map(async (p) => {
      while (Date.now() < endAt) await round(p, n++);
    }),
  );
  stopping = true;
  clearInterval(sampler);
  await reconciler;
  const final = reconcile(ctx);
  await timed('reconcile', () => final, (r) => r.errors.length === 0);
  while (printed < windows.length) printMinute(windows[printed++]!);

  const all = windows.flatMap((w) => w.latencies);
  const afterWarmup = rssPoints.filter((p) => p.t >= 60_000);
  const summary = {
    minutes,
    concurrency,
    requests: windows.reduce((a, w) => a + w.requests, 0),
    errors: windows.reduce((a, w) => a + w.errors, 0),
    p50Ms: Number(pct(all, 0.5).toFixed(1)),
    p99Ms: Number(pct(all, 0.99).toFixed(1)),
    rssMiB: {
      first: Number((rssPoints[0]?.v ?? 0).toFixed(1)),
      last: Number((rssPoints[rssPoints.length - 1]?.v ?? 0).toFixed(1)),
      max: Number(Math.max(...rssPoints.map((p) => p.v)).toFixed(1)),
      slopePerMinuteAfterFirstMinute: Number(slopePerMinute(afterWarmup).toFixed(2)),
    },
    perMinute: windows.map((w) => ({
      minute: w.minute + 1,
      requests: w.requests,
      errors: w.errors,
      p99Ms: Number(pct(w.latencies, 0.99).toFixed(1)),
      rssMiBMax: Number(Math.max(0, ...w.rssMiB).toFixed(1)),
    })),
    errorSamples,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  if (values.out) writeFileSync(values.out, JSON.stringify(summary, null, 2));
  process.exitCode = summary.errors === 0 ? 0 : 1;
} finally {
  stopping = true;
  broker.child.kill('SIGTERM');
  await broker.exited;
  await ctx.close();
  await stopHarness();
}
