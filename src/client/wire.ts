// The wire contract of the API (README, "API reference"): every request body, query and answer, as sent (snake_case). The one
// definition both sides use: the client builds and reads these; the server's route schemas are
// checked against them by the type checker (src/schemas/), and its services return them.
// Types only, plus the limits a request must keep: safe in a browser.

/** GET /messages/pending returns at most this many per page, and this many when not told. */
export const PENDING_PAGE_MAX = 500;
export const PENDING_PAGE_DEFAULT = 100;

export type ContentType = 'application/octet-stream' | 'message/mls';

/** POST /uploads */
export interface ReserveRequest {
  convo_id: string;
  size: number;
  md5?: string;
  sha256?: string;
  content_type?: ContentType;
  /** Multipart only: the base64 MD5 of every part (of limits.part_size_bytes), in order; each part URL signs its own. */
  part_md5s?: string[];
}

/** POST /uploads/:id/urls */
export interface UrlsRequest {
  part_numbers?: number[];
  /** The base64 MD5 of each part of part_numbers, in the same order (declares or replaces them). */
  part_md5s?: string[];
}

export interface CompletedPart {
  part_number: number;
  etag: string;
}

/** POST /uploads/:id/complete */
export interface CompleteRequest {
  parts: CompletedPart[];
}

/** POST /messages */
export interface CommitRequest {
  message_id: string;
  recipients?: string[];
  metadata?: Record<string, unknown>;
}

/** GET /messages/pending */
export interface PendingQuery {
  limit?: number;
  cursor?: string;
  convo_id?: string;
}

/** POST /messages/ack */
export interface AckRequest {
  message_ids: string[];
}

/** PUT /convos/:id/members */
export interface ReplaceMembersRequest {
  members: string[];
}

/** POST /convos/:id/members */
export interface ChangeMembersRequest {
  add?: string[];
  remove?: string[];
}

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
  state: 'pending';
  commit_deadline: string;
  expires_at: string;
  upload: UploadInstructions;
}

export interface FreshUrls {
  expires_at: string;
  upload: UploadInstructions;
}

export interface CompletedUpload {
  message_id: string;
  size: number;
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

export interface Members {
  convo_id: string;
  members: string[];
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
  /** The byte quota per rolling day (MAX_BYTES_PER_DAY); null: no quota. */
  max_bytes_per_day: number | null;
  /** Bytes the caller reserved in the rolling day, aborted and expired uploads included; null: no quota. */
  bytes_reserved: number | null;
  /** The largest reservation the quota admits now (max_bytes_per_day − bytes_reserved, at least 0); null: no quota. */
  bytes_available: number | null;
}
