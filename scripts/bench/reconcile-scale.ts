// Reconciliation at scale: a bucket of N objects — 80 % committed messages, 10 % expired uploads,
// 10 % strays (no row) — and their rows, on a database and bucket of their own; then passes until
// one is complete, in a child process (scripts/bench/reconcile-child.ts) whose peak RSS is read.
// Run at two sizes: memory must be bounded by a page and a batch, not by the bucket.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSql } from '../../src/db/sql.js';
import { BlobStore } from '../../src/store/store.js';
import { testEnv, TEST_ACCESS_KEY, TEST_SECRET_KEY } from '../../tests/helpers/harness.js';
import { benchDid } from './seed.js';

const here = path.dirname(fileURLToPath(import.meta.url));
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

/** Puts `keys` through presigned PUTs, 16 at a time (not timed as part of the pass). */
async function putAll(store: BlobStore, keys: string[], log: (s: string) => void): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      // The emulator, starved of CPU, sometimes drops a connection: try again a few times.
      for (let attempt = 1; ; attempt++) {
        try {
          const p = await store.presignPut({ key, size: 1, md5: MD5, contentType: 'application/octet-stream', now: new Date(), expiresIn: 600 });
          const { 'content-length': _len, ...headers } = p.headers;
          const res = await fetch(p.url, { method: 'PUT', headers, body: BODY });
          await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`PUT ${key}: ${res.status}`);
          break;
        } catch (err) {
          if (attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
      if (next % 10_000 === 0) log(`  ${next.toLocaleString('en')} objects`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

async function one(n: number, log: (s: string) => void): Promise<ReconcileResult> {
  const env = await testEnv({ LOG_LEVEL: 'silent' });
  const sql = createSql(env.DATABASE_URL!, { max: 2 });
  const store = new BlobStore({ endpoint: env.R2_ENDPOINT!, bucket: env.R2_BUCKET!, accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET_KEY, region: 'auto', forcePathStyle: true });
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
    await putAll(store, Array.from({ length: n }, (_, i) => key(i)), log);
  } finally {
    store.close();
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
    `reconcile over ${n.toLocaleString('en')} objects: routine ${r.routine.passes} pass(es) ${r.routine.seconds.toFixed(1)} s, ` +
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
