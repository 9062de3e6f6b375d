import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/config.js';
import { createContext } from '../src/context.js';
import { findSqlDir, MigrationError, migrate, pendingMigrations, SQL_DIR } from '../src/db/migrate.js';
import { normaliseSql } from '../src/db/migration-digest.js';
import { createSql, type Sql } from '../src/db/sql.js';
import { freshDatabase, harness, testEnv, withDatabase } from './helpers/harness.js';
import { runScript } from './helpers/processes.js';

const test = suite('migrations');
const ALL = ['00001_init.sql', '00002_url_expiry_and_convo_index.sql', '00003_one_statement_routes.sql', '00004_job_leases.sql', '00005_audit_position.sql', '00006_upload_part_md5s.sql', '00007_byte_quota.sql', '00008_ack_generic_plans.sql', '00009_pending_count_indexes.sql'];
let dir: string;

async function emptyDatabase(): Promise<Sql> {
  const h = await harness();
  const name = `m_${Math.random().toString(36).slice(2, 10)}`;
  await h.adminSql`create database ${h.adminSql(name)}`;
  return createSql(withDatabase(h.databaseUrl, name), { max: 4 });
}

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
    assert.unreachable('expected a MigrationError');
  } catch (err) {
    assert.instance(err, MigrationError);
    assert.match((err as Error).message, pattern);
  }
}

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'broker-sql-'));
});
test.after(() => rm(dir, { recursive: true, force: true }));

test('applies sql/ to an empty database, records it, and a second run applies nothing', async () => {
  const sql = await emptyDatabase();
  assert.equal((await migrate(sql)).applied, ALL);
  assert.equal((await migrate(sql)).applied, []);
  const tables = await sql`select table_name from information_schema.tables where table_schema = 'public' order by 1`;
  assert.equal(tables.map((t) => t.table_name), ['audit_positions', 'convo_members', 'job_leases', 'message_recipients', 'messages', 'schema_migrations', 'upload_parts', 'upload_quota_hours', 'uploads']);
  await sql.end();
});

test('two migrators at once apply each file once', async () => {
  const sql = await emptyDatabase();
  const other = createSql(withDatabase((await harness()).databaseUrl, (await sql`select current_database() as d`)[0]!.d), { max: 1 });
  const [a, b] = await Promise.all([migrate(sql), migrate(other)]);
  assert.equal([...a.applied, ...b.applied], ALL);
  const [{ n }] = (await sql`select count(*)::int as n from schema_migrations`) as unknown as [{ n: number }];
  assert.is(n, ALL.length);
  await other.end();
  await sql.end();
});

test('an edited migration is refused', async () => {
  const sql = createSql(await freshDatabase(), { max: 1 });
  const edited = path.join(dir, 'edited');
  await cp(SQL_DIR, edited, { recursive: true });
  await writeFile(path.join(edited, '00001_init.sql'), '-- changed\nselect 1;\n');
  await rejects(migrate(sql, edited), /edited/);
  await sql.end();
});

/**
 * What schema_migrations holds in a database migrated before the digest covered statements only:
 * the SHA-256 of each file's exact bytes as shipped then (00001 and 00003 have since had comments
 * corrected). Copied from such a database, not computed, so the test sees what production has.
 */
const RECORDED_BY_EXACT_BYTES: Record<number, string> = {
  1: '3224522f46be4700930411b08aa2ae3c081023b37d10f9aa331b262df0851e11',
  2: 'f3c4c71e0c6d87b34ffcba41a1f49ac8bd0c7c7ca53522b5040b5f6fa35e1036',
  3: 'c8f39e976116338201920f773fdcfceddacad607e3c72cb80d4e472d0817e099',
  4: '509a79ef6c1e66826d94183138eaf2e211812129938251949a3d9b1f6503bf62',
  5: '8ef5e713bf21178b84fc80036779f62a9be16c15d1c2996107e7a1e5c38b9c30',
  6: 'e58cb8beafd86ba165d4fdbdfab7ca771987ecd06521d656391160ff64bf8709',
};

/** A migrated database whose rows carry the digests an earlier build recorded. */
async function databaseMigratedByEarlierBuild(): Promise<Sql> {
  const sql = createSql(await freshDatabase(), { max: 1 });
  for (const [id, digest] of Object.entries(RECORDED_BY_EXACT_BYTES)) {
    await sql`update schema_migrations set digest = ${digest} where id = ${Number(id)}`;
  }
  return sql;
}

/** A copy of sql/ with one file rewritten by `edit`. */
async function editedCopy(name: string, file: string, edit: (text: string) => string): Promise<string> {
  const copy = path.join(dir, name);
  await cp(SQL_DIR, copy, { recursive: true });
  const text = await readFile(path.join(copy, file), 'utf8');
  const changed = edit(text);
  assert.is.not(changed, text, `the edit of ${file} changed nothing`);
  await writeFile(path.join(copy, file), changed);
  return copy;
}

const rewordComments = (text: string): string => text.replace(/^-- /gm, '--   reworded: ').replace(/\n\n/g, '\n\n\n');
const renameAColumn = (text: string): string => text.replace('member_did text        not null', 'member text not null');

test('a database that recorded the digests of the exact bytes still migrates, and stays as recorded', async () => {
  const sql = await databaseMigratedByEarlierBuild();
  assert.equal((await migrate(sql)).applied, []);
  const rows = await sql<{ id: number; digest: string }[]>`select id, digest from schema_migrations where id <= 6 order by id`;
  assert.equal(Object.fromEntries(rows.map((r) => [r.id, r.digest])), RECORDED_BY_EXACT_BYTES, 'rows are not rewritten: the earlier build still starts on them');
  await sql.end();
});

test('a comment or the layout changed in an applied migration is accepted, whichever digest the database recorded', async () => {
  const copy = await editedCopy('comments', '00003_one_statement_routes.sql', rewordComments);
  const current = createSql(await freshDatabase(), { max: 1 });
  assert.equal((await migrate(current, copy)).applied, []);
  await current.end();
  const earlier = await databaseMigratedByEarlierBuild();
  assert.equal((await migrate(earlier, copy)).applied, []);
  await earlier.end();
});

test('a changed statement is refused, whichever digest the database recorded', async () => {
  const copy = await editedCopy('statement', '00001_init.sql', renameAColumn);
  const current = createSql(await freshDatabase(), { max: 1 });
  await rejects(migrate(current, copy), /00001_init\.sql was edited/);
  await current.end();
  const earlier = await databaseMigratedByEarlierBuild();
  await rejects(migrate(earlier, copy), /00001_init\.sql was edited/);
  await earlier.end();
});

test('a comment inside a function body counts as a statement: PostgreSQL keeps the body verbatim', async () => {
  const copy = await editedCopy('body', '00003_one_statement_routes.sql', (t) => t.replace('  -- The same key the two-statement version locked', '  -- Reworded'));
  const sql = createSql(await freshDatabase(), { max: 1 });
  await rejects(migrate(sql, copy), /00003_one_statement_routes\.sql was edited/);
  await sql.end();
});

test('the statement digest drops comments and folds white space, and keeps literals and bodies exact', () => {
  assert.is(normaliseSql('-- head\ncreate  table t (\n  a int, -- why\n  b /* x /* nested */ y */ text\n);\n'), 'create table t ( a int, b text );');
  assert.is(normaliseSql("select '--  not  a comment', \"a  b\", E'it\\'s  -- kept', 'it''s  /* kept */';"), "select '--  not  a comment', \"a  b\", E'it\\'s  -- kept', 'it''s  /* kept */';");
  assert.is(normaliseSql('as $fn$\n  -- kept\n  select  1\n$fn$;  -- dropped'), 'as $fn$\n  -- kept\n  select  1\n$fn$;');
  assert.is(normaliseSql('select a$b  --x\n, $1'), 'select a$b , $1');
});

test('a gap in the numbering is refused', async () => {
  const sql = createSql(await freshDatabase(), { max: 1 });
  const gap = path.join(dir, 'gap');
  await cp(SQL_DIR, gap, { recursive: true });
  await writeFile(path.join(gap, `${String(ALL.length + 2).padStart(5, '0')}_later.sql`), 'select 1;\n');
  await rejects(migrate(sql, gap), /numbered/);
  await sql.end();
});

test('a failing migration leaves nothing half-applied', async () => {
  const sql = createSql(await freshDatabase(), { max: 1 });
  const bad = path.join(dir, 'bad');
  await cp(SQL_DIR, bad, { recursive: true });
  await writeFile(path.join(bad, `${String(ALL.length + 1).padStart(5, '0')}_bad.sql`), 'create table half_done (id int);\nselect * from no_such_table;\n');
  try {
    await migrate(sql, bad);
    assert.unreachable('a broken migration was applied');
  } catch (err) {
    assert.not.instance(err, MigrationError);
  }
  const [row] = await sql`select to_regclass('half_done') as t`;
  assert.is(row!.t, null);
  const [{ n }] = (await sql`select count(*)::int as n from schema_migrations`) as unknown as [{ n: number }];
  assert.is(n, ALL.length);
  await sql.end();
});

test('npm run migrate applies, then says the database is up to date, and fails plainly when unreachable', async () => {
  const sql = await emptyDatabase();
  const [{ d }] = (await sql`select current_database() as d`) as unknown as [{ d: string }];
  const url = withDatabase((await harness()).databaseUrl, d);
  const first = await runScript('scripts/migrate.ts', [], { DATABASE_URL: url });
  assert.is(first.code, 0, first.stderr);
  assert.match(first.stdout, /applied: 00001_init\.sql, 00002_/);
  const second = await runScript('scripts/migrate.ts', [], { DATABASE_URL: url });
  assert.is(second.code, 0);
  assert.match(second.stdout, /up to date/);
  const down = await runScript('scripts/migrate.ts', [], { DATABASE_URL: 'postgres://x:y@127.0.0.1:1/none' });
  assert.is(down.code, 1);
  assert.match(down.stderr, /^cannot migrate: /);
  assert.not.match(down.stderr, /\n\s+at /, 'no stack trace');
  await sql.end();
});

test('MIGRATE_ON_START=false: a broker refuses a database that lacks a migration, and starts on a migrated one', async () => {
  const sql = await emptyDatabase();
  const [{ d }] = (await sql`select current_database() as d`) as unknown as [{ d: string }];
  const env = await testEnv({ DATABASE_URL: withDatabase((await harness()).databaseUrl, d), MIGRATE_ON_START: 'false' });
  const config = loadConfig(env);
  assert.equal(await pendingMigrations(sql), ALL);
  try {
    const ctx = await createContext(config, { migrate: 'check' });
    await ctx.close();
    assert.unreachable('started on an unmigrated database');
  } catch (err) {
    assert.match((err as Error).message, /lacks migrations 00001_init\.sql.*run the migrate step first/);
  }
  assert.equal(await pendingMigrations(sql), ALL, 'nothing was applied');
  await migrate(sql);
  assert.equal(await pendingMigrations(sql), []);
  const ctx = await createContext(config, { migrate: 'check' });
  await ctx.close();
  await sql.end();
});

test('the production build (dist/src/db) finds sql/ at the package root too', () => {
  const root = path.resolve(SQL_DIR, '..');
  const fromDist = new URL(`file://${path.join(root, 'dist/src/db/migrate.js')}`);
  assert.is(findSqlDir(fromDist), SQL_DIR);
  assert.is(findSqlDir(new URL(`file://${path.join(root, 'src/db/migrate.ts')}`)), SQL_DIR);
});

test.run();
