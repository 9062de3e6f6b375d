import { convoIdParams } from '../../schemas/common.js';
import { changeMembersBody, membersResponse, replaceMembersBody } from '../../schemas/convos.js';
import { changeMembers, getMembers, replaceMembers } from '../../services/convos.js';
import { MAX_BODY_BYTES } from '../body.js';
import { defineRoute, type RouteDef } from '../route.js';


export const convoRoutes = (): RouteDef[] => [
  defineRoute({
    method: 'PUT',
    path: '/api/v1/convos/:convo_id/members',
    summary: 'Replace the member set (service only)',
    tag: 'conversations',
    auth: true,
    params: convoIdParams,
    body: replaceMembersBody,
    errors: { 403: 'Forbidden: services only' },
    maxBodyBytes: MAX_BODY_BYTES, // up to 10,000 members
    responses: { 200: { description: 'The members', schema: membersResponse } },
    handle: async ({ app, caller, params, body }) => ({ status: 200, body: await replaceMembers(app, caller, params.convo_id, body.members) }),
  }),
  defineRoute({
    method: 'POST',
    path: '/api/v1/convos/:convo_id/members',
    summary: 'Add and remove members (service only)',
    tag: 'conversations',
    auth: true,
    params: convoIdParams,
    body: changeMembersBody,
    errors: { 403: 'Forbidden: services only' },
    maxBodyBytes: MAX_BODY_BYTES,
    responses: { 200: { description: 'The members', schema: membersResponse } },
    handle: async ({ app, caller, params, body }) => ({ status: 200, body: await changeMembers(app, caller, params.convo_id, body) }),
  }),
  defineRoute({
    method: 'GET',
    path: '/api/v1/convos/:convo_id/members',
    summary: 'List members (members and services)',
    tag: 'conversations',
    auth: true,
    params: convoIdParams,
    responses: { 200: { description: 'The members', schema: membersResponse } },
    handle: async ({ app, caller, params }) => ({ status: 200, body: await getMembers(app, caller, params.convo_id) }),
  }),
];
