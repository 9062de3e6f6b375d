// OpenAPI 3.1 from the route declarations: the schemas that validate are the schemas documented,
// and every answer a route can give is listed (its own, the errors every route shares, a default).
import { bodyLimit } from './body.js';
import { ERROR_CODES } from '../errors.js';
import type { RouteDef, Schema } from './route.js';

const REQUEST_ID_PATTERN = '^[A-Za-z0-9._:-]{1,128}$';

const ERROR_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['error', 'message', 'request_id'],
  properties: {
    error: { type: 'string', enum: [...ERROR_CODES], description: 'A stable code: branch on this, never on the message' },
    message: { type: 'string', description: 'One human sentence' },
    details: { description: 'For 400: where the request failed ({location, field, problem}); for readiness: which part is down' },
    request_id: { type: 'string', pattern: REQUEST_ID_PATTERN, description: 'The x-request-id of this answer: quote it when reporting a problem' },
  },
};

const ERROR_RESPONSE = { $ref: '#/components/responses/Error' };
const REQUEST_ID_HEADER = { $ref: '#/components/headers/RequestId' };

/** The errors a route can give by its shape alone (params, body, auth). */
function sharedErrors(r: RouteDef): Record<number, string> {
  const e: Record<number, string> = { 400: 'InvalidRequest: the parameters, query or body fail the schema' };
  if (r.auth) e[401] = 'AuthRequired (no bearer token) or InvalidToken';
  if (r.params) e[404] = 'NotFound: absent, or not visible to the caller (the same answer for both)';
  e[405] = 'MethodNotAllowed: another method on this path; has Allow';
  if (r.body) {
    e[413] = `PayloadTooLarge: a request body above ${bodyLimit(r)} bytes`;
    e[415] = 'UnsupportedMediaType: a body that is not JSON';
  }
  if (r.auth) e[429] = 'RateLimited; has Retry-After';
  e[431] = 'HeadersTooLarge: request headers above 16 KiB in total (Node refuses them before any route)';
  e[500] = 'InternalError: a bug; never with details';
  if (r.auth) e[503] = 'DatabaseUnavailable, StorageUnavailable or AuthUnavailable (keep the token); has Retry-After';
  return e;
}

export function buildOpenApi(routes: readonly RouteDef[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:([a-z_]+)/g, '{$1}');
    const parameters: unknown[] = [{ $ref: '#/components/parameters/RequestId' }];
    for (const [where, schema] of [['path', r.params], ['query', r.query]] as const) {
      const props = (schema?.properties ?? {}) as Record<string, Schema>;
      const required = new Set((schema?.required as string[] | undefined) ?? []);
      for (const [name, s] of Object.entries(props)) {
        parameters.push({ name, in: where, required: where === 'path' || required.has(name), schema: s });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, resp] of Object.entries(r.responses)) {
      const headers: Record<string, unknown> = { 'x-request-id': REQUEST_ID_HEADER };
      if (status === '302') headers.Location = { description: 'The presigned URL', schema: { type: 'string' } };
      responses[status] = resp.schema
        ? { description: resp.description, headers, content: { [resp.contentType ?? 'application/json']: { schema: resp.schema } } }
        : { description: resp.description, headers };
    }
    for (const [status, when] of Object.entries({ ...sharedErrors(r), ...(r.errors ?? {}) })) {
      responses[status] ??= { ...ERROR_RESPONSE, description: when };
    }
    responses.default = ERROR_RESPONSE;
    paths[path] ??= {};
    paths[path][r.method.toLowerCase()] = {
      operationId: `${r.method.toLowerCase()}${path.replace(/\{([a-z_]+)\}/g, 'By_$1').replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`,
      summary: r.summary,
      tags: [r.tag],
      security: r.auth ? [{ bearer: [] }] : [],
      parameters,
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: r.body } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'mls-blob-broker',
      version,
      description:
        'Presigned direct upload and download of end-to-end-encrypted MLS ciphertexts. No route carries ciphertext. ' +
        'Every answer carries x-request-id; every error body is the Error schema.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'sub is the caller\'s DID' } },
      schemas: { Error: ERROR_SCHEMA },
      headers: {
        RequestId: { description: "The caller's x-request-id when well-formed, else a new one", schema: { type: 'string', pattern: REQUEST_ID_PATTERN } },
      },
      parameters: {
        RequestId: {
          name: 'x-request-id',
          in: 'header',
          required: false,
          description: `Kept when it matches ${REQUEST_ID_PATTERN}; otherwise the broker makes one`,
          schema: { type: 'string' },
        },
      },
      responses: {
        Error: {
          description: 'An error',
          headers: {
            'x-request-id': REQUEST_ID_HEADER,
            'Retry-After': { description: 'Seconds; on 429 and 503', schema: { type: 'string' } },
          },
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    },
    paths,
  };
}
