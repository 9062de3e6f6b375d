// Requests for the fuzz (tests/RELIABILITY.md, "Fuzzing"), generated from the routes' own
// declarations: their params, query and body schemas (src/schemas/*, plain JSON Schema), valid
// values mixed with hostile ones, raw bodies no serializer writes, wrong content types, hostile
// query strings and path segments. What a request names (an upload, a message, a conversation, a
// caller) is a Ref, resolved when the request is sent: a generated request is the same whatever
// ids the broker gave the fixtures, so a seed replays.
import fc from 'fast-check';
import type { RouteDef } from '../../src/http/route.js';
import { convoId } from '../../src/schemas/common.js';

export type IdRole = 'pendingPut' | 'pendingEmpty' | 'multipart' | 'message' | 'absent';
export type ConvoRole = 'convo' | 'elsewhere' | 'none';
export type Person = 'alice' | 'bob' | 'carol' | 'mallory' | 'service';
export const ID_ROLES: readonly IdRole[] = ['pendingPut', 'pendingEmpty', 'multipart', 'message', 'absent'];
const CONVO_ROLES: readonly ConvoRole[] = ['convo', 'elsewhere', 'none'];
const PEOPLE: readonly Person[] = ['alice', 'bob', 'carol', 'mallory', 'service'];

/** A name for something of the fixture world, made concrete when the request is sent. */
export class Ref {
  constructor(
    readonly kind: 'id' | 'convo' | 'did' | 'cursor',
    readonly role: string,
    /** Sent in upper case (ids are accepted in either). */
    readonly upper = false,
  ) {}
  toString(): string {
    return `<${this.kind}:${this.role}${this.upper ? ':upper' : ''}>`;
  }
}

/** How the raw text of a body is spoiled after it is written. */
export type Mangle =
  | { kind: 'truncate'; fraction: number }
  | { kind: 'bom' }
  | { kind: 'duplicate-key'; key: string; value: unknown; last: boolean }
  | { kind: 'proto-text'; text: string }
  | { kind: 'invalid-utf8'; at: number; bytes: readonly number[] }
  | { kind: 'deep'; open: string; close: string; levels: number; closed: boolean }
  | { kind: 'number'; text: string }
  | { kind: 'literal'; text: string };

export type Body =
  | { kind: 'none' }
  | { kind: 'json'; value: unknown }
  | { kind: 'raw'; value: unknown; mangle: Mangle };

export type Auth = { kind: 'as'; who: Person } | { kind: 'defect'; index: number } | { kind: 'header'; value: string };

/** A path segment as sent: a Ref, or text that goes on the wire exactly as it is. */
export type Segment = Ref | { raw: string };

/** One part of a query string: raw text, or a key and a value that are percent-encoded. */
export type QueryPart = { raw: string } | { key: string; value: unknown };

export interface FuzzRequest {
  /** `METHOD /path` of the route it was generated for, or null for paths no route declares. */
  route: string | null;
  method: string;
  /** The path template's literal parts and its parameters, in order. */
  path: (string | Segment)[];
  query: QueryPart[];
  auth: Auth;
  body: Body;
  contentType: string | null;
  chunked: boolean;
}

type Json = Record<string, unknown>;

// ——— hostile values ———

/** An object with its own "__proto__" (or any) key, as JSON.parse would make it. */
export function withOwnKeys(base: Json, entries: [string, unknown][]): Json {
  const o: Json = { ...base };
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

const BIG = 20_000;
const nastyStrings = [
  '', ' ', '0', '-1', 'null', 'true', '__proto__', 'constructor', 'prototype', '\u0000', 'a\u0000b', '\uD800', '\uDFFF', 'x\uDC00y',
  '\u202Egnp.exe', '\uFEFF', '\u2028\u2029', '𝕏💩', 'é', 'e\u0301', '../../etc/passwd', '%00', '%zz', '<script>alert(1)</script>',
  "' or 1=1 --", '\\', '"', '\r\n', '\t', '{}', '[]', 'NaN', 'Infinity', '1e309', '9007199254740993', 'A'.repeat(BIG), 'é'.repeat(BIG / 2),
];
const controlUnit = fc.constantFrom('\u0000', '\u0001', '\u0008', '\u001f', '\u007f', '\u0085', '\u2028', '\uD800', '\uDBFF', '\uDC00', 'é', '𝕏', '\\', '"', 'a');

/** Any code point, lone surrogates included (fast-check's 'binary' unit builds a 1.1-million-entry map first). */
const anyCodePoint = fc.integer({ min: 0, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp));

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...nastyStrings),
  fc.string({ unit: anyCodePoint, maxLength: 40 }),
  fc.string({ unit: controlUnit, maxLength: 24 }),
  fc.string({ unit: 'grapheme', maxLength: 24 }),
);

const hostileNumber = fc.oneof(
  fc.constantFrom(0, -1, -0, 0.5, 1.5, -1.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, -(2 ** 53) - 2, 2 ** 64, 1e21, 1e300, Number.MAX_VALUE, Number.MIN_VALUE),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);

const protoObject: fc.Arbitrary<Json> = fc.constantFrom(
  withOwnKeys({}, [['__proto__', { admin: true }]]),
  withOwnKeys({}, [['constructor', { prototype: { admin: true } }]]),
  withOwnKeys({ a: 1 }, [['__proto__', null]]),
);

/** Any hostile JSON value: wrong types, extreme numbers, nasty strings, odd structures. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: hostileString },
  { weight: 3, arbitrary: hostileNumber },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}) },
  { weight: 1, arbitrary: protoObject },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

/** Unknown keys an object should not accept, among them the prototype's own names. */
const extraKey = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'x', ''), hostileString.filter((s) => s.length < 200));

// ——— values from schemas ———
// Each generator has a valid form (every value passes the schema, and names the fixture world
// where the schema names ids, conversations and DIDs) and a hostile one (any value may be replaced
// by a hostile one). A request is mostly valid with one hostile part, so that it gets past the
// checks in front and reaches the ones behind: the handler, the database, the store.

const isDidSchema = (s: Json) => typeof s.pattern === 'string' && (s.pattern as string).includes('did:');
const isConvoSchema = (s: Json) => s.pattern === convoId.pattern;

// Weighted to the fixtures most routes act on: a pending upload with its bytes, a message.
const idRef = fc.oneof(
  { weight: 4, arbitrary: fc.constant(new Ref('id', 'pendingPut')) },
  { weight: 2, arbitrary: fc.constant(new Ref('id', 'message')) },
  { weight: 3, arbitrary: fc.constantFrom(...ID_ROLES).map((r) => new Ref('id', r)) },
  { weight: 1, arbitrary: fc.constantFrom(...ID_ROLES).map((r) => new Ref('id', r, true)) },
  { weight: 1, arbitrary: fc.uuid() },
);
const convoRef = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom<ConvoRole[]>('convo', 'convo', 'convo', 'elsewhere', 'none').map((r) => new Ref('convo', r)) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,127}$/) },
);
// Mostly members of the fixture conversation, so that recipient lists pass.
const didRef = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom<Person[]>('alice', 'bob', 'bob', 'carol', 'carol', 'mallory', 'service').map((p) => new Ref('did', p)) },
  { weight: 1, arbitrary: fc.stringMatching(/^(did:plc:[a-z2-7]{24}|did:web:[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*)$/) },
);
const cursorRef = fc.oneof(fc.constantFrom(...ID_ROLES).map((r) => new Ref('cursor', r)), fc.base64String({ maxLength: 60 }), hostileString);
const sizeValue = fc.oneof(fc.integer({ min: 1, max: 4096 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(5 * 2 ** 20, 100 * 2 ** 20, 100 * 2 ** 20 + 1, 2 * 2 ** 30, 2 * 2 ** 30 + 1));

/** Distinct valid-looking items, as many as asked: an array one past its maxItems. */
function nthItem(items: Json, i: number): unknown {
  if (items.type === 'integer') return ((items.minimum as number | undefined) ?? 0) + i;
  if (items.format === 'uuid') return `00000000-0000-7000-8000-${i.toString(16).padStart(12, '0')}`;
  if (isDidSchema(items)) return `did:web:n${i}.test`;
  if (typeof items.pattern === 'string' && (items.pattern as string).includes('{22}==')) return Buffer.alloc(16, i % 256).toString('base64');
  if (items.type === 'object') return { part_number: i + 1, etag: `e${i}` };
  return `s${i}`;
}

/** A value of `schema`: valid, or (hostile) with any part of it possibly replaced by a hostile value. */
function validFor(schema: Json, name: string, hostile: boolean): fc.Arbitrary<unknown> {
  if ('const' in schema) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
  const type = Array.isArray(schema.type) ? (schema.type as string[])[0] : (schema.type as string | undefined);
  switch (type) {
    case 'object':
      return schema.properties === undefined ? freeObject : objectFor(schema, hostile);
    case 'array': {
      const items = schema.items as Json;
      const min = (schema.minItems as number | undefined) ?? 0;
      const max = Math.max(min, Math.min((schema.maxItems as number | undefined) ?? 8, 6));
      const item = valueFor(items, name, hostile);
      const some = schema.uniqueItems && !hostile ? fc.uniqueArray(item, { minLength: min, maxLength: max, selector: (v) => String(v) }) : fc.array(item, { minLength: min, maxLength: max });
      if (!hostile) return some;
      const overfull = fc.constant(null).map(() => Array.from({ length: ((schema.maxItems as number | undefined) ?? 8) + 1 }, (_, i) => nthItem(items, i)));
      return fc.oneof({ weight: 12, arbitrary: some }, { weight: 1, arbitrary: overfull }, { weight: 1, arbitrary: fc.constant([]) });
    }
    case 'string': {
      if (schema.format === 'uuid') return idRef;
      if (schema.format === 'date-time') return fc.date({ noInvalidDate: true }).map((d) => d.toISOString());
      if (isDidSchema(schema)) return didRef;
      if (isConvoSchema(schema)) return convoRef;
      if (name === 'cursor') return cursorRef;
      if (typeof schema.pattern === 'string') return fc.stringMatching(new RegExp(schema.pattern as string));
      return fc.string({ minLength: (schema.minLength as number | undefined) ?? 0, maxLength: Math.min((schema.maxLength as number | undefined) ?? 64, 256) });
    }
    case 'integer': {
      if (name === 'size') return sizeValue;
      const min = (schema.minimum as number | undefined) ?? -(2 ** 31);
      const max = (schema.maximum as number | undefined) ?? 2 ** 31;
      if (!hostile) return fc.integer({ min, max });
      return fc.oneof({ weight: 6, arbitrary: fc.integer({ min, max }) }, { weight: 1, arbitrary: fc.constantFrom(min - 1, max + 1, min, max) });
    }
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true });
    case 'boolean':
      return fc.boolean();
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

export function valueFor(schema: Json, name: string, hostile: boolean): fc.Arbitrary<unknown> {
  const valid = validFor(schema, name, hostile);
  return hostile ? fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: hostileValue }) : valid;
}

/** A string PostgreSQL cannot store: NUL, or a UTF-16 surrogate without its pair. */
const unstorable = fc.tuple(fc.string({ maxLength: 6 }), fc.constantFrom('\u0000', '\uD800', '\uDBFF', '\uDC00', '\uDFFF'), fc.string({ maxLength: 6 })).map(([a, b, c]) => a + b + c);

/** Free-form JSON objects (commit metadata): nasty keys and strings, nesting and size at the limits. */
const freeObject: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.dictionary(fc.oneof(fc.string({ maxLength: 12 }), hostileString), fc.oneof(fc.jsonValue({ maxDepth: 3 }), hostileValue), { maxKeys: 5 }) },
  { weight: 2, arbitrary: fc.oneof(fc.tuple(unstorable, fc.jsonValue({ maxDepth: 1 })), fc.tuple(fc.string({ maxLength: 8 }), unstorable)).map(([k, v]) => withOwnKeys({}, [[k, { nested: [v] }]])) },
  { weight: 1, arbitrary: protoObject },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 30, max: 36 }).map((levels) => {
      let v: unknown = 'leaf';
      for (let i = 0; i < levels; i++) v = { n: v };
      return v;
    }),
  },
  { weight: 1, arbitrary: fc.integer({ min: 4000, max: 4200 }).map((n) => ({ pad: 'x'.repeat(n) })) },
);

/** An object of `schema`: its required keys and some optional ones; hostile, now and then an unknown key or a missing one. */
function objectFor(schema: Json, hostile: boolean): fc.Arbitrary<unknown> {
  const properties = schema.properties as Record<string, Json>;
  const required = (schema.required as string[] | undefined) ?? [];
  const model = Object.fromEntries(Object.entries(properties).map(([k, s]) => [k, valueFor(s, k, hostile)]));
  const base = fc.record(model, { requiredKeys: required as never[] });
  if (!hostile) return base;
  return fc
    .tuple(
      base,
      fc.oneof({ weight: 4, arbitrary: fc.constant([] as [string, unknown][]) }, { weight: 1, arbitrary: fc.array(fc.tuple(extraKey, hostileValue), { minLength: 1, maxLength: 2 }) }),
      fc.oneof({ weight: 6, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom(...(required.length > 0 ? required : ['-'])) }),
    )
    .map(([o, extra, drop]) => {
      const out = withOwnKeys(o as Json, extra);
      if (drop !== null) delete out[drop];
      return out;
    });
}

// ——— bodies, content types, paths, queries, headers ———

const mangle: fc.Arbitrary<Mangle> = fc.oneof(
  fc.double({ min: 0, max: 0.999, noNaN: true }).map((fraction) => ({ kind: 'truncate' as const, fraction })),
  fc.constant({ kind: 'bom' as const }),
  fc.tuple(fc.constantFrom('message_id', 'convo_id', 'size', 'members', 'parts', 'message_ids', 'recipients', 'metadata', 'add'), hostileValue, fc.boolean()).map(([key, value, last]) => ({ kind: 'duplicate-key' as const, key, value, last })),
  fc.constantFrom('{"__proto__":{"admin":true},', '{"__proto__":null,', '{"constructor":{"prototype":{"admin":true}},').map((text) => ({ kind: 'proto-text' as const, text })),
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom([0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0xaf], [0x00])).map(([at, bytes]) => ({ kind: 'invalid-utf8' as const, at, bytes })),
  fc.tuple(fc.constantFrom(['[', ']'], ['{"a":', '}'], ['[{"a":', '}]']), fc.constantFrom(32, 33, 34, 50, 1000, 20_000, 60_000), fc.boolean()).map(([[open, close], levels, closed]) => ({ kind: 'deep' as const, open: open!, close: close!, levels, closed })),
  fc.constantFrom('1e999999', '-1e309', '1e-400', '-0', '0.0000000000000000000001', '123456789012345678901234567890', '1E2', '0x10', '01', '+1', 'NaN', 'Infinity').map((text) => ({ kind: 'number' as const, text })),
  fc.constantFrom('', ' ', '\n', 'null', '[]', '"x"', '0', 'true', '{', '}', '{"a":1}garbage', '/* */{}', "{'a':1}", '[1,]', '{"a":1,}', '\u0000', '{"a":"\\ud800"}', '{"a":"\\u0000"}', '\uFEFF{}', '{"a"}').map((text) => ({ kind: 'literal' as const, text })),
);

const jsonType = fc.oneof({ weight: 8, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom('application/json; charset=utf-8', 'Application/JSON', 'application/json;charset=UTF-8') });
const hostileContentType: fc.Arbitrary<string | null> = fc.oneof(
  fc.constant(null),
  fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/vnd.api+json', 'application/json-patch+json', '', ';;', 'application/json; charset=latin1', '*/*', 'application/jsonx', 'json'),
);

/** Segments no client should send: traversal, NUL, invalid UTF-8 and percent-encodings, long ones. */
const hostileSegment: fc.Arbitrary<Segment> = fc.oneof(
  fc.constantFrom('..', '.', '%2e%2e', '%2E', '%00', '%2F', '%2f..%2f', '%C3%28', '%E0%A4%A', '%ED%A0%80', '%FF', '%zz', '%', '%25', '%20', '+', ';', ',', '*', '~', 'A'.repeat(5000), '%F0%9F%92%A9'),
  hostileString.map((s) => {
    try {
      return encodeURIComponent(s.slice(0, 2000));
    } catch {
      return '%ED%A0%80'; // a lone surrogate, as UTF-8 would (wrongly) carry it
    }
  }),
).map((raw) => ({ raw }));

const segmentFor = (schema: Json, name: string): fc.Arbitrary<Segment> =>
  (validFor(schema, name, false) as fc.Arbitrary<Ref | string>).map((v) => (v instanceof Ref ? v : { raw: encodeURIComponent(v) }));

/** The path template's literal parts and one segment per parameter; hostile, one of them is replaced. */
function pathFor(route: RouteDef, hostile: boolean): fc.Arbitrary<(string | Segment)[]> {
  const params = ((route.params as Json | undefined)?.properties ?? {}) as Record<string, Json>;
  const parts = route.path.split(/(:[a-z_]+)/).filter((p) => p !== '');
  const segment = (p: string) => (hostile ? fc.oneof(segmentFor(params[p]!, p), hostileSegment) : segmentFor(params[p]!, p));
  return fc.tuple(...parts.map((p) => (p.startsWith(':') ? segment(p.slice(1)) : fc.constant(p)))).map((a) => a as (string | Segment)[]);
}

const junkQuery = fc.oneof(
  fc.constantFrom('limit=1&limit=2', 'limit[]=1', 'limit[a]=1', 'cursor=%zz', 'convo_id=%E0%A4%A', '&&&', '=', '==1', 'a=1&a=2&a=3', '__proto__=1', 'constructor[prototype]=1', 'limit=1e3', 'limit=0x10', 'limit=-0', `x=${'y'.repeat(6000)}`),
  hostileString.map((s) => {
    try {
      return `q=${encodeURIComponent(s.slice(0, 2000))}`;
    } catch {
      return 'q=%ED%A0%80';
    }
  }),
);

/** A query string from the schema's values; hostile, in forms no client library writes too. */
function queryFor(schema: Json | undefined, hostile: boolean): fc.Arbitrary<QueryPart[]> {
  const raw = junkQuery.map((r) => [{ raw: r }] as QueryPart[]);
  if (schema === undefined) return hostile ? raw : fc.constant([]);
  const parts = (objectFor(schema, hostile) as fc.Arbitrary<Json>).map((o) => Object.keys(o).map((key) => ({ key, value: o[key] })));
  if (!hostile) return parts;
  return fc.oneof(parts, fc.tuple(parts, raw).map(([a, b]) => [...a, ...b]), raw);
}

function bodyFor(schema: Json | undefined, hostile: boolean): fc.Arbitrary<Body> {
  const none = fc.constant({ kind: 'none' as const });
  if (schema === undefined) {
    if (!hostile) return fc.oneof({ weight: 6, arbitrary: none }, { weight: 1, arbitrary: fc.constant({ kind: 'json' as const, value: {} }) });
    return fc.oneof(hostileValue.map((value) => ({ kind: 'json' as const, value })), fc.tuple(hostileValue, mangle).map(([value, m]) => ({ kind: 'raw' as const, value, mangle: m })));
  }
  const value = valueFor(schema, 'body', hostile);
  if (!hostile) return value.map((v) => ({ kind: 'json' as const, value: v }));
  return fc.oneof(
    { weight: 6, arbitrary: value.map((v) => ({ kind: 'json' as const, value: v })) },
    { weight: 3, arbitrary: fc.tuple(valueFor(schema, 'body', false), mangle).map(([v, m]) => ({ kind: 'raw' as const, value: v, mangle: m })) },
    { weight: 1, arbitrary: none },
  );
}

/** The fixture world's callers, the owners of most fixtures the likeliest. */
const validAuth: fc.Arbitrary<Auth> = fc.constantFrom<Person[]>('alice', 'alice', 'alice', 'alice', 'bob', 'bob', 'carol', 'mallory', 'service', 'service').map((who) => ({ kind: 'as' as const, who }));

/** The defects of token-defects.ts (by index), and headers no client should send. */
function hostileAuth(defects: number): fc.Arbitrary<Auth> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 0, max: defects - 1 }).map((index) => ({ kind: 'defect' as const, index })) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('Bearer', 'Bearer ', 'bearer a.b.c', 'Bearer a.b', 'Bearer ...', 'Bearer a.b.c.d', 'Bearer =.=.=', `Bearer ${'a'.repeat(6000)}.b.c`, 'Bearer eyJhbGciOiJub25lIn0.e30.', 'Digest x', 'Bearer\ta.b.c').map((value) => ({ kind: 'header' as const, value })),
    },
  );
}

const OTHER_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'];
const chunked = fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });

/**
 * Requests for one route: valid, or valid but for one hostile part (the token, the content type,
 * the body's values, the body's text, the path, the query, the method), or hostile throughout.
 */
function routeRequest(route: RouteDef, defects: number): fc.Arbitrary<FuzzRequest> {
  const body = route.body as Json | undefined;
  const valid = {
    method: fc.constant(route.method),
    path: pathFor(route, false),
    query: queryFor(route.query as Json | undefined, false),
    auth: validAuth,
    body: bodyFor(body, false),
    contentType: jsonType as fc.Arbitrary<string | null>,
    chunked,
  };
  const hostile = {
    method: fc.constantFrom(...OTHER_METHODS.filter((m) => m !== route.method)),
    path: pathFor(route, true),
    query: queryFor(route.query as Json | undefined, true),
    auth: hostileAuth(defects),
    body: bodyFor(body, true),
    contentType: hostileContentType,
    chunked,
  };
  const one = (part: keyof typeof valid) => fc.record({ ...valid, [part]: hostile[part] });
  const key = `${route.method} ${route.path}`;
  return fc
    .oneof(
      { weight: 8, arbitrary: fc.record(valid) },
      { weight: 3, arbitrary: one('auth') },
      { weight: body === undefined ? 1 : 2, arbitrary: one('contentType') },
      { weight: body === undefined ? 1 : 5, arbitrary: one('body') },
      { weight: route.params === undefined ? 0 : 2, arbitrary: one('path') },
      { weight: 1, arbitrary: one('query') },
      { weight: 1, arbitrary: one('method') },
      { weight: 2, arbitrary: fc.record({ ...hostile, method: fc.constant(route.method) }) },
    )
    .map((r) => ({ ...r, route: key }));
}

/** Paths no route declares, or declares in another spelling. */
const strayPath = fc.constantFrom('/api/v1', '/api/v1/', '/api/v2/uploads', '/api/v1/uploads/x/y/z', '//api/v1/limits', '/api/v1/limits/', '/API/V1/LIMITS', '/api/v1/messages/pending/extra', '/api/v1/%2e%2e/limits', '/api/v1/convos//members', '/api/v1/uploads%2F', '/%00', '/api/v1/convos/a/members/b');

function strayRequest(defects: number): fc.Arbitrary<FuzzRequest> {
  return fc.record({
    route: fc.constant(null),
    method: fc.constantFrom(...OTHER_METHODS),
    path: strayPath.map((p) => [p]),
    query: queryFor(undefined, true),
    auth: fc.oneof(validAuth, hostileAuth(defects)),
    body: fc.oneof(bodyFor(undefined, false), bodyFor(undefined, true)),
    contentType: fc.oneof(jsonType, hostileContentType),
    chunked,
  });
}

/** Requests for every route, those with a body (more to get wrong) twice as often, and a few for paths no route declares. */
export function requestArb(routes: readonly RouteDef[], defects: number): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(
    ...routes.map((r) => ({ weight: r.body === undefined ? 10 : 20, arbitrary: routeRequest(r, defects) })),
    { weight: 4, arbitrary: strayRequest(defects) },
  );
}
