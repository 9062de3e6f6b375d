// Each request's scope, one object: its id, its logger, its caller and when it arrived. The
// outermost middleware opens it and, once the answer is settled, closes it with the access log line
// and the HTTP metrics. Open scopes are the requests in flight, which a crash handler names. It runs
// on every request, so it builds nothing a disabled log level would throw away: the child logger is
// made only when something logs.
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

export class RequestScope {
  /** The authenticated caller's DID, once the route chain knows it. */
  did: string | undefined;
  /** process.hrtime.bigint() when the request arrived. */
  readonly startedAt = process.hrtime.bigint();
  private childLog: Logger | undefined;

  constructor(
    readonly id: string,
    readonly method: string,
    readonly path: string,
    private readonly appLog: Logger,
  ) {}

  /** The application's logger bound to the request id (made on first use, then kept). */
  get log(): Logger {
    return (this.childLog ??= this.appLog.child({ request_id: this.id }));
  }

  seconds(): number {
    return Number(process.hrtime.bigint() - this.startedAt) / 1e9;
  }
}

/**
 * The requests in flight, for the crash log: an error nobody caught is logged with them. A register
 * rather than AsyncLocalStorage, which could name the one request an error came from: on Node 20 and
 * 22 any use of it turns on promise hooks for every promise in the process, about 5 µs per await,
 * which made a request cost the broker 30–50 % more CPU (scripts/bench/RESULTS.md).
 */
const inFlight = new Set<RequestScope>();
const IN_FLIGHT_LOGGED = 20;

/** The scope of the request `ctx` serves. */
export function scopeOf(ctx: Context): RequestScope {
  const scope = (ctx.state as { scope?: RequestScope }).scope;
  if (scope === undefined) throw new Error('requestScope is not the outermost middleware');
  return scope;
}

/** What may be logged of the requests in flight (no headers, no body): how many, and the oldest 20. */
export function requestsInFlight(): { count: number; requests: { method: string; path: string; did?: string; requestId: string; ms: number }[] } {
  const requests = [];
  for (const s of inFlight) {
    if (requests.length === IN_FLIGHT_LOGGED) break;
    requests.push({ method: s.method, path: s.path, did: s.did, requestId: s.id, ms: Math.round(s.seconds() * 1e4) / 10 });
  }
  return { count: inFlight.size, requests };
}

/** The AppContext a route's handler sees: the same parts, with the request's logger. */
export function requestScoped(app: AppContext, scope: RequestScope): AppContext {
  return Object.create(app, { log: { get: () => scope.log } }) as AppContext;
}

const isJsonBody = (body: unknown) =>
  body !== null && typeof body === 'object' && !Buffer.isBuffer(body) && !(body instanceof Stream);

/** Outermost middleware: everything below runs inside the request's scope. */
export function requestScope(app: AppContext) {
  const { log, metrics } = app;
  return async function openScope(ctx: Context, next: Next): Promise<void> {
    const scope = new RequestScope(requestIdFrom(ctx.get('x-request-id') || undefined), ctx.method, ctx.path, log);
    ctx.state.scope = scope;
    ctx.set('x-request-id', scope.id);
    inFlight.add(scope);
    try {
      await next();
    } finally {
      inFlight.delete(scope);
      closeScope(ctx, scope);
    }
  };

  function closeScope(ctx: Context, scope: RequestScope): void {
    // Serialized here rather than by Koa's respond (the same JSON.stringify), so the byte count is known.
    if (isJsonBody(ctx.body)) ctx.body = JSON.stringify(ctx.body);
    // The route pattern, never the raw path: ids are not labels, and a path may carry anything.
    const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
    const status = ctx.status;
    const seconds = scope.seconds();
    const labels = { method: ctx.method, route, status: String(status) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, seconds);
    if (log.isLevelEnabled('info')) {
      // No URL, query string or header: a token or a presigned URL never reaches the log.
      log.info(
        { request_id: scope.id, method: ctx.method, route, status, ms: Math.round(seconds * 1e4) / 10, bytes: ctx.response.length ?? 0, did: scope.did },
        'request',
      );
    }
  }
}
