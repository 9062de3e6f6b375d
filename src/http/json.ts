// Parsing a request body: a linear nesting scan before JSON.parse (deep `[[[[…` costs every
// recursive reader after it), then a walk refusing strings PostgreSQL cannot store.
import { invalidRequest } from '../errors.js';

/**
 * Deepest nesting any body may have: commit metadata may nest MAX_METADATA_DEPTH (32) levels and
 * sits one level inside the body; every other body is at most 3 deep.
 */
export const MAX_BODY_DEPTH = 33;

const OPEN_OBJECT = 0x7b; // {
const OPEN_ARRAY = 0x5b; // [
const CLOSE_OBJECT = 0x7d; // }
const CLOSE_ARRAY = 0x5d; // ]
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/**
 * Where `text`, read as JSON, first nests deeper than `limit`: "/<top-level key>" (raw, as sent) or
 * "/" — or null when it never does. One pass, nothing allocated but the answer.
 */
export function tooDeepAt(text: string, limit: number): string | null {
  let depth = 0;
  let inString = false;
  let stringStart = 0;
  // The last string that began at depth 1: inside an object, the key whose value is being read.
  let keyStart = -1;
  let keyEnd = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) {
        inString = false;
        if (depth === 1) [keyStart, keyEnd] = [stringStart, i];
      }
    } else if (c === QUOTE) {
      inString = true;
      stringStart = i + 1;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > limit) return keyStart < 0 ? '/' : `/${text.slice(keyStart, keyEnd)}`;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) depth--;
  }
  return null;
}

/** NUL, or a UTF-16 surrogate without its pair: text and jsonb columns cannot hold either. */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Where a string (a value or a key) PostgreSQL cannot store sits: "/<top-level field>", "/" when
 * at the top, or null when every string is storable. Iterative: the depth is bounded, not trusted.
 */
export function unstorableField(value: unknown): string | null {
  const stack: [unknown, string][] = [[value, '/']];
  while (stack.length > 0) {
    const [v, field] = stack.pop()!;
    if (typeof v === 'string') {
      if (UNSTORABLE.test(v)) return field;
    } else if (v !== null && typeof v === 'object') {
      const top = field === '/' && !Array.isArray(v);
      for (const [k, child] of Object.entries(v)) {
        if (UNSTORABLE.test(k)) return field;
        stack.push([child, top ? `/${k}` : field]);
      }
    }
  }
  return null;
}

/** A top-level field is named back only when short and plain (it is the caller's text). */
const shown = (field: string): string => (/^\/[A-Za-z0-9_.-]{1,64}$/.test(field) ? field : '/');

/** The parsed body, or a 400 InvalidRequest that repeats none of the caller's text. */
export function parseJson(text: string): unknown {
  const deep = tooDeepAt(text, MAX_BODY_DEPTH);
  if (deep !== null) {
    throw invalidRequest(`The request body nests deeper than ${MAX_BODY_DEPTH} levels.`, {
      location: 'body',
      field: shown(deep),
      problem: `nests deeper than ${MAX_BODY_DEPTH} levels`,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidRequest('The request body is not valid JSON.');
  }
  const field = unstorableField(value);
  if (field !== null) {
    throw invalidRequest('The request body holds a NUL character or an unpaired UTF-16 surrogate, which cannot be stored.', {
      location: 'body',
      field: shown(field),
      problem: 'holds a NUL or an unpaired surrogate',
    });
  }
  return value;
}
