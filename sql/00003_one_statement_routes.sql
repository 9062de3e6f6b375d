-- The hot routes as one statement each (README, "Architecture", round-trip budget): every round trip to
-- PostgreSQL is waiting time for the caller and driver CPU for the broker, and a lock held across
-- round trips queues everything behind it. Each function below does what a multi-statement
-- transaction did, with the same locks in the same order. They are VOLATILE plpgsql: under READ
-- COMMITTED every statement inside takes a fresh snapshot, so a statement that follows a lock wait
-- sees what the lock's previous holder committed, exactly as a separate statement would.
-- Times come from the caller (the broker's clock), never from now().

-- What counts against a sender's pending cap: pending uploads still inside their window, and
-- finished uncommitted ones whose URLs still work. Counting stops at `at_most` (null: exact), since
-- the cap only needs to know whether it is reached.
create function open_uploads(p_sender_did text, p_now timestamptz, p_at_most integer)
returns bigint
language sql stable
as $$
  select
    (select count(*) from (
       select 1 from uploads
       where sender_did = p_sender_did and state = 'pending' and commit_deadline > p_now
       limit p_at_most) pending)
  + (select count(*) from (
       select 1 from uploads
       where sender_did = p_sender_did and state in ('aborted', 'expired', 'rejected') and urls_valid_until > p_now
       limit p_at_most) finished)
$$;

-- A reservation: membership, then the sender's cap under the sender's advisory lock (held only for
-- the rest of this statement's transaction), then the insert. 'created', 'forbidden' or
-- 'rate_limited'; a refusal writes nothing.
create function reserve_upload(
  p_message_id uuid, p_sender_did text, p_convo_id text, p_blob_key text, p_size bigint, p_md5 text,
  p_sha256 text, p_content_type text, p_multipart_upload_id text, p_part_size bigint,
  p_created_at timestamptz, p_commit_deadline timestamptz, p_urls_valid_until timestamptz,
  p_enforce_membership boolean, p_max_pending integer)
returns text
language plpgsql volatile
as $$
begin
  if p_enforce_membership
     and not exists (select 1 from convo_members where convo_id = p_convo_id and member_did = p_sender_did) then
    return 'forbidden';
  end if;
  -- The same key the two-statement version locked, so old and new brokers serialise together.
  perform pg_advisory_xact_lock(hashtextextended('quota:' || p_sender_did, 0));
  if open_uploads(p_sender_did, p_created_at, p_max_pending) >= p_max_pending then
    return 'rate_limited';
  end if;
  insert into uploads (message_id, sender_did, convo_id, blob_key, size, md5, sha256, content_type,
                       multipart_upload_id, part_size, state, created_at, commit_deadline, updated_at,
                       urls_valid_until)
  values (p_message_id, p_sender_did, p_convo_id, p_blob_key, p_size, p_md5, p_sha256, p_content_type,
          p_multipart_upload_id, p_part_size, 'pending', p_created_at, p_commit_deadline, p_created_at,
          p_urls_valid_until);
  return 'created';
end
$$;

-- A commit after the broker HEADed the object (invariants 1–3): the upload row is locked, its state
-- checked; under enforced membership the conversation's shared lock is taken (a membership change
-- holds it exclusively) and the sender and every recipient must be members; then the message row,
-- every recipient row and the upload's new state. `p_recipients` null means every member but the
-- sender. Statuses: created, replay, rejected, expired, not_found, sender_not_member,
-- recipient_not_member, no_recipients, too_many_recipients; only 'created' writes anything.
create function commit_message(
  p_message_id uuid, p_digest text, p_metadata jsonb, p_recipients text[], p_enforce_membership boolean,
  p_max_recipients integer, p_now timestamptz)
returns table (status text, recipient_count integer)
language plpgsql volatile
as $$
declare
  u uploads%rowtype;
  r text[];
begin
  select * into u from uploads where message_id = p_message_id for update;
  if not found then return query select 'not_found', 0; return; end if;
  if u.state = 'committed' then return query select 'replay', 0; return; end if;
  if u.state = 'rejected' then return query select 'rejected', 0; return; end if;
  if u.state <> 'pending' or p_now > u.commit_deadline then return query select 'expired', 0; return; end if;
  if p_enforce_membership then
    perform pg_advisory_xact_lock_shared(hashtextextended('convo:' || u.convo_id, 0));
    if not exists (select 1 from convo_members where convo_id = u.convo_id and member_did = u.sender_did) then
      return query select 'sender_not_member', 0; return;
    end if;
  end if;
  if p_recipients is null then
    r := array(select member_did from convo_members
               where convo_id = u.convo_id and member_did <> u.sender_did order by member_did);
    if cardinality(r) = 0 then return query select 'no_recipients', 0; return; end if;
  else
    r := p_recipients;
    if p_enforce_membership and exists (
         select 1 from unnest(r) d
         where not exists (select 1 from convo_members m where m.convo_id = u.convo_id and m.member_did = d)) then
      return query select 'recipient_not_member', 0; return;
    end if;
  end if;
  if cardinality(r) > p_max_recipients then return query select 'too_many_recipients', cardinality(r); return; end if;
  insert into messages (id, convo_id, sender_did, blob_key, size, md5, sha256, metadata, commit_digest, created_at)
  values (u.message_id, u.convo_id, u.sender_did, u.blob_key, u.size, u.md5, u.sha256, p_metadata, p_digest, p_now);
  insert into message_recipients (message_id, recipient_did) select u.message_id, unnest(r);
  update uploads set state = 'committed', updated_at = p_now where message_id = p_message_id;
  return query select 'created', cardinality(r);
end
$$;

-- Acknowledgements by one recipient: the message rows are locked first, in id order, so two
-- recipients acking at once cannot both miss the last ack; then the deliveries; then messages whose
-- every recipient has now acked are stamped. Returns the ids the recipient was found on.
create function ack_messages(p_recipient_did text, p_ids uuid[], p_at timestamptz)
returns setof uuid
language plpgsql volatile
as $$
declare
  mine uuid[];
begin
  mine := array(
    select m.id from messages m
    where m.id = any(p_ids)
      and exists (select 1 from message_recipients r where r.message_id = m.id and r.recipient_did = p_recipient_did)
    order by m.id
    for update of m);
  if cardinality(mine) = 0 then return; end if;
  update message_recipients set delivered = true, delivered_at = p_at
  where message_id = any(mine) and recipient_did = p_recipient_did and not delivered;
  update messages m set fully_acked_at = p_at
  where m.id = any(mine)
    and m.fully_acked_at is null
    and not exists (select 1 from message_recipients r where r.message_id = m.id and not r.delivered);
  return query select unnest(mine);
end
$$;
