import { Type } from './typebox.js';
import type * as wire from '../client/wire.js';
import { integer, nullable, type Assert, type Same } from './common.js';

export const limitsResponse = Type.Object({
  max_message_bytes: integer,
  multipart_threshold_bytes: integer,
  part_size_bytes: integer,
  max_recipients: integer,
  upload_url_ttl_seconds: integer,
  download_url_ttl_seconds: integer,
  commit_window_seconds: integer,
  max_pending_uploads: integer,
  pending_uploads: integer,
  max_bytes_per_day: nullable(Type.Integer({ minimum: 1, description: 'Bytes a DID may reserve in any rolling day (hour granularity); null: no quota' })),
  bytes_reserved: nullable(Type.Integer({ minimum: 0, description: "The caller's bytes counted in the rolling day: every reservation, aborted or expired ones too; null: no quota" })),
  bytes_available: nullable(Type.Integer({ minimum: 0, description: 'The largest reservation the quota admits now; null: no quota' })),
});

// The type checker holds this schema to the wire contract.
type Checks = [Assert<Same<typeof limitsResponse, wire.Limits>>];
