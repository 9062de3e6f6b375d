import { limitsResponse } from '../../schemas/limits.js';
import { describeLimits } from '../../services/limits.js';
import { defineRoute, type RouteDef } from '../route.js';

export const limitsRoutes = (): RouteDef[] => [
  defineRoute({
    method: 'GET',
    path: '/api/v1/limits',
    summary: "The broker's limits, the caller's pending upload count and its byte quota use",
    tag: 'limits',
    auth: true,
    responses: { 200: { description: 'Limits', schema: limitsResponse } },
    handle: async ({ app, caller }) => ({ status: 200, body: await describeLimits(app, caller) }),
  }),
];
