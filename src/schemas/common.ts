// Building blocks of the route schemas. TypeBox builds plain JSON Schema, which ajv compiles as it
// is and /openapi.json documents, and gives each schema its static type: a route's input type is
// inferred from the schema that validates it (src/http/route.ts).
import type { Static, TProperties, TSchema } from '@sinclair/typebox';
import { Type } from './typebox.js';
import { DID_PATTERN } from '../config.js';

export const did = Type.String({ maxLength: 253, pattern: DID_PATTERN });
export const uuid = Type.String({ format: 'uuid' });
// Not "." nor "..": a URL cannot carry them as a path segment (URL parsers resolve them, encoded or not).
export const convoId = Type.String({ minLength: 1, maxLength: 128, pattern: '^(?!\\.\\.?$)[A-Za-z0-9._:-]+$' });
export const md5 = Type.String({ pattern: '^[A-Za-z0-9+/]{22}==$', description: 'base64 of the 16-byte MD5' });
export const sha256 = Type.String({ pattern: '^[A-Za-z0-9+/]{43}=$', description: 'base64 of the 32-byte SHA-256' });
export const time = Type.String({ format: 'date-time' });
export const integer = Type.Integer();
export const string = Type.String();

/** An object with exactly these properties (Type.Optional marks the ones that may be left out). */
export const object = <P extends TProperties>(properties: P, options: { minProperties?: number } = {}) =>
  Type.Object(properties, { additionalProperties: false, ...options });

/** `{"enum": [...]}`, typed as the union of its values. */
export const oneOfValues = <const T extends string>(values: readonly T[]) => Type.Unsafe<T>({ enum: [...values] });

/** `{"const": value}`, typed as the value. */
export const constant = <const T extends string>(value: T) => Type.Unsafe<T>({ const: value });

/** The schema, or null: `{"type": [<its type>, "null"]}`. */
export const nullable = <S extends TSchema & { type: string }>(schema: S) =>
  Type.Unsafe<Static<S> | null>({ ...schema, type: [schema.type, 'null'] });

/** Any JSON object (metadata the broker stores and returns as it is). */
export const anyObject = Type.Unsafe<Record<string, unknown>>({ type: 'object' });

/** `{"type": "object", "additionalProperties": {"type": "string"}}`: HTTP headers to send. */
export const stringMap = Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: { type: 'string' } });

export const messageIdParams = object({ message_id: uuid });
export const convoIdParams = object({ convo_id: convoId });

/**
 * Compiles only when the schema's static type and the wire type (src/client/wire.ts) are the same
 * type, each assignable to the other: a schema and the contract the client reads cannot drift.
 */
export type Same<S extends TSchema, Wire> = [Static<S>] extends [Wire] ? ([Wire] extends [Static<S>] ? true : false) : false;

/** Fails to compile unless T is `true`: `type Checks = [Assert<Same<typeof schema, Wire>>, …]`. */
export type Assert<T extends true> = T;
