-- Where the bucket audit stands: it walks the retention window's day prefixes in key order, a
-- bounded number of keys per pass, and the next pass continues after `after_key` (null: from the
-- start of the window). `missing` adds up the missing objects found in the current cycle.
create table audit_positions (
  name       text        primary key,
  after_key  text,
  missing    integer     not null default 0,
  updated_at timestamptz not null default now()
);
