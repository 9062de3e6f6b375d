-- One row per singleton job (the reconciler): who holds it and until when. A lease replaces the
-- session advisory lock, which needs a session of its own and so does not work through a
-- transaction-pooling PgBouncer. Times are the database's own clock, so broker clocks may differ.
create table job_leases (
  name       text        primary key,
  holder     text        not null,
  expires_at timestamptz not null
);
