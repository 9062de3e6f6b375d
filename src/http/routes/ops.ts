// Operations: liveness, readiness, metrics and the API document. No authentication.
import { Type } from '../../schemas/typebox.js';
import { constant } from '../../schemas/common.js';
import { checkReadiness, type Readiness } from '../../services/health.js';
import { scopeOf } from '../request-scope.js';
import { defineRoute, type RouteDef } from '../route.js';

const readySchema = Type.Unsafe<{ status: 'ready'; checks: { database: 'ok'; storage: 'ok' } }>({
  type: 'object',
  additionalProperties: false,
  required: ['status', 'checks'],
  properties: {
    status: { const: 'ready' },
    checks: { type: 'object', additionalProperties: false, required: ['database', 'storage'], properties: { database: { const: 'ok' }, storage: { const: 'ok' } } },
  },
});

/** Readiness is public: answer from a result at most this old rather than hit both parts per call. */
const READY_CACHE_MS = 2000;

export function opsRoutes(openapi: () => unknown): RouteDef[] {
  let ready: { at: number; result: Promise<Readiness> } | null = null;
  return [
    defineRoute({
      method: 'GET',
      path: '/healthz',
      summary: 'The process is up',
      tag: 'operations',
      auth: false,
      responses: { 200: { description: 'Up', schema: Type.Object({ status: constant('ok') }) } },
      handle: async () => ({ status: 200, body: { status: 'ok' } }),
    }),
    defineRoute({
      method: 'GET',
      path: '/readyz',
      summary: 'The database and the bucket both answer',
      tag: 'operations',
      auth: false,
      responses: { 200: { description: 'Ready', schema: readySchema } },
      errors: { 503: 'DatabaseUnavailable or StorageUnavailable: not ready; details name the failing part (causes stay in the log); has Retry-After' },
      handle: async ({ app }, ctx) => {
        const now = Date.now();
        if (ready === null || now - ready.at > READY_CACHE_MS) {
          ready = { at: now, result: checkReadiness(app) };
        }
        const { database, storage } = await ready.result;
        const checks = { database: database ?? 'ok', storage: storage ?? 'ok' };
        if (database === null && storage === null) return { status: 200, body: { status: 'ready', checks } };
        const failing = [database !== null && 'database', storage !== null && 'storage'].filter(Boolean).join(' and ');
        if (database !== null) app.log.warn({ database }, 'readiness: database check failed');
        if (storage !== null) app.log.warn({ storage }, 'readiness: storage check failed');
        return {
          status: 503,
          headers: { 'Retry-After': '5' },
          // Causes stay in the log: readiness is public, so only which part fails is said here.
          body: {
            error: database !== null ? 'DatabaseUnavailable' : 'StorageUnavailable',
            message: `Not ready: the ${failing} cannot be reached.`,
            details: { database: database === null ? 'ok' : 'unavailable', storage: storage === null ? 'ok' : 'unavailable' },
            request_id: scopeOf(ctx).id,
          },
        };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/metrics',
      summary: 'Prometheus metrics',
      tag: 'operations',
      auth: false,
      responses: { 200: { description: 'Prometheus text format', contentType: 'text/plain', schema: Type.String() } },
      handle: async ({ app }) => ({
        status: 200,
        headers: { 'content-type': app.metrics.registry.contentType },
        body: await app.metrics.registry.metrics(),
      }),
    }),
    defineRoute({
      method: 'GET',
      path: '/openapi.json',
      summary: 'This document',
      tag: 'operations',
      auth: false,
      responses: { 200: { description: 'OpenAPI 3.1', schema: Type.Unsafe<Record<string, unknown>>({ type: 'object', required: ['openapi', 'info', 'paths'], properties: { openapi: { const: '3.1.0' } } }) } },
      handle: async () => ({ status: 200, body: openapi() }),
    }),
  ];
}
