// Wire shapes of API.md (snake_case, as on the wire) and the client's own option types.

export interface PresignedPart {
  part_number: number;
  url: string;
  headers: Record<string, string>;
}

export type UploadInstructions =
  | { method: 'PUT'; url: string; headers: Record<string, string> }
  | { method: 'MULTIPART'; part_size: number; part_count: number; parts: PresignedPart[] };

export interface Reservation {
  message_id: string;
  blob_key: string;
  state: string;
  commit_deadline: string;
  expires_at: string;
  upload: UploadInstructions;
}

export interface FreshUrls {
  expires_at: string;
  upload: UploadInstructions;
}

export type UploadStatus = 'pending' | 'committed' | 'aborted' | 'expired' | 'rejected';

export interface UploadInfo {
  message_id: string;
  state: UploadStatus;
  size: number;
  convo_id: string;
  commit_deadline: string;
}

export interface CommittedMessage {
  message_id: string;
  convo_id: string;
  sender_did: string;
  blob_key: string;
  size: number;
  created_at: string;
  recipient_count: number;
}

export interface PendingMessage {
  message_id: string;
  convo_id: string;
  sender_did: string;
  size: number;
  created_at: string;
}

export interface PendingPage {
  messages: PendingMessage[];
  cursor: string | null;
}

export interface MessageInfo {
  message_id: string;
  convo_id: string;
  sender_did: string;
  size: number;
  md5: string | null;
  sha256: string | null;
  created_at: string;
  metadata: Record<string, unknown> | null;
  download: { url: string; expires_at: string };
}

export interface AckResult {
  acked: string[];
  not_found: string[];
}

export interface Limits {
  max_message_bytes: number;
  multipart_threshold_bytes: number;
  part_size_bytes: number;
  max_recipients: number;
  upload_url_ttl_seconds: number;
  download_url_ttl_seconds: number;
  commit_window_seconds: number;
  max_pending_uploads: number;
  pending_uploads: number;
}

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
  /** DIDs; omitted: every member of the conversation but the sender (API.md, commit). */
  recipients?: string[];
  metadata?: Record<string, unknown>;
  /** Default application/octet-stream; the broker stores no type a browser would render. */
  contentType?: 'application/octet-stream' | 'message/mls';
  onProgress?: (p: Progress) => void;
  /** Called after every change worth saving; save the state to resume after a crash. */
  onState?: (state: UploadState) => void;
  resume?: UploadState;
  /** Base64 SHA-256 the caller already has (skips hashing); must be of exactly these bytes. */
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
  /** Retries per request on network errors, 5xx, 429 and expired URLs (default 5). */
  retries?: number;
  /** First backoff delay in ms (default 200); doubles per attempt up to maxDelayMs, with full jitter. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Default progress callback for every upload. */
  onProgress?: (p: Progress, messageId: string) => void;
}
