// The client's own types: upload state and options. The wire shapes are in wire.ts.
import type { ContentType } from './wire.js';

/**
 * Where an upload stands, as plain JSON: persist it (localStorage, a file) and pass it back as
 * `resume` with the same data to continue after a crash or a lost connection.
 */
export interface UploadState {
  version: 1;
  message_id: string;
  convo_id: string;
  size: number;
  /** base64 SHA-256 of the whole data, to refuse resuming with different bytes. */
  sha256: string;
  method: 'PUT' | 'MULTIPART';
  /** Multipart only. */
  part_size: number | null;
  part_count: number | null;
  /** Parts the store acknowledged, with the ETag it answered. */
  parts: { part_number: number; etag: string }[];
  /** The single PUT landed, or the multipart upload was completed. */
  uploaded: boolean;
  commit_deadline: string;
}

export interface Progress {
  /** Bytes the store has acknowledged (whole parts; fetch exposes no finer upload progress). */
  sent: number;
  total: number;
}

export type Body = Uint8Array | Blob | ReadableStream<Uint8Array>;

export interface UploadOptions {
  /** DIDs; omitted: every member of the conversation but the sender (README, "API reference", commit). */
  recipients?: string[];
  metadata?: Record<string, unknown>;
  /** Default application/octet-stream; the broker stores no type a browser would render. */
  contentType?: ContentType;
  onProgress?: (p: Progress) => void;
  /** Called after every change worth saving; save the state to resume after a crash. */
  onState?: (state: UploadState) => void;
  resume?: UploadState;
  /** Base64 SHA-256 the caller already has (skips computing it; the part MD5s are still computed); must be of exactly these bytes. */
  sha256?: string;
  signal?: AbortSignal;
}

export type TokenSource = string | (() => string | Promise<string>);

export interface BrokerClientOptions {
  /** Origin of the broker, e.g. https://broker.example.com (no trailing /api/v1). */
  baseUrl: string;
  /** A bearer token, or a function asked before every request (it should cache). */
  token: TokenSource;
  fetch?: typeof fetch;
  /** Parts in flight at once (default 4). */
  concurrency?: number;
  /** Retries per request on network errors, 5xx, 429 and expired URLs (default 5); a 429 QuotaExceeded is thrown at once. */
  retries?: number;
  /** First backoff delay in ms (default 200); doubles per attempt up to maxDelayMs, with full jitter. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Default progress callback for every upload. */
  onProgress?: (p: Progress, messageId: string) => void;
}
