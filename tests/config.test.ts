import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, DEV_JWT_SECRET, loadConfig, quietAwsSdkNodeWarning } from '../src/config.js';

const test = suite('config');

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

test('an empty environment is a working development configuration', () => {
  const c = loadConfig({});
  assert.is(c.port, 3000);
  assert.is(c.host, '127.0.0.1');
  assert.is(c.databaseUrl, null);
  assert.is(c.store.endpoint, null);
  assert.is(c.store.bucket, 'catbird-messages');
  assert.is(c.store.region, 'auto');
  assert.is(c.jwt.secret, DEV_JWT_SECRET);
  assert.is(c.jwt.audience, 'mls-blob-broker');
  assert.equal([...c.serviceDids], ['did:web:localhost']);
  assert.is(c.uploadUrlTtlSeconds, 300);
  assert.is(c.downloadUrlTtlSeconds, 300);
  assert.is(c.retentionDays, 30);
  assert.is(c.membership, 'enforce');
  assert.ok(Object.isFrozen(c));
});

test('every problem is reported at once', () => {
  const p = problems({
    PORT: 'eighty',
    MAX_RECIPIENTS: '0',
    MEMBERSHIP: 'maybe',
    DELETE_AFTER_ACK: 'perhaps',
    SERVICE_DIDS: 'not-a-did',
    R2_ENDPOINT: 'ftp://x',
    UPLOAD_URL_TTL_SECONDS: '600',
    COMMIT_WINDOW_SECONDS: '300',
    JWT_SECRET: 'short',
  });
  assert.ok(p.length >= 8, p.join('\n'));
  for (const name of ['PORT', 'MAX_RECIPIENTS', 'MEMBERSHIP', 'DELETE_AFTER_ACK', 'SERVICE_DIDS', 'R2_ENDPOINT', 'UPLOAD_URL_TTL_SECONDS', 'JWT_SECRET']) {
    assert.ok(p.some((x) => x.includes(name)), `no problem names ${name}: ${p.join('; ')}`);
  }
});

test('production needs https for the JWKS and the bucket; development may use http', () => {
  const env = {
    NODE_ENV: 'production',
    DATABASE_URL: 'postgres://u:p@db.example/broker',
    R2_ACCESS_KEY_ID: 'real-key-id',
    R2_SECRET_ACCESS_KEY: 'real-secret-key',
  };
  const plain = problems({ ...env, R2_ENDPOINT: 'http://r2.example', JWT_JWKS_URL: 'http://auth.example/jwks.json' });
  assert.ok(plain.some((x) => x.includes('https://') && x.includes('R2_ENDPOINT')), plain.join('; '));
  assert.ok(plain.some((x) => x.includes('https://') && x.includes('JWT_JWKS_URL')), plain.join('; '));
  assert.equal(problems({ ...env, R2_ENDPOINT: 'https://r2.example', JWT_JWKS_URL: 'https://auth.example/jwks.json' }), []);
  assert.equal(problems({ ...env, R2_ENDPOINT: 'http://127.0.0.1:9000', JWT_JWKS_URL: 'http://localhost:8080/jwks.json' }), [], 'loopback crosses no network');
  assert.equal(problems({ ...env, NODE_ENV: 'development', R2_ENDPOINT: 'http://127.0.0.1:9000', JWT_JWKS_URL: 'http://127.0.0.1:1/jwks.json' }), []);
});

test('production refuses development defaults, all reasons together', () => {
  const p = problems({ NODE_ENV: 'production' });
  assert.ok(p.some((x) => x.includes('DATABASE_URL')));
  assert.ok(p.some((x) => x.includes('R2_ENDPOINT')));
  assert.ok(p.some((x) => x.includes('R2_ACCESS_KEY_ID')));
  assert.ok(p.some((x) => x.includes('JWT')));
});

test('production refuses the development JWT secret and the emulator keys', () => {
  const p = problems({
    NODE_ENV: 'production',
    DATABASE_URL: 'postgres://db/x',
    R2_ENDPOINT: 'https://acct.r2.cloudflarestorage.com',
    R2_ACCESS_KEY_ID: 'dev-access-key-id',
    R2_SECRET_ACCESS_KEY: 'dev-secret-access-key-never-use-in-production',
    JWT_SECRET: DEV_JWT_SECRET,
  });
  assert.ok(p.some((x) => x.includes('development JWT_SECRET')), p.join('; '));
  assert.ok(p.some((x) => x.includes('emulator keys')), p.join('; '));
});

test('a complete production configuration loads', () => {
  const c = loadConfig({
    NODE_ENV: 'production',
    DATABASE_URL: 'postgres://db/x',
    R2_ENDPOINT: 'https://acct.r2.cloudflarestorage.com',
    R2_ACCESS_KEY_ID: 'AKIAREAL',
    R2_SECRET_ACCESS_KEY: 'real-secret',
    JWT_JWKS_URL: 'https://auth.example.com/.well-known/jwks.json',
    SERVICE_DIDS: 'did:web:delivery.example.com',
  });
  assert.is(c.host, '0.0.0.0');
  assert.is(c.jwt.secret, null);
  assert.equal([...c.serviceDids], ['did:web:delivery.example.com']);
});

test('two JWT key sources at once are refused', () => {
  const p = problems({ JWT_SECRET: 'x'.repeat(40), JWT_JWKS_URL: 'https://a.example/jwks' });
  assert.ok(p.some((x) => x.includes('only one of')));
});

test('an external bucket needs its keys', () => {
  const p = problems({ R2_ENDPOINT: 'https://acct.r2.cloudflarestorage.com' });
  assert.ok(p.some((x) => x.includes('R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY')));
});



test('a message size that needs more parts than /complete can list is refused', async () => {
  const p = problems({ MAX_MESSAGE_BYTES: String(20 * 1024 ** 3), PART_SIZE_BYTES: String(5 * 1024 ** 2) });
  assert.ok(p.some((x) => x.includes('MAX_MESSAGE_BYTES')), p.join('; '));
});

test('a /complete body for the most parts with the longest ETags fits the 256 KiB body limit', async () => {
  const { MAX_ETAG_CHARS, MAX_PARTS } = await import('../src/config.js');
  const { MAX_BODY_BYTES } = await import('../src/http/body.js');
  const parts = Array.from({ length: MAX_PARTS }, (_, i) => ({ part_number: i + 1, etag: 'e'.repeat(MAX_ETAG_CHARS) }));
  assert.ok(Buffer.byteLength(JSON.stringify({ parts })) < MAX_BODY_BYTES);
});

test('an invalid RECONCILE_CRON is reported at start, with the others', () => {
  const p = problems({ RECONCILE_CRON: '*/10 * * *  banana', PORT: 'x' });
  assert.ok(p.some((x) => x.includes('RECONCILE_CRON')), p.join('; '));
  assert.ok(p.some((x) => x.includes('PORT')));
  assert.is(loadConfig({ RECONCILE_CRON: 'off' }).reconcileCron, null);
});

test('the development JWT secret and service DID are only for a fully embedded broker on loopback', () => {
  const real = { DATABASE_URL: 'postgres://db/x', R2_ENDPOINT: 'https://acct.r2.cloudflarestorage.com', R2_ACCESS_KEY_ID: 'k', R2_SECRET_ACCESS_KEY: 's' };
  const cases: Record<string, string>[] = [{ HOST: '0.0.0.0' }, { DATABASE_URL: 'postgres://db/x' }, real, { ...real, NODE_ENV: 'test' }];
  for (const env of cases) {
    const p = problems(env);
    assert.ok(p.some((x) => x.includes('set a JWT key')), `${JSON.stringify(env)}: ${p.join('; ')}`);
  }
  const withKey = loadConfig({ ...real, JWT_SECRET: 'k'.repeat(40) });
  assert.equal([...withKey.serviceDids], [], 'no default service DID outside local development');
  assert.is(loadConfig({ HOST: '127.0.0.1' }).jwt.secret, DEV_JWT_SECRET);
  assert.is(loadConfig({ HOST: 'localhost' }).jwt.secret, DEV_JWT_SECRET);
});
test('database pooling: DATABASE_PREPARE, DATABASE_DIRECT_URL and MIGRATE_ON_START are read and checked', () => {
  const base = { DATABASE_URL: 'postgres://pgbouncer:6432/x', JWT_SECRET: 'k'.repeat(40) };
  const d = loadConfig(base);
  assert.is(d.databasePrepare, true);
  assert.is(d.databaseDirectUrl, null);
  assert.is(d.migrateOnStart, true);
  const c = loadConfig({ ...base, DATABASE_PREPARE: 'false', DATABASE_DIRECT_URL: 'postgres://db:5432/x', MIGRATE_ON_START: 'false' });
  assert.is(c.databasePrepare, false);
  assert.is(c.databaseDirectUrl, 'postgres://db:5432/x');
  assert.is(c.migrateOnStart, false);
  const p = problems({ ...base, DATABASE_PREPARE: 'maybe', DATABASE_DIRECT_URL: 'mysql://db/x' });
  assert.ok(p.some((x) => x.includes('DATABASE_PREPARE')), p.join('; '));
  assert.ok(p.some((x) => x.includes('DATABASE_DIRECT_URL must start')), p.join('; '));
  assert.ok(problems({ DATABASE_DIRECT_URL: 'postgres://db/x' }).some((x) => x.includes('DATABASE_DIRECT_URL needs DATABASE_URL')));
});
test('DATABASE_POOL_SIZE: 10 connections by default, a whole number from 1 to 1000', () => {
  assert.is(loadConfig({}).databasePoolSize, 10);
  assert.is(loadConfig({ DATABASE_POOL_SIZE: '4' }).databasePoolSize, 4);
  assert.is(loadConfig({ DATABASE_POOL_SIZE: '1000' }).databasePoolSize, 1000);
  for (const bad of ['0', '-1', '2.5', 'ten', '1001']) {
    assert.ok(problems({ DATABASE_POOL_SIZE: bad }).some((x) => x.includes('DATABASE_POOL_SIZE')), bad);
  }
});
test('REDIS_URL is read and must be a redis URL', () => {
  assert.is(loadConfig({}).redisUrl, null);
  assert.is(loadConfig({ REDIS_URL: 'redis://cache:6379' }).redisUrl, 'redis://cache:6379');
  assert.is(loadConfig({ REDIS_URL: 'rediss://user:pw@cache:6380/0' }).redisUrl, 'rediss://user:pw@cache:6380/0');
  assert.ok(problems({ REDIS_URL: 'http://cache' }).some((x) => x.includes('REDIS_URL')));
});

test('MAX_BYTES_PER_DAY: 10 GiB by default, 0 turns the quota off, anything else a whole number of bytes', () => {
  assert.is(loadConfig({}).maxBytesPerDay, 10 * 1024 ** 3);
  assert.is(loadConfig({ MAX_BYTES_PER_DAY: '0' }).maxBytesPerDay, 0);
  assert.is(loadConfig({ MAX_BYTES_PER_DAY: '1048576' }).maxBytesPerDay, 1048576);
  for (const bad of ['-1', '1.5', '10GiB', String(2 ** 53)]) {
    assert.ok(problems({ MAX_BYTES_PER_DAY: bad }).some((x) => x.includes('MAX_BYTES_PER_DAY')), bad);
  }
});

test('production shows the AWS SDK\'s Node deprecation warning; development and tests hide it', () => {
  const production: NodeJS.ProcessEnv = { NODE_ENV: 'production' };
  quietAwsSdkNodeWarning(production);
  assert.is(production.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED, undefined);
  for (const nodeEnv of [undefined, 'development', 'test']) {
    const env: NodeJS.ProcessEnv = nodeEnv ? { NODE_ENV: nodeEnv } : {};
    quietAwsSdkNodeWarning(env);
    assert.is(env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED, 'true');
  }
});

test('RECONCILE_AUDIT_CRON: daily by default, "off" or a cron expression', () => {
  assert.is(loadConfig({}).reconcileAuditCron, '45 3 * * *');
  assert.is(loadConfig({ RECONCILE_AUDIT_CRON: 'off' }).reconcileAuditCron, null);
  assert.is(loadConfig({ RECONCILE_AUDIT_CRON: '0 * * * *' }).reconcileAuditCron, '0 * * * *');
  assert.ok(problems({ RECONCILE_AUDIT_CRON: 'daily' }).some((x) => x.includes('RECONCILE_AUDIT_CRON')));
});
test.run();
