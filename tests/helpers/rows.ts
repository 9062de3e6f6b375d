// "No row changed": a digest of every table the broker writes, cheap enough to take around every
// refused request (the authorization matrix) or every batch of them (the fuzz). One statement, one
// pass per table, no sort: the row count and the sum of a 64-bit hash of each row's text. A row
// added, removed or changed in any column changes its table's pair (a collision needs two hash
// changes that cancel out to the bit).
import type { Sql } from '../../src/db/sql.js';

/** Every table of the schema but the migration bookkeeping; the matrix checks this list against the schema. */
export const DIGESTED_TABLES = ['audit_positions', 'convo_members', 'job_leases', 'message_recipients', 'messages', 'upload_parts', 'upload_quota_hours', 'uploads'] as const;

export type RowsDigest = Record<(typeof DIGESTED_TABLES)[number], string>;

export async function rowsDigest(sql: Sql): Promise<RowsDigest> {
  const [row] = await sql<RowsDigest[]>`
    select
      (select count(*) || ':' || coalesce(sum(hashtextextended(t::text, 0)), 0) from audit_positions t) as audit_positions,
      (select count(*) || ':' || coalesce(sum(hashtextextended(t::text, 0)), 0) from convo_members t) as convo_members,
      (select count(*) || ':' || coalesce(sum(hashtextextended(t::text, 0)), 0) from job_leases t) as job_leases,
      (select count(*) || ':' || coalesce(sum(hashtextextended(t::text, 0)), 0) from message_recipients t) as message_recipients,
      (select count(*) || ':' || coalesce(sum(hashtextextended(t::text, 0)), 0) from messages t) as messages,
      (select count(*) || ':' || coalesce(sum(hashtextextended(t::text, 0)), 0) from upload_parts t) as upload_parts,
      (select count(*) || ':' || coalesce(sum(hashtextextended(t::text, 0)), 0) from upload_quota_hours t) as upload_quota_hours,
      (select count(*) || ':' || coalesce(sum(hashtextextended(t::text, 0)), 0) from uploads t) as uploads`;
  return { ...row! };
}

/** The tables whose digest differs, empty when nothing changed. */
export function changedTables(before: RowsDigest, after: RowsDigest): string[] {
  return DIGESTED_TABLES.filter((t) => before[t] !== after[t]);
}

/** The schema's tables that the digest does not cover (a new migration must add its table here). */
export async function undigestedTables(sql: Sql): Promise<string[]> {
  const rows = await sql<{ table_name: string }[]>`
    select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by 1`;
  return rows.map((r) => r.table_name).filter((t) => t !== 'schema_migrations' && !(DIGESTED_TABLES as readonly string[]).includes(t));
}
