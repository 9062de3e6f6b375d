// Errors are values with a stable code (README, "API reference", errors). Every error the broker
// answers with is built here, in the order of that table; the error handler maps them to bodies.

export const ERROR_CODES = [
  'InvalidRequest',
  'AuthRequired',
  'InvalidToken',
  'Forbidden',
  'NotFound',
  'MethodNotAllowed',
  'UploadIncomplete',
  'Conflict',
  'UploadExpired',
  'PayloadTooLarge',
  'UnsupportedMediaType',
  'UploadMismatch',
  'RateLimited',
  'QuotaExceeded',
  'HeadersTooLarge',
  'StorageUnavailable',
  'DatabaseUnavailable',
  'AuthUnavailable',
  'InternalError',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    /** Seconds, sent as Retry-After (429 and 503). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

/** The `details` of a 400 that names one field: where it is, its JSON pointer, what is wrong. */
export interface FieldProblem {
  location: 'body' | 'query' | 'params';
  field: string;
  problem: string;
}

/** Seconds a client waits after a dependency failed. */
const UNAVAILABLE_RETRY_SECONDS = 5;

// 400
export const invalidRequest = (message: string, details?: FieldProblem) => new AppError(400, 'InvalidRequest', message, details);
/** A 400 about one field; the message defaults to "<location><field> <problem>." */
export const invalidField = (
  location: FieldProblem['location'],
  field: string,
  problem: string,
  message = `${field === '/' ? location : location + field} ${problem}.`,
) => invalidRequest(message, { location, field, problem });
// 401
export const authRequired = (message = 'An Authorization: Bearer <token> header is required.') =>
  new AppError(401, 'AuthRequired', message);
export const invalidToken = (message = 'The token is invalid.') => new AppError(401, 'InvalidToken', message);
// 403
export const forbidden = (message: string) => new AppError(403, 'Forbidden', message);
// 404
/** One message for "absent" and "not yours": no existence oracle (invariant 6). */
export const notFound = (what = 'resource') => new AppError(404, 'NotFound', `No such ${what}.`);
export const routeNotFound = () => new AppError(404, 'NotFound', 'No such route.');
// 409
export const uploadIncomplete = () =>
  new AppError(409, 'UploadIncomplete', 'The object is not in the store yet; retry after the upload finishes.');
export const conflict = (message: string) => new AppError(409, 'Conflict', message);
// 410
export const uploadExpired = () =>
  new AppError(410, 'UploadExpired', 'The commit deadline of this upload has passed; reserve a new upload.');
// 413
export const payloadTooLarge = (message: string) => new AppError(413, 'PayloadTooLarge', message);
// 415
export const unsupportedMediaType = () =>
  new AppError(415, 'UnsupportedMediaType', 'Request bodies must be JSON (content-type: application/json).');
// 422
export const uploadMismatch = () =>
  new AppError(422, 'UploadMismatch', 'The stored object differs from the declared size or MD5; it was deleted. Reserve a new upload.');
// 429: the per-DID request rate and the pending-upload cap alike.
export const rateLimited = (message: string, retryAfterSeconds: number) =>
  new AppError(429, 'RateLimited', message, undefined, retryAfterSeconds);
/** The byte quota (MAX_BYTES_PER_DAY): its wait is hours, not seconds, so a code of its own lets a client not sit it out. */
export const quotaExceeded = (message: string, retryAfterSeconds: number) =>
  new AppError(429, 'QuotaExceeded', message, undefined, retryAfterSeconds);
// 431: refused by Node's HTTP parser, before any route (src/http/client-error.ts).
export const headersTooLarge = (limitBytes: number) =>
  new AppError(431, 'HeadersTooLarge', `The request headers exceed ${limitBytes} bytes in total; send a smaller token or fewer headers.`);
// 503
export const storageUnavailable = () =>
  new AppError(503, 'StorageUnavailable', 'The storage service is unavailable; nothing was written. Retry later.', undefined, UNAVAILABLE_RETRY_SECONDS);
export const databaseUnavailable = () =>
  new AppError(503, 'DatabaseUnavailable', 'The database is unavailable; nothing was written. Retry later.', undefined, UNAVAILABLE_RETRY_SECONDS);
export const authUnavailable = () =>
  new AppError(503, 'AuthUnavailable', 'The token keys cannot be fetched right now. Retry later.', undefined, UNAVAILABLE_RETRY_SECONDS);
// 405
export const methodNotAllowed = () => new AppError(405, 'MethodNotAllowed', 'This method is not allowed on this route.');
// 500
export const internalError = () => new AppError(500, 'InternalError', 'Something went wrong on our side.');

const CLIENT_ERROR_CODES: Record<number, ErrorCode> = {
  400: 'InvalidRequest',
  401: 'AuthRequired',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
};

/** A 4xx that Koa or the router threw (http-errors, safe to show) under our codes. */
export function clientErrorFrom(status: number, message: string): AppError {
  if (status === 405) return methodNotAllowed();
  return new AppError(status, CLIENT_ERROR_CODES[status] ?? 'InvalidRequest', message);
}
