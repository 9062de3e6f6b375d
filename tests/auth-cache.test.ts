// Verified tokens are remembered for JWT_CACHE_SECONDS (README, "Performance"), and only while the
// verdict cannot change: expiry is answered as before, invalid tokens are never kept, and the cache
// is bounded.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createTokenVerifier, type VerifyOutcome } from '../src/auth.js';
import type { JwtConfig } from '../src/config.js';
import { TEST_SECRET } from './helpers/harness.js';
import { did, mintToken } from './helpers/tokens.js';

const test = suite('auth: the verified-token cache');
const alice = did('alice');
const jwt: JwtConfig = { secret: TEST_SECRET, jwksUrl: null, publicKey: null, issuer: null, audience: 'mls-blob-broker', maxAgeSeconds: 3600, cacheSeconds: 60 };

/** A verifier on a clock the test moves, recording each verify()'s outcome. */
async function verifier(config: JwtConfig = jwt, cacheEntries?: number) {
  const outcomes: VerifyOutcome[] = [];
  let offsetMs = 0;
  const v = await createTokenVerifier(config, [], { observe: (o) => outcomes.push(o), now: () => Date.now() + offsetMs, cacheEntries });
  return {
    outcomes,
    advance: (seconds: number) => void (offsetMs += seconds * 1000),
    verify: (token: string) => v.verify(token),
    async refusal(token: string): Promise<string> {
      try {
        await v.verify(token);
      } catch (err) {
        assert.is((err as { code?: string }).code, 'InvalidToken');
        return (err as Error).message;
      }
      throw new Error('the token was accepted');
    },
  };
}

test('a token seen again within JWT_CACHE_SECONDS is not verified again; after it, it is', async () => {
  const v = await verifier();
  const token = await mintToken(TEST_SECRET, alice);
  assert.is((await v.verify(token)).did, alice);
  assert.is((await v.verify(token)).did, alice);
  v.advance(59);
  await v.verify(token);
  assert.equal(v.outcomes, ['verified', 'cached', 'cached']);
  v.advance(2);
  await v.verify(token);
  assert.equal(v.outcomes.slice(3), ['verified'], 'remembered for 60 s at most');
});

test('JWT_CACHE_SECONDS=0 verifies every time', async () => {
  const v = await verifier({ ...jwt, cacheSeconds: 0 });
  const token = await mintToken(TEST_SECRET, alice);
  await v.verify(token);
  await v.verify(token);
  assert.equal(v.outcomes, ['verified', 'verified']);
});

test('a remembered token that expires is refused as expired', async () => {
  const v = await verifier();
  const token = await mintToken(TEST_SECRET, alice, { expiresIn: 20 });
  await v.verify(token);
  v.advance(19);
  await v.verify(token);
  assert.equal(v.outcomes, ['verified', 'cached']);
  v.advance(2 + 30); // past exp and the 30 s clock tolerance
  assert.match(await v.refusal(token), /expired/);
  assert.is(v.outcomes[2], 'refused');
});

test('refused tokens are never remembered', async () => {
  const v = await verifier();
  const good = await mintToken(TEST_SECRET, alice);
  const forged = `${good.slice(0, good.lastIndexOf('.'))}.${'A'.repeat(43)}`;
  await v.refusal(forged);
  await v.refusal(forged);
  await v.refusal(await mintToken(TEST_SECRET, 'not-a-did'));
  assert.equal(v.outcomes, ['refused', 'refused', 'refused']);
});

test('the cache is bounded: the oldest token goes first', async () => {
  const v = await verifier(jwt, 2);
  const [a, b, c] = await Promise.all([did('a1'), did('b2'), did('c3')].map((d) => mintToken(TEST_SECRET, d)));
  for (const t of [a!, b!, c!]) await v.verify(t);
  await v.verify(c!);
  await v.verify(b!);
  await v.verify(a!);
  assert.equal(v.outcomes, ['verified', 'verified', 'verified', 'cached', 'cached', 'verified']);
});

test('the caller a remembered token stands for cannot be changed by whoever receives it', async () => {
  const v = await verifier();
  const token = await mintToken(TEST_SECRET, alice);
  const first = await v.verify(token);
  assert.throws(() => ((first as { did: string }).did = did('mallory')));
  assert.is((await v.verify(token)).did, alice);
});

test.run();
