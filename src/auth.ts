// Who is calling: JWT verification (README, "API reference", Authentication). Keys are imported once at start:
// jose re-imports raw secret bytes on every call, which doubles the cost of a verification.
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import type { JWK, JWTVerifyGetKey, JWTPayload } from 'jose';
// jose's subpaths: the package's root loads every algorithm and format (~50 modules) at start.
import { importJWK } from 'jose/key/import';
import { jwtVerify } from 'jose/jwt/verify';
import type { JwtConfig } from './config.js';
import { isDid } from './config.js';
import { authUnavailable, invalidToken, type AppError } from './errors.js';
import { JwksUnavailable, remoteKeySet, type JwksOptions } from './jwks.js';

export interface Caller {
  did: string;
  /** Listed in SERVICE_DIDS: the delivery service making server-side calls. */
  isService: boolean;
}

export interface TokenVerifier {
  verify(token: string): Promise<Caller>;
}

/** What a verification came to: for the metrics, and for tests to see the cache at work. */
export type VerifyOutcome = 'verified' | 'cached' | 'refused';

export interface VerifierOptions {
  jwks?: JwksOptions;
  /** Called once per verify() with its outcome. */
  observe?: (outcome: VerifyOutcome) => void;
  /** Milliseconds since the epoch (tests move it); jose is given the same clock. */
  now?: () => number;
  /** Most tokens remembered at once (default 10 000). */
  cacheEntries?: number;
}

const ASYMMETRIC = ['ES256', 'EdDSA', 'RS256'] as const;
const CLOCK_TOLERANCE_SECONDS = 30;

type KeyInput = KeyObject | Uint8Array | JWTVerifyGetKey;

async function resolveKey(jwt: JwtConfig, jwks: JwksOptions): Promise<{ key: KeyInput; algorithms: string[] }> {
  if (jwt.secret !== null) {
    return { key: createSecretKey(Buffer.from(jwt.secret, 'utf8')), algorithms: ['HS256'] };
  }
  if (jwt.jwksUrl !== null) {
    // Made once: it caches keys, refetches on an unknown kid with a cooldown, and rides out a
    // failing JWKS on the last good keys for a while.
    return { key: remoteKeySet(jwt.jwksUrl, jwks), algorithms: [...ASYMMETRIC] };
  }
  if (jwt.publicKey !== null) {
    const text = jwt.publicKey.replace(/\\n/g, '\n').trim();
    if (text.startsWith('{')) {
      const jwk = JSON.parse(text) as JWK;
      const alg = jwk.alg ?? algorithmFor(createPublicKey({ key: jwk as never, format: 'jwk' }));
      return { key: (await importJWK(jwk, alg)) as unknown as KeyObject, algorithms: [alg] };
    }
    const key = createPublicKey(text);
    return { key, algorithms: [algorithmFor(key)] };
  }
  throw new Error('no JWT key configured');
}

/** The one algorithm a public key may be used with: a key never verifies under another. */
function algorithmFor(key: KeyObject): string {
  const type = key.asymmetricKeyType;
  if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  if (type === 'ed25519') return 'EdDSA';
  if (type === 'rsa') return 'RS256';
  throw new Error(`JWT_PUBLIC_KEY must be a P-256, Ed25519 or RSA public key (got ${type ?? 'unknown'})`);
}

/**
 * Tokens that verified, for a short while: a client sends the same token with every request, and
 * checking its signature again costs more CPU than the rest of a small route (jose verifies HS256
 * through WebCrypto, ~70 µs; README, "Performance"). Only a token that passed every check is kept,
 * under its exact text, and only while that verdict cannot change: until JWT_CACHE_SECONDS from now
 * or its exp, whichever comes first (an accepted token's exp is never later than iat plus
 * JWT_MAX_AGE_SECONDS). After that it is verified again in full, so an expiry is answered as one.
 * What the cache does change: a key withdrawn from the JWKS stops being honoured for tokens already
 * seen within JWT_CACHE_SECONDS, not at once.
 * Bounded: the oldest entry goes when it is full. Invalid tokens are never kept.
 */
class VerifiedTokens {
  private readonly entries = new Map<string, { caller: Caller; untilMs: number }>();

  constructor(private readonly maxEntries: number) {}

  get(token: string, nowMs: number): Caller | undefined {
    const e = this.entries.get(token);
    if (e === undefined) return undefined;
    if (nowMs < e.untilMs) return e.caller;
    this.entries.delete(token);
    return undefined;
  }

  set(token: string, caller: Caller, untilMs: number): void {
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { caller, untilMs });
  }
}

export async function createTokenVerifier(jwt: JwtConfig, serviceDids: readonly string[], sources: VerifierOptions = {}): Promise<TokenVerifier> {
  const { key, algorithms } = await resolveKey(jwt, sources.jwks ?? {});
  const services = new Set(serviceDids);
  const now = sources.now ?? Date.now;
  const observe = sources.observe ?? (() => {});
  const cacheMs = (jwt.cacheSeconds ?? 0) * 1000;
  const cache = cacheMs > 0 ? new VerifiedTokens(sources.cacheEntries ?? 10_000) : null;
  const options = {
    algorithms,
    audience: jwt.audience,
    issuer: jwt.issuer ?? undefined,
    requiredClaims: ['exp', 'sub', 'iat'],
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    // now − iat beyond this (plus the tolerance) is refused however far away exp is; an iat in the
    // future beyond the tolerance is refused too.
    maxTokenAge: jwt.maxAgeSeconds,
  };
  const check = async (token: string, nowMs: number): Promise<{ caller: Caller; payload: JWTPayload }> => {
    let payload: JWTPayload;
    const o = { ...options, currentDate: new Date(nowMs) };
    try {
      payload = typeof key === 'function' ? (await jwtVerify(token, key, o)).payload : (await jwtVerify(token, key as KeyObject, o)).payload;
    } catch (err) {
      throw tokenError(err);
    }
    // A token minted to live longer than the limit is refused outright, even while young: a
    // leaked one must not stay usable for years (jose checks only the age, now − iat).
    if (payload.exp! - payload.iat! > jwt.maxAgeSeconds) {
      throw invalidToken(`The token lives longer than the ${jwt.maxAgeSeconds} s this broker accepts (exp − iat).`);
    }
    const sub = payload.sub;
    if (typeof sub !== 'string' || !isDid(sub)) throw invalidToken('The token subject is not a DID.');
    return { caller: Object.freeze({ did: sub, isService: services.has(sub) }), payload };
  };
  return {
    async verify(token: string): Promise<Caller> {
      const nowMs = now();
      const cached = cache?.get(token, nowMs);
      if (cached !== undefined) {
        observe('cached');
        return cached;
      }
      let result;
      try {
        result = await check(token, nowMs);
      } catch (err) {
        observe('refused');
        throw err;
      }
      observe('verified');
      if (cache !== null) {
        // Without the clock tolerance: near the edges the full check decides.
        const untilMs = Math.min(nowMs + cacheMs, result.payload.exp! * 1000);
        if (untilMs > nowMs) cache.set(token, result.caller, untilMs);
      }
      return result.caller;
    },
  };
}

function tokenError(err: unknown): AppError {
  if (err instanceof JwksUnavailable) return authUnavailable();
  const code = (err as { code?: string })?.code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return (err as { claim?: string }).claim === 'iat'
        ? invalidToken('The token was issued longer ago than this broker accepts; get a fresh one.')
        : invalidToken('The token has expired.');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (err as { claim?: string }).claim ?? 'a';
      return invalidToken(`The token's "${claim}" claim is missing or not accepted.`);
    }
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return invalidToken("The token's algorithm is not accepted.");
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return invalidToken('The token signature does not verify.');
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return invalidToken('No key matches the token.');
    default:
      // jose's own errors describe the token; anything else (the JWKS fetch failing) is an outage,
      // and answering 401 would make clients throw away good tokens.
      return code?.startsWith('ERR_J') ? invalidToken('The token is malformed.') : authUnavailable();
  }
}
