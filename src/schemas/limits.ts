import { Type } from '@sinclair/typebox';
import type { Limits } from '../client/wire.js';
import { integer, type Assert, type Same } from './common.js';

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
});

// The type checker holds this schema to the wire contract.
type Checks = [Assert<Same<typeof limitsResponse, Limits>>];
