// Every way an Authorization header can be wrong (README, "API reference", Authentication), as
// the authorization matrix and the fuzz send them: each is refused with 401 and the code named.
import { mintToken, type TokenClaims } from './tokens.js';

export interface TokenDefect {
  name: string;
  code: 'AuthRequired' | 'InvalidToken';
  /** The Authorization header to send for this subject (undefined: none at all). */
  authorization(sub: string): Promise<string | undefined>;
}

const DAY = 86_400;
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

/**
 * The defects against a broker with this secret and (when set) JWT_ISSUER. Each token is otherwise
 * valid: the right audience and issuer, a fresh iat, a short exp, a DID subject.
 */
export function tokenDefects(secret: string, issuer?: string): TokenDefect[] {
  const minted = (claims: TokenClaims, sub?: string) => async (s: string) => `Bearer ${await mintToken(secret, sub ?? s, { iss: issuer, ...claims })}`;
  return [
    { name: 'no token', code: 'AuthRequired', authorization: async () => undefined },
    { name: 'a malformed header', code: 'AuthRequired', authorization: async () => 'Basic dXNlcjpwYXNzd29yZA==' },
    { name: 'a malformed token', code: 'InvalidToken', authorization: async () => 'Bearer abc.def.ghi' },
    { name: 'expired', code: 'InvalidToken', authorization: minted({ expiresIn: -120 }) },
    { name: 'not yet valid', code: 'InvalidToken', authorization: minted({ notBefore: 300 }) },
    { name: 'a wrong aud', code: 'InvalidToken', authorization: minted({ aud: 'someone-else' }) },
    { name: 'a wrong iss', code: 'InvalidToken', authorization: minted({ iss: 'https://evil.example' }) },
    {
      name: 'alg none',
      code: 'InvalidToken',
      authorization: async (sub) => {
        const now = Math.floor(Date.now() / 1000);
        const claims = { sub, aud: 'mls-blob-broker', iat: now, exp: now + 600, ...(issuer ? { iss: issuer } : {}) };
        return `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
      },
    },
    { name: 'HS512 with the right secret', code: 'InvalidToken', authorization: minted({ alg: 'HS512' }) },
    { name: 'a sub that is not a DID', code: 'InvalidToken', authorization: (s) => minted({}, `${s.slice(8, 16)}@example.com`)(s) },
    { name: 'no iat', code: 'InvalidToken', authorization: minted({ issuedAt: null }) },
    { name: 'a lifetime of 30 days', code: 'InvalidToken', authorization: minted({ expiresIn: 30 * DAY }) },
    { name: 'issued 2 days ago', code: 'InvalidToken', authorization: minted({ issuedAt: -2 * DAY, expiresIn: 600 }) },
  ];
}
