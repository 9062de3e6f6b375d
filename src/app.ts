// The Koa application: middleware order and the routers. No I/O happens here.
import { createServer as createHttpServer, type Server } from 'node:http';
import type RouterClass from '@koa/router';
import type KoaClass from 'koa';
import { requireCjs } from './cjs.js';
import type { Config } from './config.js';
import type { AppContext } from './context.js';
import { devPage, devPageEnabled } from './dev/dev-page.js';
import { answerClientErrors } from './http/client-error.js';
import { cors } from './http/cors.js';
import { errorHandler } from './http/error-handler.js';
import { requestScope } from './http/request-scope.js';
import { securityHeaders } from './http/security-headers.js';
import { buildOpenApi } from './http/openapi.js';
import { mountRoutes, type RouteDef } from './http/route.js';
import { apiRoutes } from './http/routes/index.js';
import { opsRoutes } from './http/routes/ops.js';

// Required, not imported: src/cjs.ts.
const Koa = requireCjs('koa') as typeof KoaClass;
const Router = requireCjs('@koa/router') as typeof RouterClass;

export const API_VERSION = '1.0.0';

/** Every route the broker serves, /openapi.json's among them. */
export function allRoutes(config: Readonly<Config>): RouteDef[] {
  let document: unknown;
  const all: RouteDef[] = [...apiRoutes(config), ...opsRoutes(() => (document ??= buildOpenApi(all, API_VERSION)))];
  return all;
}

/** The OpenAPI document of a broker with this configuration (limits are part of the schemas). */
export const openApiDocument = (config: Readonly<Config>) => buildOpenApi(allRoutes(config), API_VERSION);

export function createApp(app: AppContext): KoaClass {
  const koa = new Koa({ proxy: false });
  koa.silent = true; // errors are logged by the error handler, with the request they belong to
  const all = allRoutes(app.config);
  // Paths match exactly as documented: no trailing slash, no other letter case. A loose match
  // served /API/V1/LIMITS and /api/v1/limits/ too, which /openapi.json does not name and which a
  // proxy or firewall rule written for the documented paths would not catch.
  const router = new Router({ strict: true, sensitive: true });
  mountRoutes(router, app, all);

  // Outside the error handler, so its access line has the status the error handler settles on.
  koa.use(requestScope(app));
  koa.use(securityHeaders);
  koa.use(errorHandler(app.log));
  koa.use(cors(app.config.corsOrigins));
  // Development only: the page to try the broker in a browser (never in production).
  if (devPageEnabled(app)) koa.use(devPage(app));
  koa.use(router.routes());
  koa.use(router.allowedMethods());
  return koa;
}

/** The HTTP server of the app: Koa's, with the house error body for requests Node's parser refuses. */
export function createServer(app: AppContext): Server {
  const server = createHttpServer(createApp(app).callback());
  server.on('clientError', answerClientErrors(app));
  return server;
}
