// Every non-2xx leaves as {"error", "message"[, "details"], "request_id"}. Unknown errors
// become a generic 500 and a log line with the cause; nothing internal reaches the client.
import type { Context, Next } from 'koa';
import { AppError, clientErrorFrom, databaseUnavailable, internalError, methodNotAllowed, routeNotFound, storageUnavailable } from '../errors.js';
import { isConnectionError } from '../db/sql.js';
import { StoreRejected, StoreUnavailable } from '../store/store.js';
import type { Logger } from '../log.js';
import { ClientClosed } from './body.js';
import { scopeOf } from './request-scope.js';

/** nginx's status for a request its client abandoned; recorded, never sent. */
export const CLIENT_CLOSED = 499;

export function toAppError(err: unknown): AppError | null {
  if (err instanceof AppError) return err;
  if (err instanceof StoreUnavailable || err instanceof StoreRejected) return storageUnavailable();
  if (isConnectionError(err)) return databaseUnavailable();
  const status = (err as { status?: number; expose?: boolean })?.status;
  // Koa throws http-errors (400 for bad URI encoding, …): safe to show.
  if (typeof status === 'number' && status >= 400 && status < 500 && (err as { expose?: boolean }).expose) {
    return clientErrorFrom(status, (err as Error).message);
  }
  return null;
}

export function errorHandler(log: Logger) {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.body === undefined || ctx.body === null) {
        if (ctx.status === 404) throw routeNotFound();
        // The router answered 405/501 itself and set Allow; give it our error body.
        if (ctx.status === 405 || ctx.status === 501) {
          throw methodNotAllowed();
        }
      }
    } catch (err) {
      if (err instanceof ClientClosed) {
        // Nobody is left to answer, and nothing of ours failed: no error log, no 5xx in the metrics.
        log.debug({ method: ctx.method, path: ctx.path }, 'client closed the connection mid-body');
        ctx.status = CLIENT_CLOSED;
        return;
      }
      const appError = toAppError(err);
      if (appError === null) {
        scopeOf(ctx).log.error({ err, method: ctx.method, path: ctx.path }, 'request failed');
        ctx.app.emit('error', err, ctx);
      } else if (appError.status >= 500) {
        scopeOf(ctx).log.warn({ err, code: appError.code, method: ctx.method, path: ctx.path }, 'dependency failure');
      }
      const e = appError ?? internalError();
      ctx.status = e.status;
      // request_id lets a user quote the answer; operators find its log lines by it.
      const requestId = scopeOf(ctx).id;
      ctx.body =
        e.details === undefined
          ? { error: e.code, message: e.message, request_id: requestId }
          : { error: e.code, message: e.message, details: e.details, request_id: requestId };
      if (e.retryAfter !== undefined) ctx.set('Retry-After', String(e.retryAfter));
    }
  };
}
