// First middleware: every non-2xx leaves as {"error", "message"[, "details"]}. Unknown errors
// become a generic 500 and a log line with the cause; nothing internal reaches the client.
import type { Context, Next } from 'koa';
import { AppError, databaseUnavailable, storageUnavailable, type ErrorCode } from '../errors.js';
import { isConnectionError } from '../db/sql.js';
import { StoreRejected, StoreUnavailable } from '../store/store.js';
import type { Logger } from '../log.js';

const BY_STATUS: Record<number, ErrorCode> = {
  400: 'InvalidRequest',
  401: 'AuthRequired',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
};

export function toAppError(err: unknown): AppError | null {
  if (err instanceof AppError) return err;
  if (err instanceof StoreUnavailable || err instanceof StoreRejected) return storageUnavailable();
  if (isConnectionError(err)) return databaseUnavailable();
  const status = (err as { status?: number; expose?: boolean })?.status;
  // Koa throws http-errors (400 for bad URI encoding, …): safe to show.
  if (typeof status === 'number' && status >= 400 && status < 500 && (err as { expose?: boolean }).expose) {
    const code = BY_STATUS[status] ?? 'InvalidRequest';
    const message = status === 405 ? 'This method is not allowed on this route.' : (err as Error).message;
    return new AppError(status, code, message);
  }
  return null;
}

export function errorHandler(log: Logger) {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.body === undefined || ctx.body === null) {
        if (ctx.status === 404) throw new AppError(404, 'NotFound', 'No such route.');
        // The router answered 405/501 itself and set Allow; give it our error body.
        if (ctx.status === 405 || ctx.status === 501) {
          throw new AppError(405, 'MethodNotAllowed', 'This method is not allowed on this route.');
        }
      }
    } catch (err) {
      const appError = toAppError(err);
      if (appError === null) {
        log.error({ err, method: ctx.method, path: ctx.path }, 'request failed');
        ctx.app.emit('error', err, ctx);
      } else if (appError.status >= 500) {
        log.warn({ err, code: appError.code, method: ctx.method, path: ctx.path }, 'dependency failure');
      }
      const e = appError ?? new AppError(500, 'InternalError', 'Something went wrong on our side.');
      ctx.status = e.status;
      ctx.body = e.details === undefined ? { error: e.code, message: e.message } : { error: e.code, message: e.message, details: e.details };
      if (e.retryAfter !== undefined) ctx.set('Retry-After', String(e.retryAfter));
    }
  };
}
