// Forward-only numbered migrations (sql/NNNNN_name.sql), applied in one transaction and recorded
// with a digest so that an edited statement or a gap is refused instead of silently skipped. The
// digest covers the statements only (./migration-digest.ts): comments may still be corrected.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LEGACY_DIGESTS, migrationDigest } from './migration-digest.js';
import type { Config } from '../config.js';
import { createSql, transaction, type Sql } from './sql.js';

/** sql/ at the package root: two levels up from src/db, three from the build's dist/src/db. */
export function findSqlDir(moduleUrl: string | URL): string {
  const candidates = ['../../sql/', '../../../sql/'].map((rel) => fileURLToPath(new URL(rel, moduleUrl)));
  return candidates.find((dir) => existsSync(path.join(dir, '00001_init.sql'))) ?? candidates[0]!;
}

export const SQL_DIR = findSqlDir(import.meta.url);
/** Any fixed number: the advisory lock serialises migrators across processes. */
const MIGRATION_LOCK = 7_243_100_001;

export interface MigrationFile {
  id: number;
  name: string;
  file: string;
  /** Of the statements (migrationDigest): what a new database records. */
  digest: string;
  /** Of the exact bytes: what databases migrated before the statement digest recorded. */
  legacyDigest: string;
}

/** Whether a recorded digest stands for this file's statements, in either scheme. */
function digestMatches(recorded: string, f: MigrationFile): boolean {
  return recorded === f.digest || recorded === f.legacyDigest || LEGACY_DIGESTS[recorded] === f.digest;
}

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

export async function readMigrations(dir = SQL_DIR): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort();
  const files: MigrationFile[] = [];
  for (const name of names) {
    const m = /^(\d{5})_[a-z0-9_]+\.sql$/.exec(name);
    if (!m) throw new MigrationError(`migration file "${name}" is not named NNNNN_name.sql`);
    const file = path.join(dir, name);
    const bytes = await readFile(file);
    const legacyDigest = createHash('sha256').update(bytes).digest('hex');
    files.push({ id: Number(m[1]), name, file, digest: migrationDigest(bytes.toString('utf8')), legacyDigest });
  }
  files.forEach((f, i) => {
    if (f.id !== i + 1) throw new MigrationError(`migrations must be numbered 1, 2, 3 …: found ${f.name} at position ${i + 1}`);
  });
  return files;
}

/** Applies every pending migration; safe to run twice or from two processes at once. */
export async function migrate(sql: Sql, dir = SQL_DIR): Promise<{ applied: string[] }> {
  const files = await readMigrations(dir);
  const applied: string[] = [];
  await transaction(sql, async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`
      create table if not exists schema_migrations (
        id         integer     primary key,
        name       text        not null,
        digest     text        not null,
        applied_at timestamptz not null default now()
      )`;
    const done = await tx<{ id: number; name: string; digest: string }[]>`select id, name, digest from schema_migrations order by id`;
    for (const row of done) {
      const f = files.find((x) => x.id === row.id);
      if (!f) throw new MigrationError(`the database has migration ${row.name}, which is not in ${dir}`);
      if (!digestMatches(row.digest, f) || f.name !== row.name) {
        throw new MigrationError(`migration ${f.name} was edited after it was applied; add a new migration instead`);
      }
    }
    for (const f of files.slice(done.length)) {
      await tx.file(f.file);
      await tx`insert into schema_migrations (id, name, digest) values (${f.id}, ${f.name}, ${f.digest})`;
      applied.push(f.name);
    }
  });
  return { applied };
}

/**
 * For a broker that does not migrate at start (MIGRATE_ON_START=false): the migrations of this
 * build that the database lacks. Newer ones the database has are fine (a rolling release runs the
 * old build against the new schema for a while), so only missing ones are returned.
 */
export async function pendingMigrations(sql: Sql, dir = SQL_DIR): Promise<string[]> {
  const files = await readMigrations(dir);
  const [table] = await sql<{ t: string | null }[]>`select to_regclass('schema_migrations')::text as t`;
  if (!table?.t) return files.map((f) => f.name);
  const done = new Set((await sql<{ id: number }[]>`select id from schema_migrations`).map((r) => r.id));
  return files.filter((f) => !done.has(f.id)).map((f) => f.name);
}

/**
 * Migrations run on DATABASE_DIRECT_URL when set (PostgreSQL itself, not a transaction pooler: long
 * DDL under a pooler's query timeouts is not worth the risk), else on DATABASE_URL. They are one
 * transaction under a transaction-level advisory lock, so they also work through PgBouncer.
 */
export async function migrateDatabase(config: Readonly<Config>, databaseUrl: string): Promise<{ applied: string[] }> {
  const direct = config.databaseDirectUrl !== null;
  const sql = createSql(config.databaseDirectUrl ?? databaseUrl, {
    max: 1,
    applicationName: 'mls-blob-broker-migrate',
    prepare: direct || config.databasePrepare,
  });
  try {
    return await migrate(sql);
  } finally {
    await sql.end({ timeout: 2 }).catch(() => {});
  }
}

/**
 * A start's schema step, on a connection of its own (it runs as soon as the database answers,
 * before the broker's pool exists): `true` applies the pending migrations (MIGRATE_ON_START=true);
 * `'check'` refuses to start while a migration of this build is missing (migrating is a release step).
 */
export async function prepareSchema(config: Readonly<Config>, databaseUrl: string, mode: true | 'check'): Promise<{ applied: string[] }> {
  if (mode === true) return migrateDatabase(config, databaseUrl);
  const sql = createSql(databaseUrl, { max: 1, applicationName: 'mls-blob-broker-migrate', prepare: config.databasePrepare });
  let pending: string[];
  try {
    pending = await pendingMigrations(sql);
  } finally {
    await sql.end({ timeout: 2 }).catch(() => {});
  }
  if (pending.length > 0) {
    throw new Error(`the database lacks migrations ${pending.join(', ')}; run the migrate step first (MIGRATE_ON_START=false)`);
  }
  return { applied: [] };
}
