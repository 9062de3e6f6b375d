// A route is a declaration: method, path, auth, the JSON schemas of its input, and a handler
// that receives typed input and returns a reply. The handler's input types are inferred from the
// schemas that validate it, and the same declarations feed /openapi.json, so neither the types
// nor the documentation can drift from what is validated.
import type Router from '@koa/router';
import type { Static, TSchema } from '@sinclair/typebox';
import type { Context } from 'koa';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { AppContext } from '../context.js';
import type { Caller } from '../auth.js';
import { invalidField, invalidRequest, type FieldProblem } from '../errors.js';
import { bearerToken } from './auth.js';
import { requestScoped, scopeOf } from './request-scope.js';
import { bodyLimit, readJsonBody } from './body.js';

export type Schema = TSchema;

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** A 302 target. */
  location?: string;
}

export interface RouteInput<B, Q, P> {
  app: AppContext;
  caller: Caller;
  body: B;
  query: Q;
  params: P;
}

/** A route's schema for one input, if it takes that input. */
type MaybeSchema = TSchema | undefined;
/** What a handler receives for an input: the schema's static type, or nothing when there is none. */
type Input<S extends MaybeSchema> = S extends TSchema ? Static<S> : Record<string, never>;

export interface RouteDef<B extends MaybeSchema = MaybeSchema, Q extends MaybeSchema = MaybeSchema, P extends MaybeSchema = MaybeSchema> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Koa-router syntax: /api/v1/uploads/:message_id */
  path: string;
  summary: string;
  tag: string;
  /** false: no Authorization needed (operations routes). */
  auth: boolean;
  params?: P;
  query?: Q;
  body?: B;
  /** Largest request body read, in bytes (at most MAX_BODY_BYTES); default DEFAULT_BODY_BYTES, or NO_BODY_BYTES without a body schema. */
  maxBodyBytes?: number;
  /** Status → description and, when JSON, its schema. */
  responses: Record<number, { description: string; schema?: Schema; contentType?: string }>;
  /** Errors particular to this route (status → when); the ones every route shares are added by openapi.ts. */
  errors?: Record<number, string>;
  // A method, so that a route with specific schemas is still a RouteDef of the list.
  handle(input: RouteInput<Input<B>, Input<Q>, Input<P>>, ctx: Context): Promise<Reply>;
}

/** Infers the handler's input types from the schemas given. */
export const defineRoute = <B extends MaybeSchema = undefined, Q extends MaybeSchema = undefined, P extends MaybeSchema = undefined>(
  r: RouteDef<B, Q, P>,
): RouteDef => r;

const addFormats = addFormatsModule as unknown as (ajv: Ajv, formats: string[]) => Ajv;
// Bodies are JSON and must match exactly; params and queries arrive as strings and are coerced.
const bodyAjv = addFormats(new Ajv({ allErrors: false, strict: true, useDefaults: true }), ['uuid', 'date-time']);
const urlAjv = addFormats(new Ajv({ allErrors: false, strict: true, useDefaults: true, coerceTypes: true }), ['uuid', 'date-time']);

/** A caller's field name is repeated in an error only when short and plain; never unbounded text. */
const echoable = (name: string): string => (/^[A-Za-z0-9_.-]{1,64}$/.test(name) ? name : '…');

function describe(where: FieldProblem['location'], e: ErrorObject): FieldProblem {
  let field = e.instancePath;
  if (e.keyword === 'required') field = `${field}/${(e.params as { missingProperty: string }).missingProperty}`;
  if (e.keyword === 'additionalProperties') field = `${field}/${echoable((e.params as { additionalProperty: string }).additionalProperty)}`;
  if (e.keyword === 'uniqueItems') {
    const p = e.params as { i: number; j: number };
    field = `${field}/${Math.max(p.i, p.j)}`;
    return { location: where, field, problem: `duplicates item ${Math.min(p.i, p.j)}` };
  }
  const problem = e.keyword === 'additionalProperties' ? 'is not an accepted field' : (e.message ?? 'is invalid');
  return { location: where, field: field || '/', problem };
}

function validator(ajv: Ajv, where: FieldProblem['location'], schema: Schema | undefined) {
  if (schema === undefined) return (value: unknown) => value;
  const fn: ValidateFunction = ajv.compile(schema);
  return (value: unknown) => {
    if (fn(value)) return value;
    const d = describe(where, fn.errors![0]!);
    throw invalidField(d.location, d.field, d.problem);
  };
}

/**
 * UUIDs are accepted in either case (iOS's UUID().uuidString is upper case) and handled in lower
 * case, the form PostgreSQL returns: answers then echo ids the way every other answer spells them.
 */
function lowerIds<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  const o = value as Record<string, unknown>;
  if (typeof o.message_id === 'string') o.message_id = o.message_id.toLowerCase();
  if (Array.isArray(o.message_ids)) o.message_ids = o.message_ids.map((x) => (typeof x === 'string' ? x.toLowerCase() : x));
  return value;
}

const isEmptyObject = (v: unknown) =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;

/** Mounts the routes on the router, compiling every schema once. */
export function mountRoutes(router: Router, app: AppContext, routes: readonly RouteDef[]): void {
  for (const route of routes) {
    const checkParams = validator(urlAjv, 'params', route.params);
    const checkQuery = validator(urlAjv, 'query', route.query);
    const checkBody = validator(bodyAjv, 'body', route.body);
    const anonymous: Caller = { did: '', isService: false };
    const maxBody = bodyLimit(route);
    router.register(route.path, [route.method], async (ctx: Context) => {
      const caller = route.auth ? await app.auth.verify(bearerToken(ctx.get('authorization') || undefined)) : anonymous;
      if (route.auth && !caller.isService) await app.limiter?.take(caller.did);
      const scope = scopeOf(ctx);
      scope.did = caller.did || undefined;
      const params = lowerIds(checkParams({ ...(ctx as unknown as { params: Record<string, string> }).params }));
      const query = checkQuery({ ...ctx.query });
      // Only now, for a known route and an authenticated caller within its rate, is the body read.
      const raw = await readJsonBody(ctx, maxBody);
      if (route.body === undefined && raw !== undefined && !isEmptyObject(raw)) {
        throw invalidRequest('This route takes no request body.');
      }
      const body = lowerIds(checkBody(raw ?? {}));
      const reply = await route.handle({ app: requestScoped(app, scope), caller, body, query, params }, ctx);
      for (const [k, v] of Object.entries(reply.headers ?? {})) ctx.set(k, v);
      if (reply.location !== undefined) ctx.redirect(reply.location);
      ctx.status = reply.status;
      if (reply.body !== undefined) ctx.body = reply.body;
    });
  }
}
