// npm run setup-bucket: the rules it applies, and a plain refusal where the store cannot take them.
import { runScript } from './helpers/processes.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/config.js';
import { corsRules, lifecycleRules } from '../src/store/bucket-rules.js';
import { testEnv } from './helpers/harness.js';

const test = suite('setup-bucket');

const run = (env: Record<string, string>) => runScript('scripts/setup-bucket.ts', [], env);

test('CORS allows the signed headers of a presigned PUT and exposes ETag', () => {
  const rules = corsRules({ corsOrigins: ['https://app.example.com'] });
  assert.equal(rules, [
    {
      AllowedOrigins: ['https://app.example.com'],
      AllowedMethods: ['PUT', 'GET', 'HEAD'],
      AllowedHeaders: ['content-type', 'content-md5', 'if-none-match'],
      ExposeHeaders: ['ETag'],
      MaxAgeSeconds: 3600,
    },
  ]);
  assert.equal(corsRules({ corsOrigins: [] }), []);
});

test('lifecycle expires m/ one day after retention and aborts multipart uploads after a day', () => {
  const rules = lifecycleRules({ retentionDays: 30, commitWindowSeconds: 3600 });
  assert.equal(rules[0], { ID: 'expire-messages-after-retention', Status: 'Enabled', Filter: { Prefix: 'm/' }, Expiration: { Days: 31 } });
  assert.equal(rules[1]?.AbortIncompleteMultipartUpload, { DaysAfterInitiation: 1 });
  // A three-day commit window: an object may be committed three days after it was written.
  assert.is(lifecycleRules({ retentionDays: 30, commitWindowSeconds: 3 * 86400 })[0]?.Expiration?.Days, 33);
  assert.equal(
    lifecycleRules({ retentionDays: 30, commitWindowSeconds: 3 * 86400 })[1]?.AbortIncompleteMultipartUpload,
    { DaysAfterInitiation: 3 },
    'a multipart upload is never aborted before its commit deadline',
  );
  assert.is(lifecycleRules(loadConfig({ NODE_ENV: 'test' }))[0]?.Expiration?.Days, 31);
});

test('against the R2 emulator it says plainly that bucket configuration is not implemented', async () => {
  const env = await testEnv({ CORS_ORIGINS: 'https://app.example.com' });
  const r = await run(env);
  assert.is.not(r.code, 0);
  assert.ok(/does not implement PutBucketCors/.test(r.stderr), r.stderr);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.not.ok(/\n\s+at /.test(r.stderr), 'no stack trace');
});

test('an unreachable store is one line and a non-zero exit', async () => {
  const env = await testEnv({ R2_ENDPOINT: 'http://127.0.0.1:9' });
  const r = await run(env);
  assert.is.not(r.code, 0);
  assert.ok(/cannot apply/.test(r.stderr), r.stderr);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
});

test.run();
