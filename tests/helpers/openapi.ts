// Checks a live answer against /openapi.json: the status is documented for its route, the body has
// the declared content type and matches the declared schema (ajv, JSON Schema 2020-12 as OpenAPI 3.1
// uses), and x-request-id is there. The harness's HTTP helpers run it on every answer, so the
// document cannot drift from the code without a suite failing.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

type Json = Record<string, unknown>;
interface Operation {
  responses: Record<string, Json>;
}
interface Route {
  path: string;
  pattern: RegExp;
  literal: number;
  operations: Record<string, Operation>;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

export class OpenApiChecker {
  private readonly ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
  private readonly routes: Route[];
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(private readonly doc: Json) {
    const paths = doc.paths as Record<string, Record<string, Operation>>;
    this.routes = Object.entries(paths)
      .map(([path, operations]) => ({
        path,
        pattern: new RegExp(`^${path.replace(/\{[a-z_]+\}/g, '[^/]+')}$`),
        // Static paths win over parameterised ones (…/pending before …/{message_id}), as in the router.
        literal: path.split('/').filter((s) => !s.startsWith('{')).length,
        operations,
      }))
      .sort((a, b) => b.literal - a.literal);
  }

  private resolve(node: Json): Json {
    const ref = node.$ref;
    if (typeof ref !== 'string') return node;
    const target = ref
      .replace(/^#\//, '')
      .split('/')
      .reduce<unknown>((o, key) => (o as Json)[key], this.doc) as Json;
    return { ...this.resolve(target), ...Object.fromEntries(Object.entries(node).filter(([k]) => k !== '$ref')) };
  }

  private validator(key: string, schema: Json): ValidateFunction {
    let fn = this.compiled.get(key);
    if (fn === undefined) {
      fn = this.ajv.compile(this.resolve(schema));
      this.compiled.set(key, fn);
    }
    return fn;
  }

  /** Throws with what is wrong when the answer does not match the document. */
  check(method: string, url: string, status: number, headers: Headers, text: string): void {
    // A CORS preflight is the browser's question, not an API operation.
    if (method === 'OPTIONS') return;
    const where = `${method} ${url} → ${status}`;
    const requestId = headers.get('x-request-id');
    if (requestId === null || !/^[A-Za-z0-9._:-]{1,128}$/.test(requestId)) throw new Error(`${where}: no well-formed x-request-id`);
    // The path as sent: URL parsing would resolve "." and ".." segments (even percent-encoded
    // ones), which the broker receives and routes as they are.
    const path = url.replace(/^[a-z]+:\/\/[^/]*/i, '').split('?')[0]!;
    const route = this.routes.find((r) => r.pattern.test(path));
    const operation = route?.operations[method.toLowerCase()];
    let response: Json | undefined;
    let key: string;
    if (route === undefined || operation === undefined) {
      // Unknown paths and methods answer with the shared error body: 404, 405, or what the body
      // reader refused first (413, 415, 400) before routing.
      if (status < 400) throw new Error(`${where}: not a documented operation`);
      response = this.resolve({ $ref: '#/components/responses/Error' });
      key = 'error';
    } else {
      response = operation.responses[String(status)] ?? (status >= 400 ? operation.responses.default : undefined);
      if (response === undefined) throw new Error(`${where}: status ${status} is not documented for ${method} ${route.path}`);
      response = this.resolve(response);
      key = `${method} ${route.path} ${operation.responses[String(status)] ? status : 'default'}`;
    }
    const content = response.content as Record<string, { schema: Json }> | undefined;
    if (content === undefined) {
      // Koa's redirect writes a one-line text body; anything else documented without content has none.
      if (text !== '' && !(status >= 300 && status < 400)) throw new Error(`${where}: a body where the document declares none: ${text.slice(0, 200)}`);
      return;
    }
    const type = (headers.get('content-type') ?? '').split(';')[0]!.trim();
    const declared = content[type];
    if (declared === undefined) throw new Error(`${where}: content type ${type} is not one of ${Object.keys(content).join(', ')}`);
    let value: unknown = text;
    if (type === 'application/json') {
      try {
        value = JSON.parse(text);
      } catch {
        throw new Error(`${where}: the body is not JSON: ${text.slice(0, 200)}`);
      }
    }
    const validate = this.validator(`${key} ${type}`, declared.schema);
    if (!validate(value)) {
      throw new Error(`${where}: the body does not match the document: ${this.ajv.errorsText(validate.errors)}\n${text.slice(0, 500)}`);
    }
  }
}
