import type { Config } from '../../config.js';
import type { RouteDef } from '../route.js';
import { convoRoutes } from './convos.js';
import { limitsRoutes } from './limits.js';
import { messageRoutes } from './messages.js';
import { uploadRoutes } from './uploads.js';

/** Every /api/v1 route. Static paths come before parameterised ones (…/pending before …/:id). */
export function apiRoutes(config: Readonly<Config>): RouteDef[] {
  return [...uploadRoutes(), ...messageRoutes(config), ...convoRoutes(), ...limitsRoutes()];
}
