-- When the last presigned upload URL of a reservation expires. Until then an aborted or rejected
-- upload's key can still be written by its URL: it keeps counting against the sender's pending
-- cap, and its bytes are only recorded as gone (cleaned_at) once no URL can bring them back.
alter table uploads add column urls_valid_until timestamptz;
update uploads set urls_valid_until = least(commit_deadline, now()) where urls_valid_until is null;
alter table uploads alter column urls_valid_until set not null;

-- The pending cap counts finished, uncommitted uploads whose URLs still work.
create index uploads_open_urls_by_sender on uploads (sender_did, urls_valid_until)
  where state in ('aborted', 'expired', 'rejected');

-- The pending page filtered by conversation joins messages on (convo_id, id).
create index messages_by_convo on messages (convo_id, id);
