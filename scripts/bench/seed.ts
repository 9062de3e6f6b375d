// Rows the scenarios need, bulk-loaded with SQL (INSERT … SELECT over generate_series) rather than
// through the API: a pending page is measured over 100 k and over millions of recipient rows.
// The bench's own database only; the broker's code never sees these statements.
import { transaction, type Sql, type TxSql } from '../../src/db/sql.js';

/** did:plc: + 24 base32 letters from a number (digits 0–9 become a–j). The same in SQL below. */
export function benchDid(k: number): string {
  return `did:plc:${String(k).padStart(24, '0').replace(/[0-9]/g, (d) => String.fromCharCode(97 + Number(d)))}`;
}

/** Message i's id: UUIDv7-shaped and ordered like i. */
export function benchMessageId(i: number): string {
  return `00000000-0000-7000-8000-${i.toString(16).padStart(12, '0')}`;
}

/** Recipients per seeded message, and the DIDs the measured pages belong to (each has 100 messages). */
export const PER_MESSAGE = 100;
export const MEASURED_DIDS = 1000;
/** Recipient j of message i, for the first MEASURED_DIDS messages: ten apart, so all distinct. */
export const measuredRecipient = (i: number, j: number) => (i + 10 * j) % MEASURED_DIDS;
/** Recipients of the messages loaded after those, drawn from another range. */
const OTHER_BASE = 1_000_000;
const OTHER_DIDS = 100_000;

/** Messages [from, to) of a sender that is not in any scenario, with their recipient rows. */
export async function seedMessages(sql: Sql, from: number, to: number): Promise<void> {
  const sender = benchDid(999_999);
  // One transaction without the foreign-key triggers (session_replication_role = replica): every row
  // refers to a message inserted just before it, and checking 100 rows a message one by one was
  // most of the load's time. The bench's own superuser connection only.
  await transaction(sql, async (tx) => {
    await tx`set local session_replication_role = replica`;
    await insertMessages(tx, sender, from, to);
  });
}

async function insertMessages(sql: TxSql, sender: string, from: number, to: number): Promise<void> {
  await sql`
    insert into messages (id, convo_id, sender_did, blob_key, size, commit_digest, created_at)
    select ('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'seeded', ${sender},
           'm/2000/01/01/seeded-' || i, 64, 'seeded', now()
    from generate_series(${from}::int, ${to - 1}::int) i`;
  // Recipient j of message i: measuredRecipient(i, j) for the first MEASURED_DIDS messages, then
  // DIDs of another range; as a number k, spelt like benchDid(k).
  await sql`
    insert into message_recipients (message_id, recipient_did)
    select id, 'did:plc:' || translate(lpad(k::text, 24, '0'), '0123456789', 'abcdefghij')
    from (
      select ('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid as id,
             case when i < ${MEASURED_DIDS}::int then (i + 10 * j) % ${MEASURED_DIDS}::int
                  else ${OTHER_BASE}::int + (i + 1000 * j) % ${OTHER_DIDS}::int end as k
      from generate_series(${from}::int, ${to - 1}::int) i, generate_series(0, ${PER_MESSAGE - 1}::int) j
    ) r`;
}

/** Brings the message_recipients table to `rows` rows, in chunks so progress shows. */
export async function growRecipientRows(sql: Sql, rows: number, log: (s: string) => void): Promise<void> {
  const [{ n }] = (await sql`select count(*)::int as n from messages where convo_id = 'seeded'`) as unknown as [{ n: number }];
  const target = Math.ceil(rows / PER_MESSAGE);
  const chunk = 10_000; // messages: 1 M recipient rows
  for (let at = n; at < target; at += chunk) {
    const t = performance.now();
    await seedMessages(sql, at, Math.min(target, at + chunk));
    log(`  seeded ${(Math.min(target, at + chunk) * PER_MESSAGE).toLocaleString('en')} recipient rows (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  }
  // As after any bulk load: without it, autovacuum would start on the new rows while the pages are
  // measured (on 10 M rows, for minutes), and the index-only scan would visit the heap for every entry
  // until the visibility map is set.
  await sql`vacuum (analyze) messages, message_recipients`;
}

/** Conversation members, in one statement. */
export async function seedMembers(sql: Sql, convoId: string, dids: readonly string[]): Promise<void> {
  const rows = dids.map((d) => ({ convo_id: convoId, member_did: d }));
  await sql`insert into convo_members ${sql(rows, 'convo_id', 'member_did')} on conflict do nothing`;
}

/** The plan PostgreSQL picks for the first pending page of a measured DID (for RESULTS.md). */
export async function explainPending(sql: Sql): Promise<string> {
  const rows = await sql`
    explain (analyze, buffers, costs off, timing off, summary off)
    select m.id, m.convo_id, m.sender_did, m.size, floor(extract(epoch from m.created_at) * 1000)::int8 as created_ms
    from message_recipients r join messages m on m.id = r.message_id
    where r.recipient_did = ${benchDid(7)} and not r.delivered
    order by r.message_id limit 101`;
  return rows.map((r) => r['QUERY PLAN'] as string).join('\n');
}
