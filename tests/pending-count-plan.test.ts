// The pending cap's count (sql/00003 `open_uploads`, run under the sender's lock by every
// reservation) reads the sender's own uploads only, whatever the table looked like when a connection
// planned it. Two partial indexes hold every pending upload: by sender (the count's) and by deadline
// (reconciliation's). While the planner believes the pending set is nearly empty both look equally
// cheap, and a connection that planned the count then went on scanning every sender's pending uploads
// for each reservation until the next ANALYZE of uploads replaced its plan (scripts/bench/NOTES.md,
// round 5). auto_explain, loaded in the test's own session, shows the nested statements' plans.
import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSql, type Sql } from '../src/db/sql.js';
import { reserveUploadRow } from '../src/db/uploads.js';
import { freshDatabase } from './helpers/harness.js';

const test = suite('the pending count reads the sender\'s own uploads');
let url: string;
let sql: Sql;
let admin: Sql;
let notices: string[] = [];

const CONVO = 'count-plan';
/** did:plc: and 24 letters spelling i (tests/helpers/tokens.ts's did() may map two seeds to one DID). */
const senders = Array.from({ length: 200 }, (_, i) => `did:plc:${String(i).padStart(24, '0').replace(/[0-9]/g, (d) => String.fromCharCode(97 + Number(d)))}`);
const rules = { enforceMembership: true, maxPending: 100_000, maxBytesPerDay: 1 << 30 };

function upload(sender: string) {
  const messageId = randomUUID();
  const now = new Date();
  const later = new Date(now.getTime() + 3600_000);
  return {
    messageId, senderDid: sender, convoId: CONVO, blobKey: `k/${messageId}`, size: 16, md5: 'AAAAAAAAAAAAAAAAAAAAAA==', sha256: null,
    contentType: 'application/octet-stream', multipartUploadId: null, partSize: null, createdAt: now, commitDeadline: later, urlsValidUntil: later,
  };
}

test.before(async () => {
  url = await freshDatabase();
  admin = createSql(url, { max: 1 });
  await admin`insert into convo_members ${admin(senders.map((d) => ({ convo_id: CONVO, member_did: d })))}`;
  // A few hundred pending uploads of many senders, as a broker's first minute leaves them: the
  // table has never been analyzed.
  for (let i = 0; i < 300; i++) assert.is((await reserveUploadRow(admin, upload(senders[i % senders.length]!), rules)).outcome, 'created');
  // A new connection plans the count now (five custom plans, then the generic one).
  sql = createSql(url, { max: 1, onNotice: (m) => notices.push(m) });
  await sql`load 'auto_explain'`;
  await sql`set auto_explain.log_min_duration = 0`;
  await sql`set auto_explain.log_nested_statements = on`;
  await sql`set auto_explain.log_level = notice`;
});
test.after(async () => {
  await sql?.end();
  await admin?.end();
});

test('every reservation counts through the by-sender index, before and after many more pending uploads', async () => {
  const sender = senders[0]!;
  const counts = async () => {
    notices = [];
    assert.is((await reserveUploadRow(sql, upload(sender), rules)).outcome, 'created');
    const plans = notices.filter((n) => /select count\(\*\) from \(\s*select 1 from uploads/.test(n));
    assert.ok(plans.length === 1, `one plan of the pending count expected, got ${plans.length}:\n${notices.join('\n')}`);
    return plans[0]!;
  };
  for (let i = 0; i < 8; i++) await counts();
  // Thousands more pending uploads of other senders: a reservation must not read them.
  for (let i = 0; i < 2000; i++) await reserveUploadRow(admin, upload(senders[1 + (i % (senders.length - 1))]!), rules);
  const plan = await counts();
  assert.not.match(plan, /uploads_pending_by_deadline/, `the count scans every sender's pending uploads:\n${plan}`);
  assert.not.match(plan, /uploads_done_by_created/, `the count scans every finished upload:\n${plan}`);
});

test('and through the by-sender index for finished uploads, when it was planned while there were none', async () => {
  const sender = senders[0]!;
  // The statistics now say no upload is finished; the connection plans the count afresh.
  await admin`analyze uploads`;
  for (let i = 0; i < 8; i++) {
    notices = [];
    assert.is((await reserveUploadRow(sql, upload(sender), rules)).outcome, 'created');
  }
  // Other senders' uploads end without a commit (their URLs still valid): a reservation must not read them.
  await admin`update uploads set state = 'aborted' where sender_did <> ${sender}`;
  notices = [];
  assert.is((await reserveUploadRow(sql, upload(sender), rules)).outcome, 'created');
  const plan = notices.find((n) => /select count\(\*\) from \(\s*select 1 from uploads/.test(n)) ?? '';
  assert.match(plan, /Scan/, `no plan of the count:\n${notices.join('\n')}`);
  assert.not.match(plan, /uploads_done_by_created|uploads_pending_by_deadline/, `the count scans other senders' uploads:\n${plan}`);
});

test.run();
