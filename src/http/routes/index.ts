import type { RouteDef } from '../route.js';
import { limitsRoutes } from './limits.js';

/** Every /api/v1 route. */
export function apiRoutes(): RouteDef[] {
  return [...limitsRoutes()];
}
