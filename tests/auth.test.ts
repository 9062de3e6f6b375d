// Every token defect the API reference (README) lists answers 401 with the right code, and a good token passes.
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createTokenVerifier } from '../src/auth.js';
import { startTestApp, TEST_SECRET, TEST_SERVICE, type TestApp } from './helpers/harness.js';
import { did, mintToken } from './helpers/tokens.js';

const test = suite('auth: bearer JWTs');
let app: TestApp;
const alice = did('alice');

test.before(async () => {
  app = await startTestApp();
});
test.after(() => app.close());

const limits = (headers: Record<string, string> = {}) => app.call('GET', '/api/v1/limits', { headers });
const withToken = (t: string) => limits({ authorization: `Bearer ${t}` });

test('a valid token passes', async () => {
  const r = await withToken(await mintToken(TEST_SECRET, alice));
  assert.is(r.status, 200, r.text);
});

test('no Authorization header is 401 AuthRequired', async () => {
  const r = await limits();
  assert.is(r.status, 401);
  assert.is(r.body.error, 'AuthRequired');
});

test('a malformed Authorization header is 401 AuthRequired', async () => {
  for (const h of ['Basic abc', 'Bearer', 'Bearer not-a-jwt', 'token abc.def.ghi']) {
    const r = await limits({ authorization: h });
    assert.is(r.status, 401, h);
    assert.is(r.body.error, 'AuthRequired', h);
  }
});

test('token defects are 401 InvalidToken', async () => {
  const cases: [string, string][] = [
    ['bad signature', await mintToken('another-secret-another-secret-another-secret', alice)],
    ['expired', await mintToken(TEST_SECRET, alice, { expiresIn: -120 })],
    ['no exp', await mintToken(TEST_SECRET, alice, { expiresIn: null })],
    ['wrong aud', await mintToken(TEST_SECRET, alice, { aud: 'someone-else' })],
    ['sub not a DID', await mintToken(TEST_SECRET, 'alice@example.com')],
    ['sub a malformed plc DID', await mintToken(TEST_SECRET, 'did:plc:short')],
    ['HS512 not allowed', await mintToken(TEST_SECRET, alice, { alg: 'HS512' })],
    ['garbage', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'],
  ];
  const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify({ sub: alice, aud: 'mls-blob-broker', exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url');
  cases.push(['alg none', `${header}.${payload}.`]);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  cases.push([
    'ES256 where HS256 is configured',
    await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject(alice).setAudience('mls-blob-broker').setIssuedAt().setExpirationTime('5m').sign(privateKey),
  ]);
  for (const [name, token] of cases) {
    const r = await withToken(token);
    assert.is(r.status, 401, name);
    assert.is(r.body.error, 'InvalidToken', `${name}: ${r.text}`);
  }
});

test('lifetime: iat is required; a token older than JWT_MAX_AGE_SECONDS, or minted to live longer, is 401', async () => {
  const DAY = 86_400;
  const refused: [string, Parameters<typeof mintToken>[2]][] = [
    ['no iat', { issuedAt: null }],
    ['issued 25 h ago, still unexpired', { issuedAt: -(DAY + 3600), expiresIn: 600 }],
    ['minted to live two days (exp − iat > max age), though brand new', { expiresIn: 2 * DAY }],
    ['expiring in 2100', { expiresIn: Math.floor(Date.UTC(2100, 0, 1) / 1000) - Math.floor(Date.now() / 1000) }],
    ['issued in the future beyond the tolerance', { issuedAt: 300, expiresIn: 900 }],
  ];
  for (const [name, claims] of refused) {
    const r = await withToken(await mintToken(TEST_SECRET, alice, claims));
    assert.is(r.status, 401, name);
    assert.is(r.body.error, 'InvalidToken', `${name}: ${r.text}`);
  }
  const old = await withToken(await mintToken(TEST_SECRET, alice, { issuedAt: -(DAY + 3600), expiresIn: 600 }));
  assert.match(old.body.message, /issued longer ago/);
  // Exactly the maximum lifetime, and a token 23 h into a 24 h life, pass.
  assert.is((await withToken(await mintToken(TEST_SECRET, alice, { expiresIn: DAY }))).status, 200);
  assert.is((await withToken(await mintToken(TEST_SECRET, alice, { issuedAt: -23 * 3600, expiresIn: 3600 }))).status, 200);
  // A shorter JWT_MAX_AGE_SECONDS applies to both rules.
  const v = await createTokenVerifier({ ...app.config.jwt, maxAgeSeconds: 600 }, []);
  for (const claims of [{ expiresIn: 1200 }, { issuedAt: -900, expiresIn: 60 }]) {
    try {
      await v.verify(await mintToken(TEST_SECRET, alice, claims));
      assert.unreachable(JSON.stringify(claims));
    } catch (err) {
      assert.is((err as { code?: string }).code, 'InvalidToken', String(err));
    }
  }
});

test('a token expired within the 30 s tolerance still passes', async () => {
  const r = await withToken(await mintToken(TEST_SECRET, alice, { expiresIn: -10 }));
  assert.is(r.status, 200);
});

test('the issuer is enforced when configured', async () => {
  const v = await createTokenVerifier({ secret: TEST_SECRET, jwksUrl: null, publicKey: null, issuer: 'https://auth.example', audience: 'mls-blob-broker', maxAgeSeconds: 86_400 }, []);
  try {
    await v.verify(await mintToken(TEST_SECRET, alice, { iss: 'https://evil.example' }));
    assert.unreachable('accepted a wrong issuer');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'InvalidToken');
  }
  assert.is((await v.verify(await mintToken(TEST_SECRET, alice, { iss: 'https://auth.example' }))).did, alice);
});

test('SERVICE_DIDS marks a caller as a service', async () => {
  const v = await createTokenVerifier(app.config.jwt, app.config.serviceDids);
  assert.is((await v.verify(await mintToken(TEST_SECRET, TEST_SERVICE))).isService, true);
  assert.is((await v.verify(await mintToken(TEST_SECRET, alice))).isService, false);
});

test('a PEM public key verifies its own algorithm only', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const v = await createTokenVerifier({ secret: null, jwksUrl: null, publicKey: pem, issuer: null, audience: 'mls-blob-broker', maxAgeSeconds: 86_400 }, []);
  const good = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA' }).setSubject(alice).setAudience('mls-blob-broker').setIssuedAt().setExpirationTime('5m').sign(createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' })));
  assert.is((await v.verify(good)).did, alice);
  try {
    await v.verify(await mintToken(TEST_SECRET, alice));
    assert.unreachable('accepted HS256 with an EdDSA key');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'InvalidToken');
  }
});

test('a JWKS URL verifies ES256 tokens by kid, and an unreachable JWKS is 503, not 401', async () => {
  const { exportJWK } = await import('jose');
  const { createServer } = await import('node:http');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const sign = (kid: string) =>
    new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid }).setSubject(alice).setAudience('mls-blob-broker').setIssuedAt().setExpirationTime('5m').sign(privateKey);
  try {
    const v = await createTokenVerifier({ secret: null, jwksUrl: `http://127.0.0.1:${port}/jwks.json`, publicKey: null, issuer: null, audience: 'mls-blob-broker', maxAgeSeconds: 86_400 }, []);
    assert.is((await v.verify(await sign('k1'))).did, alice);
    for (const token of [await sign('unknown'), await mintToken(TEST_SECRET, alice)]) {
      try {
        await v.verify(token);
        assert.unreachable('accepted');
      } catch (err) {
        assert.is((err as { code?: string }).code, 'InvalidToken');
      }
    }
  } finally {
    server.close();
  }
  const down = await createTokenVerifier({ secret: null, jwksUrl: `http://127.0.0.1:${port}/jwks.json`, publicKey: null, issuer: null, audience: 'mls-blob-broker', maxAgeSeconds: 86_400 }, []);
  try {
    await down.verify(await sign('k1'));
    assert.unreachable('verified without keys');
  } catch (err) {
    assert.is((err as { status?: number }).status, 503, String(err));
    assert.is((err as { code?: string }).code, 'AuthUnavailable');
  }
});

test('a JWK public key (JSON) verifies its algorithm', async () => {
  const { exportJWK } = await import('jose');
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const v = await createTokenVerifier({ secret: null, jwksUrl: null, publicKey: JSON.stringify(await exportJWK(publicKey)), issuer: null, audience: 'mls-blob-broker', maxAgeSeconds: 86_400 }, []);
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject(alice).setAudience('mls-blob-broker').setIssuedAt().setExpirationTime('5m').sign(privateKey);
  assert.is((await v.verify(token)).did, alice);
});

test('npm run token mints tokens this broker accepts; --service mints the first service DID', async () => {
  const { runScript } = await import('./helpers/processes.js');
  const env = { JWT_SECRET: TEST_SECRET, SERVICE_DIDS: `${TEST_SERVICE},did:web:other.test` };
  const v = await createTokenVerifier(app.config.jwt, app.config.serviceDids);
  const user = await runScript('scripts/token.ts', [alice, '--ttl', '60'], env);
  assert.is(user.code, 0, user.stderr);
  assert.equal(await v.verify(user.stdout.trim()), { did: alice, isService: false });
  const service = await runScript('scripts/token.ts', ['--service'], env);
  assert.equal(await v.verify(service.stdout.trim()), { did: TEST_SERVICE, isService: true });
  const bad = await runScript('scripts/token.ts', ['alice'], env);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /not a DID/);
});

test.run();
