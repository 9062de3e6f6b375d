// CORS for browser clients calling the API (the bucket's own CORS is set by setup-bucket).
// Exact origins only; credentials travel in the Authorization header, never cookies.
import type { Context, Next } from 'koa';

export function cors(origins: readonly string[]) {
  const allowed = new Set(origins);
  return async function corsHeaders(ctx: Context, next: Next): Promise<void> {
    const origin = ctx.get('origin');
    if (!origin || !allowed.has(origin)) return next();
    ctx.vary('Origin');
    ctx.set('Access-Control-Allow-Origin', origin);
    if (ctx.method === 'OPTIONS' && ctx.get('access-control-request-method')) {
      ctx.set('Access-Control-Allow-Methods', 'GET, POST, PUT, DELETE');
      ctx.set('Access-Control-Allow-Headers', 'authorization, content-type');
      ctx.set('Access-Control-Max-Age', '600');
      ctx.status = 204;
      return;
    }
    // x-request-id: a browser client can read the id to quote (it is in error bodies too).
    ctx.set('Access-Control-Expose-Headers', 'Retry-After, Location, x-request-id');
    return next();
  };
}
