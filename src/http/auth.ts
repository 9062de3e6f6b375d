// Reading the bearer token of a request (README, "API reference", Authentication); verifying it is src/auth.ts.
import { authRequired } from '../errors.js';

/** The bearer token of an Authorization header, or an AuthRequired error. */
export function bearerToken(header: string | undefined): string {
  if (header === undefined || header === '') throw authRequired();
  const m = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)\s*$/i.exec(header);
  if (!m) throw authRequired('The Authorization header must be "Bearer <JWT>".');
  return m[1]!;
}
