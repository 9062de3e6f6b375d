// The scenarios of issue 9, as requests the load generator sends to the broker and the baseline.
// Items a route needs (uploads already PUT for commit, messages for pending, fetch and ack) are made
// before each run and are not timed.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { TEST_SECRET } from '../../tests/helpers/harness.js';
import { mintToken } from '../../tests/helpers/tokens.js';
import type { Sql } from '../../src/db/sql.js';
import type { Req } from './http-load.js';
import type { Scenario, Target } from './ratios.js';
import { benchDid, benchMessageId, MEASURED_DIDS, measuredRecipient } from './seed.js';

export const CONVO = 'bench';
/**
 * The broker's DATABASE_POOL_SIZE in the benchmark (`--pool N` changes it). PostgreSQL shares these two
 * cores with the broker, the emulator and the load generator: its own rule of thumb (about twice its
 * cores in connections) gives 4. Measured against 10 in one run (`npm run bench:ab -- --b-env
 * '{"DATABASE_POOL_SIZE":"10"}'`): 10 served ×0.82 (0.66–0.82) the reservations and ×0.90 (0.83–0.92)
 * the acks, with 3.0 and 1.3 times the open-loop p99 (NOTES, round 6).
 */
export const BENCH_POOL_SIZE = 4;
export const SENDERS = Array.from({ length: 200 }, (_, i) => benchDid(100_000 + i));
export const RECIPIENTS = Array.from({ length: 10 }, (_, i) => benchDid(200_000 + i));
/** One fresh sender per run of the one-sender scenario: its open uploads start from zero each run. */
export const SOLO = Array.from({ length: 16 }, (_, i) => benchDid(300_000 + i));

export interface Timing {
  connections: number;
  seconds: number;
  maxRequests: number;
}

const tokenCache = new Map<string, string>();
async function token(did: string): Promise<string> {
  let t = tokenCache.get(did);
  if (t === undefined) {
    t = await mintToken(TEST_SECRET, did, { expiresIn: 3 * 3600 });
    tokenCache.set(did, t);
  }
  return t;
}

const json = (bearer: string) => ({ authorization: `Bearer ${bearer}`, 'content-type': 'application/json' });
const bare = (bearer: string) => ({ authorization: `Bearer ${bearer}` });
const DATA = randomBytes(64);
const MD5 = createHash('md5').update(DATA).digest('base64');
const RESERVE_BODY = Buffer.from(JSON.stringify({ convo_id: CONVO, size: DATA.length, md5: MD5 }));

/**
 * Before each broker run, the open uploads earlier runs left (not timed). A real sender commits what
 * it reserves and has at most MAX_PENDING_UPLOADS (20) open; here nothing commits and the cap is
 * raised, and the count under the sender's lock (exact, up to the cap) would otherwise grow with
 * every run: by the last round each sender would have hundreds open, the solo sender thousands.
 */
async function clearOpenUploads(admin: Sql, target: Target): Promise<void> {
  if (target === 'broker') await admin`delete from uploads where convo_id = ${CONVO} and state = 'pending'`;
}

export async function reserveScenario(t: Timing, admin: Sql): Promise<Scenario> {
  const headers = await Promise.all(SENDERS.map(async (d) => json(await token(d))));
  return {
    name: 'reserve `POST /api/v1/uploads` (single PUT), 200 senders',
    ...t,
    expect: 201,
    prepare: async (target) => {
      await clearOpenUploads(admin, target);
      return (i) => ({ method: 'POST', path: '/api/v1/uploads', headers: headers[i % headers.length]!, body: RESERVE_BODY });
    },
  };
}

export async function soloScenario(t: Timing, admin: Sql): Promise<Scenario> {
  return {
    name: 'reserve, one sender (pending cap raised)',
    ...t,
    expect: 201,
    prepare: async (target, run) => {
      await clearOpenUploads(admin, target);
      const headers = json(await token(SOLO[run % SOLO.length]!));
      return () => ({ method: 'POST', path: '/api/v1/uploads', headers, body: RESERVE_BODY });
    },
  };
}

interface Uploaded {
  messageId: string;
  headers: Record<string, string>;
}

/** Reserves and PUTs `n` uploads through the broker and the store, 16 at a time (not timed). */
async function uploadMany(brokerUrl: string, n: number): Promise<Uploaded[]> {
  const out: Uploaded[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const sender = SENDERS[i % SENDERS.length]!;
      const h = json(await token(sender));
      const res = await fetch(`${brokerUrl}/api/v1/uploads`, { method: 'POST', headers: h, body: RESERVE_BODY });
      const r = (await res.json()) as { message_id: string; upload: { url: string; headers: Record<string, string> } };
      if (res.status !== 201) throw new Error(`preparing uploads: reserve answered ${res.status} ${JSON.stringify(r)}`);
      const { 'content-length': _len, ...put } = r.upload.headers;
      const stored = await fetch(r.upload.url, { method: 'PUT', headers: put, body: DATA });
      await stored.arrayBuffer();
      if (stored.status !== 200) throw new Error(`preparing uploads: PUT answered ${stored.status}`);
      out.push({ messageId: r.message_id, headers: h });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return out;
}

export async function commitScenario(t: Timing, brokerUrl: string): Promise<Scenario> {
  const fake = json(await token(SENDERS[0]!));
  const body = (id: string) => Buffer.from(JSON.stringify({ message_id: id, recipients: RECIPIENTS }));
  return {
    name: 'commit with 10 recipients (HEAD + one statement)',
    ...t,
    expect: 201,
    prepare: async (target: Target) => {
      if (target === 'baseline') return () => ({ method: 'POST', path: '/api/v1/messages', headers: fake, body: body(randomUUID()) });
      const ready = await uploadMany(brokerUrl, t.maxRequests);
      return (i) => ({ method: 'POST', path: '/api/v1/messages', headers: ready[i]!.headers, body: body(ready[i]!.messageId) });
    },
  };
}

/** Tokens of the DIDs whose pending pages are measured (each has 100 seeded messages). */
async function measuredTokens(): Promise<Record<string, string>[]> {
  return Promise.all(Array.from({ length: MEASURED_DIDS }, async (_, d) => bare(await token(benchDid(d)))));
}

export async function pendingScenario(t: Timing, rows: string): Promise<Scenario> {
  const headers = await measuredTokens();
  return {
    name: `pending page of 100, ${rows} recipient rows`,
    ...t,
    expect: 200,
    prepare: async () => (i) => ({ method: 'GET', path: '/api/v1/messages/pending?limit=100', headers: headers[i % headers.length]! }),
  };
}

/** The k-th (DID, message) pair of the seed, all distinct for k < 100 k. */
function pair(k: number): { did: number; message: number } {
  const did = k % MEASURED_DIDS;
  const j = Math.floor(k / MEASURED_DIDS) % 100;
  // measuredRecipient(message, j) === did for message ≡ did (mod 10): solve for the message.
  const message = (((did - 10 * j) % MEASURED_DIDS) + MEASURED_DIDS) % MEASURED_DIDS;
  if (measuredRecipient(message, j) !== did) throw new Error('seed arithmetic');
  return { did, message };
}

export async function fetchScenario(t: Timing): Promise<Scenario> {
  const headers = await measuredTokens();
  return {
    name: 'fetch `GET /api/v1/messages/:id`',
    ...t,
    expect: 200,
    prepare: async () => (i) => {
      const p = pair(i % 100_000);
      return { method: 'GET', path: `/api/v1/messages/${benchMessageId(p.message)}`, headers: headers[p.did]! };
    },
  };
}

export async function ackScenario(t: Timing): Promise<Scenario> {
  const headers = await measuredTokens();
  return {
    name: 'ack `POST /api/v1/messages/:id/ack`',
    ...t,
    expect: 204,
    // Every broker run acks deliveries no earlier run acked.
    prepare: async (_target, run) => (i) => {
      const p = pair((run * t.maxRequests + i) % 100_000);
      return { method: 'POST', path: `/api/v1/messages/${benchMessageId(p.message)}/ack`, headers: headers[p.did]! };
    },
  };
}
