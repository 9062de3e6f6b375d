// The /dev/ page exists only in fully embedded development; the browser test drives it for real.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/config.js';
import { devPagePolicy } from '../src/dev/dev-page.js';
import { startTestApp } from './helpers/harness.js';

const test = suite('the /dev/ page: development only');

test('only a fully embedded development broker on loopback serves it', () => {
  assert.is(loadConfig({}).devPage, true, 'npm start with nothing set');
  assert.is(loadConfig({ JWT_SECRET: 'a-secret-of-at-least-32-bytes-0123456789' }).devPage, true, 'its own key, still fully embedded');
  assert.is(loadConfig({ DATABASE_URL: 'postgres://x@127.0.0.1/db', JWT_SECRET: 'a-secret-of-at-least-32-bytes-0123456789' }).devPage, false, 'a real database');
  assert.is(loadConfig({ HOST: '0.0.0.0', JWT_SECRET: 'a-secret-of-at-least-32-bytes-0123456789' }).devPage, false, 'reachable from outside');
  const production = {
    NODE_ENV: 'production',
    DATABASE_URL: 'postgres://x@127.0.0.1/db',
    R2_ENDPOINT: 'https://account.r2.cloudflarestorage.com',
    R2_ACCESS_KEY_ID: 'key',
    R2_SECRET_ACCESS_KEY: 'secret',
    JWT_SECRET: 'a-secret-of-at-least-32-bytes-0123456789',
  };
  assert.is(loadConfig(production).devPage, false);
});

for (const env of [{}, { NODE_ENV: 'production' }] as Record<string, string>[]) {
  test(`a broker on a real database and bucket (${env.NODE_ENV ?? 'test'}) answers 404 under /dev/`, async () => {
    const app = await startTestApp({ env });
    try {
      for (const p of ['/dev', '/dev/', '/dev/page.js', '/dev/session.json']) {
        const r = await app.call('GET', p);
        assert.is(r.status, 404, p);
        assert.not.match(r.text, 'token');
      }
    } finally {
      await app.close();
    }
  });
}

test('its policy allows the page itself and the local bucket, and nothing inline', () => {
  const policy = devPagePolicy('http://127.0.0.1:4567');
  assert.match(policy, "default-src 'none'");
  assert.match(policy, "connect-src 'self' http://127.0.0.1:4567");
  assert.match(policy, "script-src 'self' 'wasm-unsafe-eval'");
  assert.not.match(policy, 'unsafe-inline');
});

test.run();
