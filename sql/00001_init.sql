-- The data model (README, "Architecture", data model). PostgreSQL 15 and newer. Forward-only:
-- never edit a statement once applied (comments are not part of the recorded digest).

create table convo_members (
  convo_id   text        not null,
  member_did text        not null,
  added_at   timestamptz not null default now(),
  primary key (convo_id, member_did)
);
create index convo_members_by_member on convo_members (member_did);

-- The reservation made before the client PUTs bytes to the bucket.
create table uploads (
  message_id          uuid        primary key,
  sender_did          text        not null,
  convo_id            text        not null,
  blob_key            text        not null unique,
  size                bigint      not null check (size > 0),
  md5                 text,
  sha256              text,
  content_type        text        not null,
  multipart_upload_id text,
  part_size           bigint,
  state               text        not null default 'pending'
                      check (state in ('pending', 'committed', 'aborted', 'expired', 'rejected')),
  created_at          timestamptz not null,
  commit_deadline     timestamptz not null,
  updated_at          timestamptz not null default now(),
  -- Set once the object (or multipart upload) of a finished, uncommitted reservation is gone.
  cleaned_at          timestamptz,
  check (commit_deadline > created_at),
  check ((multipart_upload_id is null) = (part_size is null)),
  check (multipart_upload_id is not null or md5 is not null)
);
-- Reconciliation finds expired reservations; the quota counts a sender's pending ones.
create index uploads_pending_by_deadline on uploads (commit_deadline) where state = 'pending';
create index uploads_pending_by_sender on uploads (sender_did) where state = 'pending';
-- Aborted, expired and rejected reservations whose bytes may still be in the bucket.
create index uploads_uncleaned on uploads (updated_at)
  where state in ('aborted', 'expired', 'rejected') and cleaned_at is null;
-- Finished reservations are pruned by age.
create index uploads_done_by_created on uploads (created_at) where state <> 'pending';

create table messages (
  id             uuid        primary key,
  convo_id       text        not null,
  sender_did     text        not null,
  blob_key       text        not null unique,
  size           bigint      not null check (size > 0),
  md5            text,
  sha256         text,
  metadata       jsonb,
  -- Digest of the committed recipient set and metadata: a replayed commit must match it.
  commit_digest  text        not null,
  created_at     timestamptz not null,
  fully_acked_at timestamptz
);
create index messages_by_created on messages (created_at);
create index messages_fully_acked on messages (fully_acked_at) where fully_acked_at is not null;

create table message_recipients (
  message_id    uuid        not null references messages (id) on delete cascade,
  recipient_did text        not null,
  delivered     boolean     not null default false,
  delivered_at  timestamptz,
  primary key (message_id, recipient_did),
  check (delivered = (delivered_at is not null))
);
-- The pending page: a recipient's undelivered rows in id order (UUIDv7 ids are time-ordered).
create index message_recipients_pending on message_recipients (recipient_did, message_id) where not delivered;
