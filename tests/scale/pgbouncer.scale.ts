// Through a real PgBouncer (Debian's 1.18, transaction mode: no prepared statements there): no
// acknowledged write is lost, the whole flow works with DATABASE_PREPARE=false, migrations apply.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config.js';
import { createContext } from '../../src/context.js';
import { migrateDatabase } from '../../src/db/migrate.js';
import { reconcile, SKIPPED_LOCKED } from '../../src/jobs/reconcile.js';
import { createLogger } from '../../src/log.js';
import { createSql, type Sql } from '../../src/db/sql.js';
import { bytes, md5b64, putBytes, setMembers, sha256b64, TEST_SERVICE } from '../helpers/flow.js';
import { harness, startTestApp, testEnv, withDatabase, type TestApp } from '../helpers/harness.js';
import { did } from '../helpers/tokens.js';
import { startPgBouncer } from './helpers/services.js';

const test = suite('PgBouncer in transaction mode');
let pgb: Awaited<ReturnType<typeof startPgBouncer>>;
const alice = did('alice');
const bob = did('bob');

test.before(async () => {
  const h = await harness();
  const u = new URL(h.databaseUrl);
  pgb = await startPgBouncer({ host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), poolSize: 2 });
});
test.after(() => pgb?.stop());

/** A broker whose DATABASE_URL is PgBouncer, and a direct pool on the same database to check rows. */
async function behindPgBouncer(env: Record<string, string> = {}): Promise<{ app: TestApp; direct: Sql }> {
  const base = await testEnv();
  const database = new URL(base.DATABASE_URL!).pathname.slice(1);
  const app = await startTestApp({ env: { ...base, DATABASE_URL: pgb.urlFor(database), MAX_PENDING_UPLOADS: '10000', ...env } });
  return { app, direct: createSql(base.DATABASE_URL!, { max: 2 }) };
}

interface Outcome {
  reserved: string[];
  committed: string[];
  failures: number;
}

/** Eight clients reserve, PUT and commit `n` messages each, at once; records what was acknowledged. */
async function sendMany(app: TestApp, n: number): Promise<Outcome> {
  const out: Outcome = { reserved: [], committed: [], failures: 0 };
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = 0; i < n; i++) {
        const data = bytes(64);
        const r = await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: 'c', size: 64, md5: md5b64(data) } });
        if (r.status !== 201) {
          out.failures++;
          continue;
        }
        out.reserved.push(r.body.message_id);
        assert.is(await putBytes(r.body.upload, data), 200);
        const c = await app.call('POST', '/api/v1/messages', { as: alice, body: { message_id: r.body.message_id } });
        if (c.status === 201) out.committed.push(r.body.message_id);
        else out.failures++;
      }
    }),
  );
  return out;
}

test('prepared statements on (the old default): transactions fail loudly, and every 2xx is really written', async () => {
  const { app, direct } = await behindPgBouncer({ DATABASE_PREPARE: 'true' });
  try {
    await setMembers(app, 'c', [alice, bob]);
    // Membership changes are transactions (lock, remove, add, list): statements prepared on one
    // server connection meet another, which is the situation that acknowledged lost writes.
    // Whether a transaction meets a server connection without its statements depends on how the
    // requests interleave: rounds continue until it has happened (at most 10).
    const added: string[] = [];
    let failures = 0;
    for (let round = 0; failures === 0 && round < 10; round++) {
      await Promise.all(
        Array.from({ length: 8 }, async (_, worker) => {
          for (let i = 0; i < 15; i++) {
            const member = `did:web:m${round}-${worker}-${i}.example`;
            const r = await app.call('POST', '/api/v1/convos/c/members', { as: TEST_SERVICE, body: { add: [member] } });
            if (r.status === 200) added.push(member);
            else failures++;
          }
        }),
      );
    }
    assert.ok(failures > 0, 'PgBouncer made prepared statements fail inside transactions');
    const members = new Set((await direct`select member_did from convo_members where convo_id = 'c'`).map((r) => r.member_did as string));
    for (const m of added) assert.ok(members.has(m), `adding ${m} was answered 200 but it is not a member`);
    assert.is(members.size, added.length + 2, 'nothing was written without its 200 either');
    // The one-statement hot path retries a vanished prepared statement outside any transaction.
    const out = await sendMany(app, 5);
    const pending = new Set(
      (await direct`select message_id from message_recipients where recipient_did = ${bob} and not delivered`).map((r) => r.message_id as string),
    );
    for (const id of out.committed) assert.ok(pending.has(id), `commit ${id} was answered 201 but bob was never offered it`);
    const uploads = new Set((await direct`select message_id from uploads`).map((r) => r.message_id as string));
    for (const id of out.reserved) assert.ok(uploads.has(id), `reservation ${id} was answered 201 but has no row`);
  } finally {
    await app.close();
    await direct.end();
  }
});

test('DATABASE_PREPARE=false: the whole flow through PgBouncer, under concurrency, with no failure', async () => {
  const { app, direct } = await behindPgBouncer({ DATABASE_PREPARE: 'false' });
  try {
    await setMembers(app, 'c', [alice, bob]);
    const out = await sendMany(app, 10);
    assert.is(out.failures, 0);
    assert.is(out.committed.length, 80);
    // Pending, fetch with the bytes, ack (single and batch): the recipient's side.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor === null ? '' : `&cursor=${cursor}`;
      const page = await app.call('GET', `/api/v1/messages/pending?limit=30${q}`, { as: bob });
      assert.is(page.status, 200, page.text);
      seen.push(...page.body.messages.map((m: { message_id: string }) => m.message_id));
      cursor = page.body.cursor;
    } while (cursor !== null);
    assert.equal([...seen].sort(), [...out.committed].sort());
    const data = bytes(1000);
    const r = await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: 'c', size: 1000, md5: md5b64(data), sha256: sha256b64(data) } });
    assert.is(await putBytes(r.body.upload, data), 200);
    assert.is((await app.call('POST', '/api/v1/messages', { as: alice, body: { message_id: r.body.message_id } })).status, 201);
    const m = await app.call('GET', `/api/v1/messages/${r.body.message_id}`, { as: bob });
    assert.is(m.status, 200, m.text);
    assert.ok(Buffer.from(await (await fetch(m.body.download.url)).arrayBuffer()).equals(data));
    assert.is((await app.call('POST', `/api/v1/messages/${r.body.message_id}/ack`, { as: bob })).status, 204);
    const many = await app.call('POST', '/api/v1/messages/ack', { as: bob, body: { message_ids: out.committed.slice(0, 50) } });
    assert.is(many.status, 200, many.text);
    assert.is(many.body.acked.length, 50);
    const [{ n }] = (await direct`select count(*)::int as n from message_recipients where not delivered`) as unknown as [{ n: number }];
    assert.is(n, 30);
  } finally {
    await app.close();
    await direct.end();
  }
});

test('migrations apply through PgBouncer, twice at once, each file once', async () => {
  const h = await harness();
  const name = `scale_m_${Date.now().toString(36)}`;
  await h.adminSql`create database ${h.adminSql(name)}`;
  const env = { ...(await testEnv()), DATABASE_URL: pgb.urlFor(name), DATABASE_PREPARE: 'false' };
  const config = loadConfig(env);
  const [a, b] = await Promise.all([migrateDatabase(config, env.DATABASE_URL), migrateDatabase(config, env.DATABASE_URL)]);
  const applied = [...a.applied, ...b.applied];
  assert.ok(applied.length > 0);
  assert.is(new Set(applied).size, applied.length, 'no file applied twice');
  assert.equal((await migrateDatabase(config, env.DATABASE_URL)).applied, []);
  const direct = createSql(withDatabase(h.databaseUrl, name), { max: 1 });
  const [{ n }] = (await direct`select count(*)::int as n from schema_migrations`) as unknown as [{ n: number }];
  assert.is(n, applied.length);
  await direct.end();
});

test('two reconcile passes at once through PgBouncer: one runs, the other skips, and what is due goes once', async () => {
  const { app, direct } = await behindPgBouncer({ DATABASE_PREPARE: 'false' });
  const other = await createContext(app.config, { migrate: false, log: createLogger('silent'), clock: app.clock });
  try {
    await setMembers(app, 'c', [alice, bob]);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const data = bytes(100);
      const r = await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: 'c', size: 100, md5: md5b64(data) } });
      assert.is(await putBytes(r.body.upload, data), 200);
      ids.push(r.body.message_id);
    }
    // Each pass's store calls are slowed down so that the two passes surely overlap.
    const slow = (store: typeof other.store) => {
      const s = Object.create(store) as typeof store;
      s.deleteMany = async (keys) => (await new Promise((r) => setTimeout(r, 500)), store.deleteMany(keys));
      return s;
    };
    const later = new Date(Date.now() + 2 * 3600_000);
    const [a, b] = await Promise.all([
      reconcile({ ...app.ctx, store: slow(app.ctx.store) }, { now: later }),
      reconcile({ ...other, store: slow(other.store) }, { now: later }),
    ]);
    assert.equal([a.skipped, b.skipped].filter((x) => x !== null), [SKIPPED_LOCKED], 'exactly one pass ran');
    const ran = a.skipped === null ? a : b;
    assert.is(ran.expiredUploads.count, 6);
    assert.is(ran.cleanedUploads.count, 6);
    assert.equal(ran.errors, []);
    const rows = await direct`select state, cleaned_at is not null as cleaned from uploads`;
    assert.ok(rows.every((r) => r.state === 'expired' && r.cleaned === true));
    for (const id of ids) assert.is(await app.ctx.store.head((await direct`select blob_key from uploads where message_id = ${id}`)[0]!.blob_key), null);
    assert.is((await direct`select count(*)::int as n from job_leases`)[0]!.n, 0, 'the lease was released');
  } finally {
    await other.close();
    await app.close();
    await direct.end();
  }
});

test.run();
