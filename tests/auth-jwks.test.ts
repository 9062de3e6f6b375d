// JWKS failures (issue 11, item 2): everything about fetching the keys is 503 AuthUnavailable with
// Retry-After, only the token's own defects are 401, and a failing refetch rides on the last good
// keys for a bounded time. The JWKS is a local HTTP server the test controls.
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { exportJWK, SignJWT } from 'jose';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createTokenVerifier } from '../src/auth.js';
import type { JwksOptions } from '../src/jwks.js';
import { did } from './helpers/tokens.js';

const test = suite('auth: a JWKS that fails');
const alice = did('alice');
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
let jwk: Record<string, unknown>;
/** What the JWKS server does with the next request. */
let behaviour: (res: ServerResponse) => void;
let server: Server;
let url: string;
let fetches = 0;

test.before(async () => {
  jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  behaviour = serveKeys;
  server = createServer((_req, res) => {
    fetches++;
    behaviour(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks.json`;
});
test.after(() => {
  server.closeAllConnections();
  server.close();
});

const serveKeys = (res: ServerResponse) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ keys: [jwk] }));
};
const sign = (kid = 'k1') =>
  new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid }).setSubject(alice).setAudience('mls-blob-broker').setIssuedAt().setExpirationTime('5m').sign(privateKey);
const verifier = (jwks: JwksOptions = {}) =>
  createTokenVerifier({ secret: null, jwksUrl: url, publicKey: null, issuer: null, audience: 'mls-blob-broker', maxAgeSeconds: 86_400 }, [], { jwks: { timeoutMs: 500, ...jwks } });

async function refusal(p: Promise<unknown>): Promise<{ status?: number; code?: string; retryAfter?: number }> {
  try {
    await p;
  } catch (err) {
    return err as { status?: number; code?: string; retryAfter?: number };
  }
  assert.unreachable('verified');
  return {};
}

test('a JWKS answering 503, a redirect, invalid JSON, a non-key-set, or nothing in time is 503 AuthUnavailable with Retry-After', async () => {
  const failures: [string, (res: ServerResponse) => void][] = [
    ['503', (res) => ((res.statusCode = 503), res.end('down'))],
    ['302', (res) => (res.writeHead(302, { location: url }), res.end())],
    ['invalid JSON', (res) => res.end('{"keys": [')],
    ['not a key set', (res) => res.end('{"keys": "none"}')],
    ['no answer in time', () => {}],
  ];
  for (const [name, fail] of failures) {
    behaviour = fail;
    const e = await refusal((await verifier()).verify(await sign()));
    assert.is(e.status, 503, `${name}: ${JSON.stringify(e)}`);
    assert.is(e.code, 'AuthUnavailable', name);
    assert.ok((e.retryAfter ?? 0) > 0, `${name}: Retry-After`);
  }
  behaviour = serveKeys;
});

test("with good keys, only the token's defects are 401: an unknown kid, another key's signature", async () => {
  const v = await verifier({ cooldownMs: 0 });
  assert.is((await v.verify(await sign())).did, alice);
  const unknown = await refusal(v.verify(await sign('k-unknown')));
  assert.is(unknown.status, 401);
  assert.is(unknown.code, 'InvalidToken');
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const forged = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setSubject(alice).setAudience('mls-blob-broker').setIssuedAt().setExpirationTime('5m').sign(other);
  const bad = await refusal(v.verify(forged));
  assert.is(bad.status, 401);
  assert.is(bad.code, 'InvalidToken');
});

test('when a refetch fails, the last good keys serve for a bounded time, then 503; a recovered JWKS is used again', async () => {
  let now = 1_000_000;
  const stale: number[] = [];
  const v = await verifier({ now: () => now, refreshAfterMs: 600_000, maxStaleMs: 3_600_000, cooldownMs: 30_000, onStale: (_e, age) => stale.push(age) });
  behaviour = serveKeys;
  assert.is((await v.verify(await sign())).did, alice);
  behaviour = (res) => ((res.statusCode = 503), res.end());
  now += 11 * 60_000; // due for a refresh, which fails
  const before = fetches;
  assert.is((await v.verify(await sign())).did, alice, 'the last good keys still verify');
  assert.is(fetches, before + 1, 'a refetch was tried');
  assert.is(stale.length, 1);
  assert.is((await v.verify(await sign())).did, alice);
  assert.is(fetches, before + 1, 'no second refetch within the cooldown');
  now += 60 * 60_000; // past refresh + the stale bound
  const e = await refusal(v.verify(await sign()));
  assert.is(e.status, 503);
  assert.is(e.code, 'AuthUnavailable');
  behaviour = serveKeys;
  now += 60_000;
  assert.is((await v.verify(await sign())).did, alice, 'the JWKS is back');
});

test.run();
