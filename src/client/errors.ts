// Typed errors: callers branch on the class and on `code`, never on message text.
import type { UploadState } from './types.js';

/** Base class of everything the client throws on purpose. */
export class BrokerClientError extends Error {
  /** Where an interrupted upload stood: save it and pass it back as `resume`. */
  uploadState?: UploadState;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BrokerClientError';
  }
}

/** The broker answered non-2xx; `code` is the API's `error` field (README, "API reference", errors). */
export class BrokerError extends BrokerClientError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The parsed error body ({error, message, details?}); `details` names the failing field on a 400. */
    readonly body?: unknown,
    /** Seconds from `Retry-After`, when the broker sent one. */
    readonly retryAfter?: number,
    /** The answer's `x-request-id` (also the body's `request_id`): quote it when reporting a problem. */
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'BrokerError';
  }
}

/** The bucket refused a presigned request; `code` is the S3 error code (BadDigest, SignatureDoesNotMatch, …). */
export class StoreError extends BrokerClientError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

/**
 * A request never got an answer. On a PUT this may still be a store rejection: stores that refuse
 * a body before reading it can surface as a reset connection (Node's fetch throws where curl sees the 403).
 */
export class NetworkError extends BrokerClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NetworkError';
  }
}

/** Downloaded bytes differ from what the sender declared: do not use them. */
export class IntegrityError extends BrokerClientError {
  constructor(
    readonly messageId: string,
    readonly check: 'size' | 'sha256' | 'md5',
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`message ${messageId}: downloaded ${check} ${actual} differs from the declared ${expected}`);
    this.name = 'IntegrityError';
  }
}

/** A saved upload state cannot continue with the data or the upload it was given. */
export class ResumeError extends BrokerClientError {
  constructor(message: string) {
    super(message);
    this.name = 'ResumeError';
  }
}
