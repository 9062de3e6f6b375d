// One real PostgreSQL and one R2 emulator per test run, started on first use and stopped by
// tests/run.ts. Every suite gets a fresh database (cloned from a migrated template) and a bucket
// of its own, so suites never see each other's rows or objects.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer } from '../../src/app.js';
import { ManualClock, type Clock } from '../../src/clock.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createContext, type AppContext } from '../../src/context.js';
import { migrate } from '../../src/db/migrate.js';
import { createSql, type Sql } from '../../src/db/sql.js';
import { createLogger, type Logger } from '../../src/log.js';
import { OpenApiChecker } from './openapi.js';
import { mintToken } from './tokens.js';

export const TEST_SECRET = 'test-secret-test-secret-test-secret-0123456789';
export const TEST_SERVICE = 'did:web:delivery.test';
export const TEST_ACCESS_KEY = 'test-access-key';
export const TEST_SECRET_KEY = 'test-secret-access-key';
const BUCKETS = Array.from({ length: 96 }, (_, i) => `test-bucket-${String(i + 1).padStart(2, '0')}`);
const TEMPLATE = 'broker_template';

interface Shared {
  root: string;
  databaseUrl: string;
  adminSql: Sql;
  storeEndpoint: string;
  stop(): Promise<void>;
}

let shared: Promise<Shared> | undefined;
let nextBucket = 0;

async function startShared(): Promise<Shared> {
  const root = await mkdtemp(path.join(tmpdir(), 'broker-test-'));
  const stops: (() => Promise<void>)[] = [];
  let databaseUrl = process.env.TEST_DATABASE_URL;
  if (!databaseUrl) {
    const { startEmbeddedPostgres } = await import('../../src/dev/embedded-postgres.js');
    const pg = await startEmbeddedPostgres(path.join(root, 'postgres'), { fast: true });
    stops.push(pg.stop);
    databaseUrl = pg.url;
  }
  const adminSql = createSql(databaseUrl, { max: 2 });
  await adminSql`drop database if exists ${adminSql(TEMPLATE)}`;
  await adminSql`create database ${adminSql(TEMPLATE)}`;
  const templateSql = createSql(withDatabase(databaseUrl, TEMPLATE), { max: 1 });
  await migrate(templateSql);
  await templateSql.end();

  const { startR2Emulator } = await import('../../src/dev/r2-emulator.js');
  const r2 = await startR2Emulator({
    persistDir: path.join(root, 'r2'),
    buckets: BUCKETS,
    accessKeyId: TEST_ACCESS_KEY,
    secretAccessKey: TEST_SECRET_KEY,
  });
  stops.push(r2.stop);
  return {
    root,
    databaseUrl,
    adminSql,
    storeEndpoint: r2.endpoint,
    async stop() {
      await adminSql.end({ timeout: 1 }).catch(() => {});
      for (const stop of stops.reverse()) await stop().catch(() => {});
      await rm(root, { recursive: true, force: true });
    },
  };
}

export function harness(): Promise<Shared> {
  shared ??= startShared();
  return shared;
}

export async function stopHarness(): Promise<void> {
  if (shared) await (await shared).stop();
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.href;
}

/** A fresh database cloned from the migrated template; returns its URL. */
export async function freshDatabase(): Promise<string> {
  const h = await harness();
  const name = `t_${randomBytes(6).toString('hex')}`;
  await h.adminSql`create database ${h.adminSql(name)} template ${h.adminSql(TEMPLATE)}`;
  return withDatabase(h.databaseUrl, name);
}

/** A bucket no other suite uses. */
export function freshBucket(): string {
  const b = BUCKETS[nextBucket++];
  if (b === undefined) throw new Error('the harness ran out of buckets; raise BUCKETS');
  return b;
}

export interface TestEnvOptions {
  env?: Record<string, string>;
  clock?: Clock;
  /** Sees every statement the broker sends to PostgreSQL. */
  onQuery?: (statement: string) => void;
  /** The complete environment (from testEnv) to share a database and bucket with other brokers. */
  sharedEnv?: Record<string, string>;
  /** The broker's logger (default: LOG_LEVEL's, on stdout); a suite passes one to read the lines. */
  log?: Logger;
  /** Process and event-loop metrics, as the server has them. */
  defaultMetrics?: boolean;
}

/** The environment a suite's broker is configured from. */
export async function testEnv(env: Record<string, string> = {}): Promise<Record<string, string>> {
  const h = await harness();
  return {
    NODE_ENV: 'test',
    DATABASE_URL: await freshDatabase(),
    R2_ENDPOINT: h.storeEndpoint,
    R2_BUCKET: freshBucket(),
    R2_ACCESS_KEY_ID: TEST_ACCESS_KEY,
    R2_SECRET_ACCESS_KEY: TEST_SECRET_KEY,
    JWT_SECRET: TEST_SECRET,
    SERVICE_DIDS: TEST_SERVICE,
    RECONCILE_CRON: 'off',
    RECONCILE_AUDIT_CRON: 'off',
    // Suites drive many requests from one DID on a clock that barely moves; the limit has its own test.
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // Dozens of brokers share the suite's one PostgreSQL: fewer connections each than the default 10.
    DATABASE_POOL_SIZE: '8',
    ...env,
  };
}

export interface TestApp {
  /** The environment the broker was configured from (to start a broker process on the same database and bucket). */
  env: Record<string, string>;
  ctx: AppContext;
  config: Readonly<Config>;
  clock: ManualClock;
  url: string;
  token(did: string, claims?: Parameters<typeof mintToken>[2]): Promise<string>;
  /** JSON request against the broker; `as` mints a token for that DID. Every answer is checked against /openapi.json. */
  call(method: string, path: string, options?: CallOptions): Promise<CallResult>;
  /** Throws when an answer of this broker does not match its /openapi.json. */
  checkAnswer(method: string, url: string, status: number, headers: Headers, text: string): Promise<void>;
  close(): Promise<void>;
}

export interface CallOptions {
  as?: string;
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
  redirect?: 'manual' | 'follow';
}

export interface CallResult {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  text: string;
}

/** A broker on a fresh database and bucket, listening on a free port, with a manual clock. */
export async function startTestApp(options: TestEnvOptions = {}): Promise<TestApp> {
  const env = options.sharedEnv ?? (await testEnv(options.env));
  const config = loadConfig(env);
  const clock = (options.clock as ManualClock | undefined) ?? new ManualClock(Date.now());
  const log = options.log ?? createLogger(config.logLevel);
  const ctx = await createContext(config, {
    clock,
    log,
    migrate: false,
    onQuery: options.onQuery,
    defaultMetrics: options.defaultMetrics ?? false,
  });
  const server: Server = createServer(ctx).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const token = (did: string, claims?: Parameters<typeof mintToken>[2]) => mintToken(TEST_SECRET, did, claims);
  let checker: Promise<OpenApiChecker> | undefined;
  const checkAnswer = async (method: string, u: string, status: number, headers: Headers, text: string) => {
    checker ??= fetch(`${url}/openapi.json`).then(async (r) => new OpenApiChecker((await r.json()) as Record<string, unknown>));
    (await checker).check(method, u, status, headers, text);
  };
  return {
    env,
    ctx,
    config,
    clock,
    url,
    token,
    checkAnswer,
    async call(method, p, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      const bearer = o.token ?? (o.as ? await token(o.as) : undefined);
      if (bearer) headers.authorization = `Bearer ${bearer}`;
      let body: string | undefined;
      if (o.body !== undefined) {
        body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await fetch(url + p, { method, headers, body, redirect: o.redirect ?? 'manual' });
      const text = await res.text();
      if (res.type !== 'opaqueredirect' && (o.redirect ?? 'manual') === 'manual') await checkAnswer(method, url + p, res.status, res.headers, text);
      let parsed: unknown = undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await ctx.close();
    },
  };
}
