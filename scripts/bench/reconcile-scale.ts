// Reconciliation at scale: a bucket of N objects — 80 % committed messages, 10 % expired uploads,
// 10 % strays (no row) — and their rows, on a database and bucket of their own; then passes until
// one is complete, in a child process (scripts/bench/reconcile-child.ts) whose peak RSS is read.
// Run at two sizes: memory must be bounded by a page and a batch, not by the bucket.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSql } from '../../src/db/sql.js';
import { startR2Emulator, type R2Emulator } from '../../src/dev/r2-emulator.js';
import { testEnv, TEST_ACCESS_KEY, TEST_SECRET_KEY } from '../../tests/helpers/harness.js';
import { benchDid } from './seed.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// The emulator keeps every object as a file and a SQLite row: on a disk, loading 100 k of them is
// bound by writes the benchmark does not measure. In memory (tmpfs) where the machine has it.
const SCRATCH = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const BODY = Buffer.from('x');
const MD5 = createHash('md5').update(BODY).digest('base64');

export interface ReconcileResult {
  objects: number;
  loadSeconds: number;
  /** The routine passes (rows only), then the audit passes (the bucket walk). */
  passes: number;
  seconds: number;
  auditPasses: number;
  auditSeconds: number;
  /** Objects in the bucket ÷ (routine + audit seconds). */
  objectsPerSecond: number;
  maxRssMb: number;
  totals: Record<string, number>;
}

/** Stores the objects from inside the emulator, 1000 per call, 4 calls at a time (not timed as part of the pass). */
async function loadAll(r2: R2Emulator, bucket: string, keys: string[], log: (s: string) => void): Promise<void> {
  const batch = 1000;
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < keys.length) {
      const from = next;
      next += batch;
      await r2.load!(bucket, keys.slice(from, from + batch), BODY.toString());
      done += Math.min(batch, keys.length - from);
      if (done % 20_000 === 0) log(`  ${done.toLocaleString('en')} objects`);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

async function one(n: number, log: (s: string) => void): Promise<ReconcileResult> {
  // An emulator of its own, with the loader: a presigned PUT per object took minutes at 100 k.
  const bucket = 'reconcile-bench';
  const dir = await mkdtemp(path.join(SCRATCH, 'bench-r2-'));
  const r2 = await startR2Emulator({ persistDir: dir, buckets: [bucket], accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET_KEY, loader: true });
  try {
    return await measure(n, r2, bucket, log);
  } finally {
    await r2.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function measure(n: number, r2: R2Emulator, bucket: string, log: (s: string) => void): Promise<ReconcileResult> {
  const env = await testEnv({ LOG_LEVEL: 'silent', R2_ENDPOINT: r2.endpoint, R2_BUCKET: bucket });
  const sql = createSql(env.DATABASE_URL!, { max: 2 });
  const now = new Date();
  const day = now.toISOString().slice(0, 10).replace(/-/g, '/');
  // Keys shaped like the broker's (m/yyyy/mm/dd/<uuid>): the walk relies on that shape.
  const prefix = `m/${day}/00000000-0000-7000-8000-`;
  const key = (i: number) => `${prefix}${i.toString(16).padStart(12, '0')}`;
  const messages = Math.floor(n * 0.8);
  const expired = Math.floor(n * 0.1);
  const t = performance.now();
  try {
    await sql`
      insert into messages (id, convo_id, sender_did, blob_key, size, commit_digest, created_at)
      select ('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'reconcile', ${benchDid(1)},
             ${prefix} || lpad(to_hex(i), 12, '0'), 1, 'x', ${new Date(now.getTime() - 3600_000)}
      from generate_series(0, ${messages - 1}::int) i`;
    await sql`
      insert into message_recipients (message_id, recipient_did)
      select ('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, ${benchDid(2)}
      from generate_series(0, ${messages - 1}::int) i`;
    const deadline = new Date(now.getTime() - 2 * 3600_000);
    await sql`
      insert into uploads (message_id, sender_did, convo_id, blob_key, size, md5, content_type, state,
                           created_at, commit_deadline, updated_at, urls_valid_until)
      select ('00000000-0000-7000-9000-' || lpad(to_hex(i), 12, '0'))::uuid, ${benchDid(1)}, 'reconcile',
             ${prefix} || lpad(to_hex(i), 12, '0'), 1, ${MD5}, 'application/octet-stream', 'pending',
             ${new Date(deadline.getTime() - 3600_000)}, ${deadline}, ${deadline}, ${deadline}
      from generate_series(${messages}::int, ${messages + expired - 1}::int) i`;
    await loadAll(r2, bucket, Array.from({ length: n }, (_, i) => key(i)), log);
  } finally {
    await sql.end();
  }
  const loadSeconds = (performance.now() - t) / 1000;
  // Strays count only once older than the commit window plus its margin: the pass looks from later.
  const passNow = now.getTime() + 2 * 3600_000;
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'reconcile-child.ts'), '--now', String(passNow)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`reconcile child exited with ${code}: ${out}`);
  type Passes = { passes: number; complete: boolean; seconds: number };
  const r = JSON.parse(out.trim().split('\n').pop()!) as { routine: Passes; audit: Passes; maxRssKb: number; totals: Record<string, number> };
  if (!r.routine.complete || !r.audit.complete) throw new Error(`reconciliation did not complete in 50 passes: ${out}`);
  const seconds = r.routine.seconds + r.audit.seconds;
  const result = {
    objects: n,
    loadSeconds,
    passes: r.routine.passes,
    seconds: r.routine.seconds,
    auditPasses: r.audit.passes,
    auditSeconds: r.audit.seconds,
    objectsPerSecond: n / seconds,
    maxRssMb: r.maxRssKb / 1024,
    totals: r.totals,
  };
  log(
    `reconcile over ${n.toLocaleString('en')} objects (loaded in ${loadSeconds.toFixed(0)} s): routine ${r.routine.passes} pass(es) ${r.routine.seconds.toFixed(1)} s, ` +
      `audit ${r.audit.passes} pass(es) ${r.audit.seconds.toFixed(1)} s; ${result.objectsPerSecond.toFixed(0)} objects/s, ` +
      `peak RSS ${result.maxRssMb.toFixed(0)} MiB; ${JSON.stringify(r.totals)}`,
  );
  return result;
}

export async function reconcileAtScale(sizes: number[], log: (s: string) => void): Promise<ReconcileResult[]> {
  const out: ReconcileResult[] = [];
  for (const n of sizes) {
    log(`reconcile: loading ${n.toLocaleString('en')} objects and their rows`);
    out.push(await one(n, log));
  }
  return out;
}
