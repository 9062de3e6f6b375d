// Errors are values with a stable code (API.md, "Errors"). The error handler maps them to bodies.

export type ErrorCode =
  | 'InvalidRequest'
  | 'AuthRequired'
  | 'InvalidToken'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'UploadIncomplete'
  | 'Conflict'
  | 'UploadExpired'
  | 'PayloadTooLarge'
  | 'UnsupportedMediaType'
  | 'UploadMismatch'
  | 'RateLimited'
  | 'StorageUnavailable'
  | 'DatabaseUnavailable'
  | 'AuthUnavailable'
  | 'InternalError';

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

export const invalidRequest = (message: string, details?: unknown) =>
  new AppError(400, 'InvalidRequest', message, details);
export const authRequired = (message = 'An Authorization: Bearer <token> header is required.') =>
  new AppError(401, 'AuthRequired', message);
export const invalidToken = (message = 'The token is invalid.') => new AppError(401, 'InvalidToken', message);
export const forbidden = (message: string) => new AppError(403, 'Forbidden', message);
/** One message for "absent" and "not yours": no existence oracle (invariant 6). */
export const notFound = (what = 'resource') => new AppError(404, 'NotFound', `No such ${what}.`);
export const conflict = (message: string) => new AppError(409, 'Conflict', message);
export const storageUnavailable = () =>
  new AppError(503, 'StorageUnavailable', 'The storage service is unavailable; nothing was written. Retry later.', undefined, 5);
export const databaseUnavailable = () =>
  new AppError(503, 'DatabaseUnavailable', 'The database is unavailable; nothing was written. Retry later.', undefined, 5);
