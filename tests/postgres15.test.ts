// The schema and the commit path on PostgreSQL 15, the oldest version we support (the rest of the
// suite runs on the embedded PostgreSQL 18).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { migrate, readMigrations } from '../src/db/migrate.js';
import { createSql } from '../src/db/sql.js';
import type { EmbeddedPostgres } from '../src/dev/embedded-postgres.js';
import { startTestApp, type TestApp } from './helpers/harness.js';
import { did } from './helpers/tokens.js';
import { send, setMembers } from './helpers/flow.js';

const test = suite('PostgreSQL 15');
let dir: string;
let pg: EmbeddedPostgres;
let app: TestApp | undefined;

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'broker-pg15-'));
  const { startEmbeddedPostgres } = await import('../src/dev/embedded-postgres.js');
  pg = await startEmbeddedPostgres(path.join(dir, 'data'), { fast: true, pkg: 'embedded-postgres-15' });
});
test.after(async () => {
  await app?.close();
  await pg?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('migrations apply and a message commits, lists and acks on 15', async () => {
  const sql = createSql(pg.url, { max: 1 });
  const [{ v }] = (await sql`select current_setting('server_version_num')::int as v`) as unknown as [{ v: number }];
  assert.ok(v >= 150000 && v < 160000, `server is ${v}`);
  // Every migration the repository ships, in order.
  assert.equal((await migrate(sql)).applied, (await readMigrations()).map((m) => m.name));
  await sql.end();
  app = await startTestApp({ env: { DATABASE_URL: pg.url } });
  const [alice, bob] = [did('alice'), did('bob')];
  await setMembers(app, 'c15', [alice, bob]);
  const id = await send(app, alice, 'c15');
  const pending = await app.call('GET', '/api/v1/messages/pending', { as: bob });
  assert.equal(pending.body.messages.map((m: { message_id: string }) => m.message_id), [id]);
  assert.is((await app.call('POST', `/api/v1/messages/${id}/ack`, { as: bob })).status, 204);
});

test.run();
