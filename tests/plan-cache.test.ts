// The hot routes' SQL functions plan each statement once per connection, not on every call. A
// plpgsql statement with parameters gets five custom plans, then PostgreSQL compares their cost with
// a generic plan's; when the generic plan looks dearer (`id = any($1)` over an array of unknown
// length does) it keeps planning afresh on every call, and the planning costs more than the work:
// ack spent ~280 µs of its ~430 µs in PostgreSQL planning three statements (scripts/bench/NOTES.md,
// round 3). auto_explain, loaded in the test's own session, shows every nested statement's plan:
// a custom plan has the call's values written into it, a generic one has $n in their place.
import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ackMessages, commitMessageRows } from '../src/db/messages.js';
import { createSql, type Sql } from '../src/db/sql.js';
import { reserveUploadRow } from '../src/db/uploads.js';
import { freshDatabase } from './helpers/harness.js';
import { did } from './helpers/tokens.js';

const test = suite('plan cache of the hot functions');
let sql: Sql;
let notices: string[] = [];

const CONVO = 'plans';
const sender = did('plan-sender');
const recipients = Array.from({ length: 3 }, (_, i) => did(`plan-recipient-${i}`));
const rules = { enforceMembership: true, maxPending: 1000, maxBytesPerDay: 1 << 30 };
/** Calls before the plan cache settles: five custom plans, then the choice. */
const WARM = 6;

test.before(async () => {
  sql = createSql(await freshDatabase(), { max: 1, onNotice: (m) => notices.push(m) });
  await sql`insert into convo_members ${sql([sender, ...recipients].map((d) => ({ convo_id: CONVO, member_did: d })))}`;
  await sql`load 'auto_explain'`;
  await sql`set auto_explain.log_min_duration = 0`;
  await sql`set auto_explain.log_nested_statements = on`;
  await sql`set auto_explain.log_level = notice`;
  // The values bound to a plan's parameters are not the plan: leave them out of the text.
  await sql`set auto_explain.log_parameter_max_length = 0`;
});
test.after(async () => {
  await sql?.end();
});

/** The plans of the statements run inside the function during `fn`, each with its query text. */
async function nestedPlans(fn: () => Promise<unknown>, functionName: string): Promise<string[]> {
  notices = [];
  await fn();
  // The call itself is one of them; the rest ran inside it.
  return notices.filter((n) => !n.includes(`${functionName}(`));
}

/** Fails when a plan has one of the call's own values written into it: planned for this call alone. */
function assertGeneric(plans: string[], values: string[], what: string): void {
  assert.ok(plans.length > 0, `${what}: auto_explain showed no nested statement`);
  for (const plan of plans) {
    for (const v of values) assert.not.ok(plan.includes(v), `${what}: a statement was planned for this call alone (${v} in its plan):\n${plan}`);
  }
}

function upload(messageId: string) {
  const now = new Date();
  const later = new Date(now.getTime() + 3600_000);
  return {
    messageId, senderDid: sender, convoId: CONVO, blobKey: `k/${messageId}`, size: 16, md5: 'AAAAAAAAAAAAAAAAAAAAAA==', sha256: null,
    contentType: 'application/octet-stream', multipartUploadId: null, partSize: null, createdAt: now, commitDeadline: later, urlsValidUntil: later,
  };
}

const ids = Array.from({ length: WARM + 3 }, () => randomUUID());

test('reserve_upload: every statement inside plans once (generic) after the first calls', async () => {
  for (const [i, id] of ids.entries()) {
    const plans = await nestedPlans(async () => assert.is((await reserveUploadRow(sql, upload(id), rules)).outcome, 'created'), 'reserve_upload');
    if (i >= WARM) assertGeneric(plans, [id, sender], `reserve_upload, call ${i + 1}`);
  }
});

test('commit_message: every statement inside plans once (generic) after the first calls', async () => {
  for (const [i, id] of ids.entries()) {
    const plans = await nestedPlans(async () => {
      const r = await commitMessageRows(sql, { messageId: id, commitDigest: 'd', metadata: null, recipients, enforceMembership: true, maxRecipients: 100, now: new Date() });
      assert.is(r.status, 'created');
    }, 'commit_message');
    if (i >= WARM) assertGeneric(plans, [id, ...recipients], `commit_message, call ${i + 1}`);
  }
});

test('ack_messages: every statement inside plans once (generic) after the first calls', async () => {
  for (const [i, id] of ids.entries()) {
    const plans = await nestedPlans(async () => assert.equal(await ackMessages(sql, recipients[0]!, [id], new Date()), [id]), 'ack_messages');
    if (i >= WARM) assertGeneric(plans, [id, recipients[0]!], `ack_messages, call ${i + 1}`);
  }
});

test.run();
