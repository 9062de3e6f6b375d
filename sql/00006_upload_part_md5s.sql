-- The MD5 a client declared for each part of a multipart upload. Every part URL issued afterwards
-- signs it (the store refuses other bytes with BadDigest), and once every part has one the commit
-- compares the object's multipart ETag (the MD5 of the part MD5s, "-N") with them.
create table upload_parts (
  message_id  uuid    not null references uploads (message_id) on delete cascade,
  part_number integer not null check (part_number >= 1),
  md5         text    not null,
  primary key (message_id, part_number)
);
