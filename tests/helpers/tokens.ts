import { createSecretKey } from 'node:crypto';
import { SignJWT } from 'jose';

export interface TokenClaims {
  aud?: string | string[];
  iss?: string;
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number | null;
  /** Seconds from now for iat (negative: issued in the past); null for no iat. Default now. */
  issuedAt?: number | null;
  /** Seconds from now for nbf; none by default. */
  notBefore?: number;
  alg?: string;
}

/** An HS256 token for tests (the broker's default audience unless told otherwise). */
export async function mintToken(secret: string, sub: string, claims: TokenClaims = {}): Promise<string> {
  let jwt = new SignJWT({})
    .setProtectedHeader({ alg: claims.alg ?? 'HS256' })
    .setSubject(sub)
    .setAudience(claims.aud ?? 'mls-blob-broker');
  if (claims.issuedAt !== null) jwt = jwt.setIssuedAt(Math.floor(Date.now() / 1000) + (claims.issuedAt ?? 0));
  if (claims.expiresIn !== null) jwt = jwt.setExpirationTime(Math.floor(Date.now() / 1000) + (claims.expiresIn ?? 600));
  if (claims.notBefore !== undefined) jwt = jwt.setNotBefore(Math.floor(Date.now() / 1000) + claims.notBefore);
  if (claims.iss) jwt = jwt.setIssuer(claims.iss);
  return jwt.sign(createSecretKey(Buffer.from(secret, 'utf8')));
}

export const did = (seed: string): string => {
  // did:plc: + 24 chars of base32 (a-z, 2-7), derived from a readable seed.
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let out = '';
  for (let i = 0; i < 24; i++) out += alphabet[(seed.charCodeAt(i % seed.length) * (i + 7)) % 32];
  return `did:plc:${out}`;
};
