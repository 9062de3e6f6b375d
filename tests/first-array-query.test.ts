// postgres.js 3.4.9 builds a new pool's first query before the array types it fetched are known
// (porsager/postgres#789): a JavaScript array went to PostgreSQL as "a,b" instead of {a,b}, and the
// broker's first ack, commit or reservation with recipients after a start failed with a 500
// ("malformed array literal"). scripts/patch-postgres.mjs holds that query until the types are in.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSql } from '../src/db/sql.js';
import { startTestApp, testEnv } from './helpers/harness.js';
import { did } from './helpers/tokens.js';

const test = suite('a new pool\'s first query with an array parameter');
const ID = '00000000-0000-7000-8000-000000000000';

test('the first queries of a fresh pool carry their arrays as arrays', async () => {
  const env = await testEnv();
  for (const concurrent of [1, 5]) {
    const sql = createSql(env.DATABASE_URL!, { max: 3 });
    try {
      const rows = await Promise.all(Array.from({ length: concurrent }, () => sql<{ a: string[]; t: string[] }[]>`select ${sql.array([ID])}::uuid[] as a, ${sql.array(['x', 'y,z'])}::text[] as t`));
      for (const [row] of rows) assert.equal(row, { a: [ID], t: ['x', 'y,z'] });
    } finally {
      await sql.end();
    }
  }
});

test('a broker\'s first request after its start may be an ack', async () => {
  const app = await startTestApp();
  try {
    const res = await app.call('POST', '/api/v1/messages/ack', { as: did('alice'), body: { message_ids: [ID] } });
    assert.is(res.status, 200, res.text);
    assert.equal(res.body, { acked: [], not_found: [ID] });
  } finally {
    await app.close();
  }
});

test.run();
