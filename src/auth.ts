// Who is calling: JWT verification (README, "API reference", Authentication). Keys are imported once at start:
// jose re-imports raw secret bytes on every call, which doubles the cost of a verification.
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { importJWK, jwtVerify, type JWK, type JWTVerifyGetKey, type JWTPayload } from 'jose';
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

export async function createTokenVerifier(jwt: JwtConfig, serviceDids: readonly string[], sources: { jwks?: JwksOptions } = {}): Promise<TokenVerifier> {
  const { key, algorithms } = await resolveKey(jwt, sources.jwks ?? {});
  const services = new Set(serviceDids);
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
  return {
    async verify(token: string): Promise<Caller> {
      let payload: JWTPayload;
      try {
        payload =
          typeof key === 'function'
            ? (await jwtVerify(token, key, options)).payload
            : (await jwtVerify(token, key as KeyObject, options)).payload;
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
      return { did: sub, isService: services.has(sub) };
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
