import { Type } from './typebox.js';
import type * as wire from '../client/wire.js';
import { did, object, string, type Assert, type Same } from './common.js';

const MAX_MEMBERS = 10_000;
const members = Type.Array(did, { maxItems: MAX_MEMBERS, uniqueItems: true });

export const replaceMembersBody = object({ members });
export const changeMembersBody = object({ add: Type.Optional(members), remove: Type.Optional(members) }, { minProperties: 1 });
export const membersResponse = object({ convo_id: string, members: Type.Array(did) });

// The type checker holds these schemas to the wire contract.
type Checks = [
  Assert<Same<typeof replaceMembersBody, wire.ReplaceMembersRequest>>,
  Assert<Same<typeof changeMembersBody, wire.ChangeMembersRequest>>,
  Assert<Same<typeof membersResponse, wire.Members>>,
];
