// Running the fuzz (tests/RELIABILITY.md, "Fuzzing"): the fixture world the requests name, sending
// them exactly as generated (node:http, so paths and bodies go on the wire unnormalised), and the
// checks: status below 500; every error application/json with a known code, a message, under 4 KB,
// and as /openapi.json documents it; a refused request changes no row and no object it names.
//
// Objects: every request the broker sends to the bucket passes an SDK middleware that records the
// writes (PUT, DELETE, multipart create, complete, abort); a refused request may make none. (A
// HEAD of each named object before and after costs more than the request itself on the emulator.)
//
// Rows: triggers log every committed row change (tests/helpers/rows.ts, rowChangeLog), so "did
// anything change" costs one index lookup however many rows the run has written.
//
// Cheap enough for 50 000 cases: requests that cannot write (reads, and writes the route's own
// validation refuses: a bad token, a wrong content type, a body its schema rejects) go in batches,
// all in flight at once between one mark of the change log and the bucket writes before and one
// after. Only a write that may succeed is sent alone, between marks of its own. A batch in which
// something changed is replayed one request at a time to find the culprit.
import { Agent, request } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import fc from 'fast-check';
import { ERROR_CODES } from '../../src/errors.js';
import { parseJson } from '../../src/http/json.js';
import type { RouteDef } from '../../src/http/route.js';
import { apiRoutes } from '../../src/http/routes/index.js';
import { encodeCursor } from '../../src/services/messages.js';
import { putBytes } from './flow.js';
import { TEST_SECRET, TEST_SERVICE, type TestApp } from './harness.js';
import { requestArb, Ref, ID_ROLES, type FuzzRequest, type IdRole, type Mangle, type Person } from './fuzz.js';
import { rowChangeLog, type RowChangeLog } from './rows.js';
import { tokenDefects } from './token-defects.js';
import { did, mintToken } from './tokens.js';

/** Requests in flight at once: a batch. */
export const BATCH = 16;
const MAX_ERROR_BYTES = 4096;
const MAX_PATH = 7900; // Node answers a bare 431 past 16 KiB of request head (tests/RELIABILITY.md, "What is not covered")
const KNOWN_CODES = new Set<string>(ERROR_CODES);
/** Fixtures are rebuilt this often in a long run, well inside COMMIT_WINDOW_SECONDS. */
const FIXTURE_LIFE_MS = 20 * 60_000;

/**
 * The broker environment the fuzz runs against: the default limits, but room for the many uploads
 * the fixtures' owner reserves (the quota stays on, at its largest, so its statement runs).
 */
export const FUZZ_ENV = { MAX_PENDING_UPLOADS: '100000', MAX_BYTES_PER_DAY: String(2 ** 50) };

interface World {
  app: TestApp;
  dids: Record<Person, string>;
  convos: Record<'convo' | 'elsewhere' | 'none', string>;
  ids: Record<IdRole, string>;
  /** Every committed row change, logged by triggers. */
  rows: RowChangeLog;
  /** Every write the broker sent to the bucket, as `Command key`, in order. */
  storeWrites: string[];
  token(who: Person): Promise<string>;
}

/** A request made concrete: what goes on the wire, and what it names. */
interface Wire {
  req: FuzzRequest;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  ids: Set<IdRole>;
  convos: Set<string>;
  /** Could succeed and write: sent alone. */
  mayWrite: boolean;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

export interface FuzzStats {
  cases: number;
  batches: number;
  /** Writes that may succeed, each sent alone between marks of its own. */
  alone: number;
  /** Of those, how many did succeed (the fixtures they touched were rebuilt). */
  written: number;
  /** Batches in which a write thought refused succeeded: their refusals were checked again one by one. */
  rechecked: number;
  /** `status code` → count, e.g. `400 InvalidRequest`, `201`. */
  answers: Record<string, number>;
}

const digest = (b: Uint8Array, alg: 'md5' | 'sha256') => createHash(alg).update(b).digest('base64');

// ——— the fixture world ———

async function ok(w: World, who: Person, method: string, path: string, body: unknown, status: number) {
  const r = await w.app.call(method, path, { token: await w.token(who), body });
  if (r.status !== status) throw new Error(`fuzz fixture: ${method} ${path} answered ${r.status}: ${r.text}`);
  return r.body;
}

async function resetConvo(w: World, role: 'convo' | 'elsewhere' | 'none'): Promise<void> {
  const members = { convo: [w.dids.alice, w.dids.bob, w.dids.carol], elsewhere: [w.dids.mallory], none: [] }[role];
  await ok(w, 'service', 'PUT', `/api/v1/convos/${w.convos[role]}/members`, { members }, 200);
}

/** Puts the fixture back in the state its role names (after a request changed it). */
async function rebuild(w: World, role: IdRole): Promise<void> {
  if (role === 'absent') return;
  const data = randomBytes(64);
  const small = { convo_id: w.convos.convo, size: data.length, md5: digest(data, 'md5'), sha256: digest(data, 'sha256') };
  if (role === 'multipart') {
    const r = await ok(w, 'alice', 'POST', '/api/v1/uploads', { convo_id: w.convos.convo, size: 200 * 2 ** 20, sha256: digest(data, 'sha256') }, 201);
    w.ids.multipart = r.message_id;
    return;
  }
  const r = await ok(w, 'alice', 'POST', '/api/v1/uploads', small, 201);
  if (role !== 'pendingEmpty' && (await putBytes(r.upload, data)) !== 200) throw new Error('fuzz fixture: the PUT failed');
  if (role === 'message') await ok(w, 'alice', 'POST', '/api/v1/messages', { message_id: r.message_id, recipients: [w.dids.bob], metadata: { epoch: 1 } }, 201);
  w.ids[role] = r.message_id;
}

async function createWorld(app: TestApp): Promise<World> {
  const tokens = new Map<Person, { token: string; at: number }>();
  const dids: Record<Person, string> = { alice: did('fz-alice'), bob: did('fz-bob'), carol: did('fz-carol'), mallory: did('fz-mallory'), service: TEST_SERVICE };
  const w: World = {
    app,
    dids,
    convos: { convo: 'fz-convo', elsewhere: 'fz-elsewhere', none: 'fz-none' },
    ids: { pendingPut: '', pendingEmpty: '', multipart: '', message: '', absent: '0190b2a4-7c1e-7000-8000-0000000f0f0f' },
    rows: await rowChangeLog(app.ctx.sql),
    storeWrites: [],
    // Fresh every few minutes: a long run outlives any one token.
    async token(who) {
      const t = tokens.get(who);
      if (t && Date.now() - t.at < 5 * 60_000) return t.token;
      const token = await mintToken(TEST_SECRET, dids[who], { expiresIn: 900 });
      tokens.set(who, { token, at: Date.now() });
      return token;
    },
  };
  app.ctx.store.client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? '';
      if (!/^(Head|Get|List)/.test(command)) {
        const input = args.input as { Key?: string; Delete?: { Objects?: { Key?: string }[] } };
        w.storeWrites.push(`${command} ${input.Key ?? (input.Delete?.Objects ?? []).map((o) => o.Key).join(',')}`);
      }
      return next(args);
    },
    { step: 'initialize', name: 'fuzzStoreWrites' },
  );
  // The client caches each command's middleware chain at its first use (cacheMiddleware): forget
  // the chains built so far, or commands already sent would go on without the watch.
  delete (app.ctx.store.client as unknown as { handlers?: unknown }).handlers;
  await resetConvo(w, 'convo');
  await resetConvo(w, 'elsewhere');
  for (const role of ID_ROLES) await rebuild(w, role);
  return w;
}

// ——— from a generated request to the wire ———

function resolve(v: unknown, w: World): unknown {
  if (v instanceof Ref) {
    const value =
      v.kind === 'id' ? w.ids[v.role as IdRole] : v.kind === 'convo' ? w.convos[v.role as keyof World['convos']] : v.kind === 'did' ? w.dids[v.role as Person] : encodeCursor(w.ids[v.role as IdRole]);
    return v.upper ? value.toUpperCase() : value;
  }
  if (Array.isArray(v)) return v.map((x) => resolve(x, w));
  if (v !== null && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) Object.defineProperty(o, k, { value: resolve(x, w), enumerable: true, writable: true, configurable: true });
    return o;
  }
  return v;
}

/** What a request names: fixture ids and conversations, wherever they appear. */
function named(v: unknown, ids: Set<IdRole>, convos: Set<string>): void {
  if (v instanceof Ref) {
    if (v.kind === 'id' || v.kind === 'cursor') ids.add(v.role as IdRole);
    if (v.kind === 'convo') convos.add(v.role);
  } else if (Array.isArray(v)) for (const x of v) named(x, ids, convos);
  else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) named(x, ids, convos);
}

const encode = (s: string) => {
  try {
    return encodeURIComponent(s);
  } catch {
    return '%ED%A0%80'; // a lone surrogate, as a careless encoder writes it
  }
};

function spoil(text: string, m: Mangle): Buffer {
  switch (m.kind) {
    case 'truncate':
      return Buffer.from(text.slice(0, Math.floor(text.length * m.fraction)));
    case 'bom':
      return Buffer.from(`\uFEFF${text}`);
    case 'duplicate-key': {
      const pair = `${JSON.stringify(m.key)}:${JSON.stringify(m.value) ?? 'null'}`;
      if (!text.startsWith('{')) return Buffer.from(`{${pair},${pair}}`);
      if (text === '{}') return Buffer.from(`{${pair},${pair}}`);
      return Buffer.from(m.last ? `${text.slice(0, -1)},${pair}}` : `{${pair},${text.slice(1)}`);
    }
    case 'proto-text':
      return Buffer.from(text.startsWith('{') && text !== '{}' ? m.text + text.slice(1) : `${m.text.slice(0, -1)}}`);
    case 'invalid-utf8': {
      const b = Buffer.from(text);
      const at = Math.floor(b.length * m.at);
      return Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
    }
    case 'deep':
      return Buffer.from(m.open.repeat(m.levels) + (m.open === '[' ? '' : '1') + (m.closed ? m.close.repeat(m.levels) : ''));
    case 'number': {
      const replaced = text.replace(/-?\d+(\.\d+)?([eE][+-]?\d+)?/, m.text);
      return Buffer.from(replaced === text ? `{"size":${m.text}}` : replaced);
    }
    case 'literal':
      return Buffer.from(m.text);
  }
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv, formats: string[]) => Ajv;

/** The routes' body validators, compiled as src/http/route.ts compiles them. */
function bodyValidators(routes: readonly RouteDef[]): Map<string, ValidateFunction | null> {
  const ajv = addFormats(new Ajv({ allErrors: false, strict: true, useDefaults: true }), ['uuid', 'date-time']);
  return new Map(routes.map((r) => [`${r.method} ${r.path}`, r.body === undefined ? null : ajv.compile(r.body)]));
}

/** Whether the route's own validation lets this body through (a write that might then succeed). */
function bodyPasses(validate: ValidateFunction | null, body: Buffer | undefined, contentType: string | null): boolean {
  const text = body?.toString('utf8') ?? '';
  let value: unknown = {};
  if (text.trim() !== '') {
    if ((contentType ?? '').split(';')[0]!.trim().toLowerCase() !== 'application/json') return false;
    try {
      value = parseJson(text);
    } catch {
      return false;
    }
  }
  if (validate === null) return value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0;
  return validate(value) === true;
}

async function toWire(req: FuzzRequest, w: World, defects: ReturnType<typeof tokenDefects>, validators: Map<string, ValidateFunction | null>): Promise<Wire> {
  const ids = new Set<IdRole>();
  const convos = new Set<string>();
  let rawSegment = false;
  let path = '';
  for (const part of req.path) {
    if (typeof part === 'string') path += part;
    else if (part instanceof Ref) {
      named(part, ids, convos);
      path += encode(String(resolve(part, w)));
    } else {
      rawSegment = true;
      path += part.raw;
    }
  }
  const query = req.query
    .map((q) => {
      if ('raw' in q) return q.raw;
      named(q.value, ids, convos);
      return `${encode(q.key)}=${encode(String(resolve(q.value, w)))}`;
    })
    .join('&');
  if (query !== '') path += `?${query}`;
  path = path.slice(0, MAX_PATH);

  const headers: Record<string, string> = {};
  if (req.auth.kind === 'as') headers.authorization = `Bearer ${await w.token(req.auth.who)}`;
  else if (req.auth.kind === 'header') headers.authorization = req.auth.value;
  else {
    const h = await defects[req.auth.index]!.authorization(w.dids.alice);
    if (h !== undefined) headers.authorization = h;
  }
  if (req.contentType !== null) headers['content-type'] = req.contentType;

  let body: Buffer | undefined;
  if (req.body.kind !== 'none') {
    named(req.body.value, ids, convos);
    const text = JSON.stringify(resolve(req.body.value, w)) ?? 'null';
    body = req.body.kind === 'json' ? Buffer.from(text) : spoil(text, req.body.mangle);
  }
  const route = req.route === null ? undefined : validators.get(req.route);
  const mayWrite =
    route !== undefined && req.method === req.route!.split(' ')[0] && req.method !== 'GET' && req.auth.kind === 'as' && !rawSegment && bodyPasses(route, body, req.contentType);
  return { req, method: req.method, path, headers, body, ids, convos, mayWrite };
}

// ——— sending and checking ———

function send(w: World, agent: Agent, wire: Wire): Promise<Answer> {
  const url = new URL(w.app.url);
  return new Promise((resolvePromise, reject) => {
    const headers = { ...wire.headers };
    // Framing is always declared: Node sends a DELETE's body unframed unless told, and the broker
    // would then see the body as a second, garbled request (answered by Node's parser, not by it).
    if (wire.body !== undefined) {
      if (wire.req.chunked) headers['transfer-encoding'] = 'chunked';
      else headers['content-length'] = String(wire.body.length);
    }
    const r = request({ host: url.hostname, port: url.port, method: wire.method, path: wire.path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        resolvePromise({ status: res.statusCode ?? 0, headers: h, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    r.setTimeout(30_000, () => r.destroy(new Error('no answer within 30 s')));
    r.on('error', reject);
    if (wire.body !== undefined) r.write(wire.body);
    r.end();
  });
}

const shown = (s: string, n = 400) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);

export function describeWire(wire: Wire): string {
  const body = wire.body === undefined ? '(none)' : shown(JSON.stringify(wire.body.toString('latin1')));
  return `${wire.method} ${shown(wire.path, 300)}\n    headers: ${shown(JSON.stringify(wire.headers), 300)}${wire.req.chunked ? ' (chunked)' : ''}\n    body: ${body}`;
}

class FuzzFailure extends Error {}

const fail = (what: string, wire: Wire, a?: Answer): never => {
  throw new FuzzFailure(`${what}\n  request: ${describeWire(wire)}${a ? `\n  answer: ${a.status} ${a.headers.get('content-type') ?? ''} ${shown(a.text)}` : ''}`);
};

async function sendChecked(w: World, agent: Agent, wire: Wire, stats: FuzzStats): Promise<Answer> {
  let a: Answer;
  try {
    a = await send(w, agent, wire);
  } catch (err) {
    return fail(`no answer: ${(err as Error).message}`, wire);
  }
  if (a.status >= 500) fail('a 5xx', wire, a);
  let code = '';
  if (a.status >= 400 && wire.method !== 'HEAD') {
    if (!(a.headers.get('content-type') ?? '').startsWith('application/json')) fail('an error that is not application/json', wire, a);
    if (Buffer.byteLength(a.text) >= MAX_ERROR_BYTES) fail(`an error body of ${Buffer.byteLength(a.text)} bytes`, wire, a);
    let e: { error?: unknown; message?: unknown };
    try {
      e = JSON.parse(a.text) as typeof e;
    } catch {
      return fail('an error body that is not JSON', wire, a);
    }
    if (typeof e.error !== 'string' || !KNOWN_CODES.has(e.error)) fail('an unknown error code', wire, a);
    if (typeof e.message !== 'string' || e.message === '') fail('an error without a message', wire, a);
    code = ` ${e.error as string}`;
  }
  if (wire.method !== 'HEAD') {
    try {
      await w.app.checkAnswer(wire.method, w.app.url + wire.path, a.status, a.headers, a.text);
    } catch (err) {
      fail(`an answer /openapi.json does not document: ${(err as Error).message.slice(0, 300)}`, wire, a);
    }
  }
  const key = `${a.status}${code}`;
  stats.answers[key] = (stats.answers[key] ?? 0) + 1;
  return a;
}

/** What requests may change: rows anywhere, and (through the broker) objects in the bucket. */
interface Snapshot {
  rows: number;
  writes: number;
}

async function snapshot(w: World): Promise<Snapshot> {
  return { rows: await w.rows.mark(), writes: w.storeWrites.length };
}

async function changes(w: World, before: Snapshot, after: Snapshot): Promise<string | null> {
  if (after.rows !== before.rows) return `rows changed: ${(await w.rows.since(before.rows)).join(', ')}`;
  if (after.writes !== before.writes) return `the broker wrote to the bucket: ${w.storeWrites.slice(before.writes, after.writes).join('; ')}`;
  return null;
}

const refusedOrRead = (wire: Wire, a: Answer) => a.status >= 400 || wire.method === 'GET' || wire.method === 'HEAD' || wire.method === 'OPTIONS';

/** After a write succeeded: the fixtures it named are put back in their roles. */
async function restore(w: World, wire: Wire): Promise<void> {
  for (const role of wire.ids) await rebuild(w, role);
  if (wire.req.route?.includes('/convos/')) for (const c of wire.convos) await resetConvo(w, c as 'convo' | 'elsewhere' | 'none');
}

/** One request between snapshots of its own: refused, it must change nothing. */
async function alone(w: World, agent: Agent, wire: Wire, stats: FuzzStats): Promise<void> {
  const before = await snapshot(w);
  const a = await sendChecked(w, agent, wire, stats);
  if (refusedOrRead(wire, a)) {
    const changed = await changes(w, before, await snapshot(w));
    if (changed) fail(`a refused request changed something: ${changed}`, wire, a);
  } else {
    stats.written++;
    await restore(w, wire);
  }
}

async function runBatch(w: World, agent: Agent, wires: Wire[], stats: FuzzStats): Promise<void> {
  const batched = wires.filter((x) => !x.mayWrite);
  if (batched.length > 0) {
    const before = await snapshot(w);
    const answers = await Promise.all(batched.map((x) => sendChecked(w, agent, x, stats)));
    const wrote = batched.filter((x, i) => !refusedOrRead(x, answers[i]!));
    if (wrote.length === 0) {
      const changed = await changes(w, before, await snapshot(w));
      if (changed) {
        // Find the culprit: each request again, alone.
        for (const x of batched) await alone(w, agent, x, { ...stats, answers: {} });
        throw new FuzzFailure(`a batch of refused requests changed something (${changed}), and none does alone:\n  ${batched.map(describeWire).join('\n  ')}`);
      }
    } else {
      // A write the route's validation was expected to refuse succeeded: its changes are legitimate,
      // so the batch's refusals are checked again, one by one.
      stats.rechecked++;
      for (const x of wrote) await restore(w, x);
      for (const [i, x] of batched.entries()) if (answers[i]!.status >= 400) await alone(w, agent, x, { ...stats, answers: {} });
    }
  }
  for (const x of wires.filter((y) => y.mayWrite)) {
    stats.alone++;
    await alone(w, agent, x, stats);
  }
  stats.batches++;
  stats.cases += wires.length;
}

export interface FuzzOptions {
  runs: number;
  seed: number;
  /** fast-check's counterexample path: replay just the failing batch. */
  path?: string;
  onProgress?: (stats: FuzzStats) => void;
}

export interface FuzzResult {
  stats: FuzzStats;
  seconds: number;
  /** What failed and the request that failed it, or null. */
  failure: string | null;
  counterexamplePath: string | null;
}

/** Runs `runs` cases (rounded up to whole batches) against the broker; never throws for a failing case. */
export async function runFuzz(app: TestApp, o: FuzzOptions): Promise<FuzzResult> {
  const started = Date.now();
  const w = await createWorld(app);
  const routes = apiRoutes(app.config);
  const defects = tokenDefects(TEST_SECRET);
  const validators = bodyValidators(routes);
  const agent = new Agent({ keepAlive: true, maxSockets: BATCH });
  const stats: FuzzStats = { cases: 0, batches: 0, alone: 0, written: 0, rechecked: 0, answers: {} };
  let rebuilt = Date.now();
  const property = fc.asyncProperty(fc.array(requestArb(routes, defects.length), { minLength: BATCH, maxLength: BATCH }), async (reqs) => {
    // The broker's clock keeps up with the bucket's: URLs it signs must not be born expired. The
    // fixtures are renewed well before their commit window (an hour by default) runs out.
    app.clock.set(Date.now());
    if (Date.now() - rebuilt > FIXTURE_LIFE_MS) {
      for (const role of ID_ROLES) await rebuild(w, role);
      rebuilt = Date.now();
    }
    const wires = [];
    for (const r of reqs) wires.push(await toWire(r, w, defects, validators));
    await runBatch(w, agent, wires, stats);
    o.onProgress?.(stats);
  });
  try {
    const details = await fc.check(property, { seed: o.seed, numRuns: Math.ceil(o.runs / BATCH), endOnFailure: true, path: o.path });
    const err = details.errorInstance;
    const failure = details.failed ? (err instanceof FuzzFailure ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)) : null;
    return { stats, seconds: (Date.now() - started) / 1000, failure, counterexamplePath: details.counterexamplePath };
  } finally {
    agent.destroy();
  }
}
