// Conversation membership, managed by the delivery service.
import type { AppContext } from '../context.js';
import { addMembers, isMember, listMembers, lockConvo, removeMembers, removeMembersExcept } from '../db/convos.js';
import type { Caller } from '../auth.js';
import { transaction } from '../db/sql.js';
import type { ChangeMembersRequest, Members } from '../client/wire.js';
import { forbidden, notFound } from '../errors.js';

function requireService(caller: Caller): void {
  if (!caller.isService) throw forbidden('Only the delivery service manages conversation membership.');
}

export async function replaceMembers(app: AppContext, caller: Caller, convoId: string, members: string[]): Promise<Members> {
  requireService(caller);
  const now = app.clock.now();
  const list = await transaction(app.sql, async (tx) => {
    await lockConvo(tx, convoId);
    await removeMembersExcept(tx, convoId, members);
    await addMembers(tx, convoId, members, now);
    return listMembers(tx, convoId);
  });
  return { convo_id: convoId, members: list };
}

export async function changeMembers(app: AppContext, caller: Caller, convoId: string, change: ChangeMembersRequest): Promise<Members> {
  requireService(caller);
  const now = app.clock.now();
  const list = await transaction(app.sql, async (tx) => {
    await lockConvo(tx, convoId);
    await removeMembers(tx, convoId, change.remove ?? []);
    await addMembers(tx, convoId, change.add ?? [], now);
    return listMembers(tx, convoId);
  });
  return { convo_id: convoId, members: list };
}

/** Members and services may list; anyone else cannot tell the conversation exists. */
export async function getMembers(app: AppContext, caller: Caller, convoId: string): Promise<Members> {
  if (!caller.isService && !(await isMember(app.sql, convoId, caller.did))) throw notFound('conversation');
  return { convo_id: convoId, members: await listMembers(app.sql, convoId) };
}
