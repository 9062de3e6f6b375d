-- The pending cap's count (open_uploads, under the sender's lock in every reservation) reads the
-- sender's own rows through an index of its own, whatever the planner believes about the table.
-- Its two parts had a choice: the pending part between uploads_pending_by_sender and reconciliation's
-- uploads_pending_by_deadline (both hold every pending upload), the finished part between
-- uploads_open_urls_by_sender and uploads_done_by_created. While the statistics say such rows are
-- nearly absent (a new database, a quiet hour) every candidate costs the same, the planner took
-- reconciliation's index, and a connection kept that plan, reading every sender's pending uploads in
-- each reservation, until the next ANALYZE of uploads (scripts/bench/NOTES.md, round 5;
-- tests/pending-count-plan.test.ts).
--
-- The count now compares `state` under the "C" collation. Equality on text is the same under every
-- deterministic collation, so it selects the same rows; but PostgreSQL proves a partial index's
-- predicate from a query's condition only when both use one collation, so the indexes below (their
-- predicates spelt the same way) are the only ones the count can use, and no other query can use
-- them. They replace the by-sender indexes of sql/00001 and 00002, which nothing else read.
-- open_uploads keeps its signature, so brokers of the previous build call the same function.
create index uploads_pending_by_sender_deadline on uploads (sender_did, commit_deadline)
  where state = 'pending' collate "C";
create index uploads_finished_urls_by_sender on uploads (sender_did, urls_valid_until)
  where state collate "C" in ('aborted', 'expired', 'rejected');

create or replace function open_uploads(p_sender_did text, p_now timestamptz, p_at_most integer)
returns bigint
language sql stable
as $$
  select
    (select count(*) from (
       select 1 from uploads
       where sender_did = p_sender_did and state = 'pending' collate "C" and commit_deadline > p_now
       limit p_at_most) pending)
  + (select count(*) from (
       select 1 from uploads
       where sender_did = p_sender_did and state collate "C" in ('aborted', 'expired', 'rejected')
         and urls_valid_until > p_now
       limit p_at_most) finished)
$$;

drop index uploads_pending_by_sender;
drop index uploads_open_urls_by_sender;
