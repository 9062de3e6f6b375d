// REDIS_URL: the per-DID request limit holds across instances on a real redis-server; while Redis
// is unreachable each instance limits on its own (the insurance limiter), counted and logged once.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestApp, testEnv, type TestApp } from '../helpers/harness.js';
import { did } from '../helpers/tokens.js';
import { startRedis } from './helpers/services.js';

const test = suite('shared rate limits through Redis');
const alice = did('alice');
const bob = did('bob');
let redis: Awaited<ReturnType<typeof startRedis>>;

test.before(async () => {
  redis = await startRedis();
});
test.after(() => redis?.stop());

/** Two brokers on one database and bucket (and Redis, when given), with their log lines. */
async function twoInstances(extra: Record<string, string>): Promise<{ apps: TestApp[]; logs: string[][] }> {
  const env = await testEnv({ RATE_LIMIT_PER_MINUTE: '60', ...extra });
  const logs: string[][] = [[], []];
  const apps = await Promise.all(
    [0, 1].map((i) => startTestApp({ sharedEnv: env, log: pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (logs[i]!.push(String(c)), cb()) })) })),
  );
  return { apps, logs };
}

/** `n` requests from `as`, alternating between the instances; the statuses in order. */
async function burst(apps: TestApp[], as: string, n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) statuses.push((await apps[i % apps.length]!.call('GET', '/api/v1/limits', { as })).status);
  return statuses;
}

test('without REDIS_URL each instance counts on its own: two instances allow twice the burst', async () => {
  const { apps } = await twoInstances({});
  try {
    const s = await burst(apps, alice, 32);
    assert.is(s.filter((x) => x === 200).length, 30, s.join(' '));
  } finally {
    for (const a of apps) await a.close();
  }
});

test('with REDIS_URL the limit holds across two instances: one burst in all, then 429 with Retry-After', async () => {
  const { apps } = await twoInstances({ REDIS_URL: redis.url });
  try {
    const s = await burst(apps, alice, 32);
    assert.equal(s.slice(0, 15), Array(15).fill(200), s.join(' '));
    assert.equal(s.slice(15), Array(17).fill(429), s.join(' '));
    const limited = await apps[1]!.call('GET', '/api/v1/limits', { as: alice });
    assert.is(limited.body.error, 'RateLimited');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.is((await apps[0]!.call('GET', '/api/v1/limits', { as: bob })).status, 200, 'another DID has its own count');
    const metrics = await (await fetch(`${apps[0]!.url}/metrics`)).text();
    assert.match(metrics, /^broker_rate_limit_insurance_total 0$/m, 'Redis answered every time');
  } finally {
    for (const a of apps) await a.close();
  }
});

test('Redis unreachable: requests are still served, limited per instance by the insurance limiter, counted and logged once', async () => {
  const gone = await startRedis();
  const { apps, logs } = await twoInstances({ REDIS_URL: gone.url });
  try {
    assert.is((await apps[0]!.call('GET', '/api/v1/limits', { as: bob })).status, 200, 'shared while Redis is up');
    await gone.stop();
    const s = await burst(apps, alice, 40);
    // Each instance's insurance limiter allows its own burst: 15 each, as without REDIS_URL.
    assert.is(s.filter((x) => x === 200).length, 30, s.join(' '));
    assert.is(s.filter((x) => x === 429).length, 10, s.join(' '));
    for (const [i, app] of apps.entries()) {
      const text = await (await fetch(`${app.url}/metrics`)).text();
      const n = Number(/^broker_rate_limit_insurance_total (\d+)$/m.exec(text)?.[1]);
      assert.is(n, 20, `instance ${i} judged its 20 requests alone`);
      const warned = logs[i]!.filter((l) => l.includes('Redis unreachable'));
      assert.is(warned.length, 1, `instance ${i} logged the outage once: ${warned.length}`);
    }
  } finally {
    for (const a of apps) await a.close();
  }
});

test.run();
