// A development token signed with JWT_SECRET, as `npm run token` and `npm run demo` mint them.
import { createSecretKey } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Config } from '../src/config.js';

export async function mintDevToken(config: Readonly<Config>, did: string, ttlSeconds = 3600): Promise<string> {
  if (config.jwt.secret === null) throw new Error('development tokens are signed with JWT_SECRET; this configuration verifies with a public key instead');
  let jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(did).setAudience(config.jwt.audience).setIssuedAt().setExpirationTime(`${ttlSeconds}s`);
  if (config.jwt.issuer !== null) jwt = jwt.setIssuer(config.jwt.issuer);
  return jwt.sign(createSecretKey(Buffer.from(config.jwt.secret, 'utf8')));
}
