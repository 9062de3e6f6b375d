// Headers on every answer. The API serves JSON to programs: nothing it sends should be sniffed
// into another type, framed, allowed to load anything, or kept by a cache (answers carry presigned
// URLs and per-caller state).
import type { Context, Next } from 'koa';

export const CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'";

/** Set before the rest runs, so error answers (including the error handler's) carry them too. */
export async function securityHeaders(ctx: Context, next: Next): Promise<void> {
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  ctx.set('Cache-Control', 'no-store');
  return next();
}
