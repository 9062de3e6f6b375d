// Conversation membership.
import type { Tx } from './sql.js';

export async function listMembers(sql: Tx, convoId: string): Promise<string[]> {
  const rows = await sql<{ memberDid: string }[]>`
    select member_did as "memberDid" from convo_members where convo_id = ${convoId} order by member_did`;
  return rows.map((r) => r.memberDid);
}

export async function isMember(sql: Tx, convoId: string, did: string): Promise<boolean> {
  const rows = await sql`select 1 from convo_members where convo_id = ${convoId} and member_did = ${did}`;
  return rows.length > 0;
}

/** Which of `dids` are not members of the conversation. */
export async function nonMembers(sql: Tx, convoId: string, dids: readonly string[]): Promise<string[]> {
  if (dids.length === 0) return [];
  const rows = await sql<{ did: string }[]>`
    select d as did from unnest(${sql.array([...dids])}::text[]) as d
    where not exists (select 1 from convo_members m where m.convo_id = ${convoId} and m.member_did = d)`;
  return rows.map((r) => r.did);
}

export async function addMembers(sql: Tx, convoId: string, dids: readonly string[], at: Date): Promise<void> {
  if (dids.length === 0) return;
  const rows = dids.map((d) => ({ convo_id: convoId, member_did: d, added_at: at }));
  await sql`insert into convo_members ${sql(rows, 'convo_id', 'member_did', 'added_at')} on conflict do nothing`;
}

export async function removeMembers(sql: Tx, convoId: string, dids: readonly string[]): Promise<void> {
  if (dids.length === 0) return;
  await sql`delete from convo_members where convo_id = ${convoId} and member_did = any(${sql.array([...dids])}::text[])`;
}

export async function removeMembersExcept(sql: Tx, convoId: string, keep: readonly string[]): Promise<void> {
  await sql`delete from convo_members where convo_id = ${convoId} and member_did <> all(${sql.array([...keep])}::text[])`;
}

const convoKey = (convoId: string) => `convo:${convoId}`;

/** Membership changes of one conversation take this exclusively, for the rest of the transaction. */
export async function lockConvo(sql: Tx, convoId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${convoKey(convoId)}, 0))`;
}

/** Commits take it shared: they run side by side, and never across a membership change. */
export async function lockConvoShared(sql: Tx, convoId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock_shared(hashtextextended(${convoKey(convoId)}, 0))`;
}
