import { did, object } from './common.js';

const MAX_MEMBERS = 10_000;
const members = { type: 'array', maxItems: MAX_MEMBERS, uniqueItems: true, items: did };

export const replaceMembersBody = object({ members }, ['members']);
export const changeMembersBody = { ...object({ add: members, remove: members }), minProperties: 1 };
export const membersResponse = object({ convo_id: { type: 'string' }, members: { type: 'array', items: did } }, ['convo_id', 'members']);
