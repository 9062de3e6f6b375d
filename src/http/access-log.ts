// Outermost middleware: the request id, the access log line and the HTTP metrics. It runs on every
// request, so it builds nothing a disabled log level would throw away: the per-request child logger
// is made only when something logs while serving the request.
import { randomUUID } from 'node:crypto';
import { Stream } from 'node:stream';
import type { Context, Next } from 'koa';
import type { AppContext } from '../context.js';
import type { Logger } from '../log.js';

/** A caller's id is kept when it is at most 128 of these characters; anything else gets a new one. */
const WELL_FORMED_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdFrom(header: string | undefined): string {
  return header !== undefined && WELL_FORMED_ID.test(header) ? header : randomUUID();
}

/** The request's logger: the application's, bound to the request id (made on first use, then kept). */
export function requestLog(ctx: Context, log: Logger): Logger {
  const state = ctx.state as { requestId?: string; log?: Logger };
  if (state.requestId === undefined) return log;
  return (state.log ??= log.child({ request_id: state.requestId }));
}

/** The AppContext a route's handler sees: the same parts, with the request's logger. */
export function requestScoped(app: AppContext, ctx: Context): AppContext {
  return Object.create(app, { log: { get: () => requestLog(ctx, app.log) } }) as AppContext;
}

const isJsonBody = (body: unknown) =>
  body !== null && typeof body === 'object' && !Buffer.isBuffer(body) && !(body instanceof Stream);

export function accessLog(app: AppContext) {
  const { log, metrics } = app;
  return async function logRequest(ctx: Context, next: Next): Promise<void> {
    const started = process.hrtime.bigint();
    const requestId = requestIdFrom(ctx.get('x-request-id') || undefined);
    ctx.state.requestId = requestId;
    ctx.set('x-request-id', requestId);
    try {
      await next();
    } finally {
      // Serialized here rather than by Koa's respond (the same JSON.stringify), so the byte count is known.
      if (isJsonBody(ctx.body)) ctx.body = JSON.stringify(ctx.body);
      // The route pattern, never the raw path: ids are not labels, and a path may carry anything.
      const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      const status = ctx.status;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const labels = { method: ctx.method, route, status: String(status) };
      metrics.httpRequests.inc(labels);
      metrics.httpDuration.observe(labels, seconds);
      if (log.isLevelEnabled('info')) {
        // No URL, query string or header: a token or a presigned URL never reaches the log.
        log.info(
          {
            request_id: requestId,
            method: ctx.method,
            route,
            status,
            ms: Math.round(seconds * 1e4) / 10,
            bytes: ctx.response.length ?? 0,
            did: (ctx.state.caller as { did?: string } | undefined)?.did || undefined,
          },
          'request',
        );
      }
    }
  };
}
