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

/**
 * A cheaper "no row changed" for many thousands of requests (the fuzz): triggers on every table
 * log each committed row change (an insert, a delete, an update that changed a value) to a table
 * of their own, so that what changed since a mark costs one index lookup however large the
 * tables grow. The digest above re-reads every row: ~30 ms once the fuzz has written a few
 * thousand. Installed on a suite's own database only; rolled-back changes leave no entry.
 */
export interface RowChangeLog {
  /** The position now. */
  mark(): Promise<number>;
  /** The changes since a mark, as "table op × n", empty when none. */
  since(mark: number): Promise<string[]>;
}

export async function rowChangeLog(sql: Sql): Promise<RowChangeLog> {
  await sql`create table row_changes (id bigserial primary key, tbl text not null, op text not null)`;
  await sql`
    create function log_row_change() returns trigger language plpgsql as $$
    begin
      insert into row_changes (tbl, op) values (tg_table_name, tg_op);
      return null;
    end $$`;
  const tables = await sql<{ table_name: string }[]>`
    select table_name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE' and table_name not in ('schema_migrations', 'row_changes')`;
  for (const { table_name: t } of tables) {
    await sql`create trigger row_changes_insert_delete after insert or delete on ${sql(t)} for each row execute function log_row_change()`;
    await sql`create trigger row_changes_update after update on ${sql(t)} for each row when (old.* is distinct from new.*) execute function log_row_change()`;
  }
  return {
    async mark() {
      const [row] = await sql<{ n: string }[]>`select coalesce(max(id), 0)::text as n from row_changes`;
      return Number(row!.n);
    },
    async since(mark) {
      const rows = await sql<{ tbl: string; op: string; n: number }[]>`
        select tbl, op, count(*)::int as n from row_changes where id > ${mark} group by tbl, op order by tbl, op`;
      return rows.map((r) => `${r.tbl} ${r.op.toLowerCase()} × ${r.n}`);
    },
  };
}
