-- The per-sender byte quota (MAX_BYTES_PER_DAY; README, "API reference", limits): the bytes each
-- sender reserved, one row per hour. A reservation counts its declared size from its hour until 25
-- hours after that hour began, so any 24 hours together never hold more than the quota (a rolling
-- day at hour granularity, erring on the strict side by at most an hour). What was reserved stays
-- counted whatever becomes of the upload (aborted, expired, rejected): the quota is on reservations,
-- so reserving and aborting in a loop is no way around it. Reconciliation deletes hours that have
-- left the window.
create table upload_quota_hours (
  sender_did text        not null,
  hour       timestamptz not null,
  bytes      bigint      not null check (bytes > 0),
  primary key (sender_did, hour)
);
-- Reconciliation deletes by age across senders.
create index upload_quota_hours_by_hour on upload_quota_hours (hour);

-- The hour a time falls in. date_bin counts from a fixed UTC origin, so the bucket does not depend on
-- the session's TimeZone (date_trunc would, for zones with a half-hour offset).
create function quota_hour(p_at timestamptz)
returns timestamptz
language sql immutable
as $$ select date_bin('1 hour', p_at, timestamptz '2000-01-01 00:00:00+00') $$;

-- Bytes the sender reserved in the rolling day that holds `p_now`: the current hour and the 24 before it.
create function quota_used(p_sender_did text, p_now timestamptz)
returns bigint
language sql stable
as $$
  select coalesce(sum(bytes), 0)::bigint from upload_quota_hours
  where sender_did = p_sender_did and hour >= quota_hour(p_now) - interval '24 hours'
$$;

-- Seconds from `p_now` until `p_size` more bytes fit under `p_max`: 0 when they fit now. Otherwise
-- the oldest hours leave the window one by one (an hour h leaves at h + 25 h); the answer is when
-- enough of them have left. The caller makes sure p_size <= p_max, so some hour always suffices.
create function quota_wait(p_sender_did text, p_now timestamptz, p_size bigint, p_max bigint)
returns integer
language plpgsql stable
as $$
declare
  excess bigint := quota_used(p_sender_did, p_now) + p_size - p_max;
  frees_at timestamptz;
begin
  if excess <= 0 then return 0; end if;
  select hour + interval '25 hours' into frees_at
  from (select hour, sum(bytes) over (order by hour) as freed
        from upload_quota_hours
        where sender_did = p_sender_did and hour >= quota_hour(p_now) - interval '24 hours') h
  where freed >= excess
  order by hour
  limit 1;
  return greatest(1, ceil(extract(epoch from frees_at - p_now)))::integer;
end
$$;

-- The reservation of sql/00003 with the quota: membership, then under the sender's advisory lock the
-- quota (first: when both refuse, its wait is the longer one), the pending cap, the insert and the
-- quota charge, all in this one statement. `p_max_bytes_per_day` 0 means no quota (nothing is
-- counted). Outcomes: created, forbidden, over_quota (with `retry_after` seconds), rate_limited;
-- a refusal writes nothing and charges nothing.
-- The 15-argument reserve_upload of sql/00003 stays for brokers of the previous build during a
-- rolling release (they reserve without charging the quota, under the same lock).
create function reserve_upload(
  p_message_id uuid, p_sender_did text, p_convo_id text, p_blob_key text, p_size bigint, p_md5 text,
  p_sha256 text, p_content_type text, p_multipart_upload_id text, p_part_size bigint,
  p_created_at timestamptz, p_commit_deadline timestamptz, p_urls_valid_until timestamptz,
  p_enforce_membership boolean, p_max_pending integer, p_max_bytes_per_day bigint)
returns table (outcome text, retry_after integer)
language plpgsql volatile
as $$
begin
  if p_enforce_membership
     and not exists (select 1 from convo_members where convo_id = p_convo_id and member_did = p_sender_did) then
    return query select 'forbidden', null::integer; return;
  end if;
  perform pg_advisory_xact_lock(hashtextextended('quota:' || p_sender_did, 0));
  -- The hot path only sums; the wait is worked out on a refusal alone.
  if p_max_bytes_per_day > 0 and quota_used(p_sender_did, p_created_at) + p_size > p_max_bytes_per_day then
    return query select 'over_quota', quota_wait(p_sender_did, p_created_at, p_size, p_max_bytes_per_day); return;
  end if;
  if open_uploads(p_sender_did, p_created_at, p_max_pending) >= p_max_pending then
    return query select 'rate_limited', null::integer; return;
  end if;
  insert into uploads (message_id, sender_did, convo_id, blob_key, size, md5, sha256, content_type,
                       multipart_upload_id, part_size, state, created_at, commit_deadline, updated_at,
                       urls_valid_until)
  values (p_message_id, p_sender_did, p_convo_id, p_blob_key, p_size, p_md5, p_sha256, p_content_type,
          p_multipart_upload_id, p_part_size, 'pending', p_created_at, p_commit_deadline, p_created_at,
          p_urls_valid_until);
  if p_max_bytes_per_day > 0 then
    insert into upload_quota_hours as q (sender_did, hour, bytes)
    values (p_sender_did, quota_hour(p_created_at), p_size)
    on conflict (sender_did, hour) do update set bytes = q.bytes + excluded.bytes;
  end if;
  return query select 'created', null::integer;
end
$$;
