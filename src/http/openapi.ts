// OpenAPI 3.1 from the route declarations: the schemas that validate are the schemas documented.
import type { RouteDef, Schema } from './route.js';

const ERROR_SCHEMA = {
  type: 'object',
  required: ['error', 'message'],
  properties: { error: { type: 'string' }, message: { type: 'string' }, details: {} },
};

export function buildOpenApi(routes: readonly RouteDef[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:([a-z_]+)/g, '{$1}');
    const parameters: unknown[] = [];
    for (const [where, schema] of [['path', r.params], ['query', r.query]] as const) {
      const props = (schema?.properties ?? {}) as Record<string, Schema>;
      const required = new Set((schema?.required as string[] | undefined) ?? []);
      for (const [name, s] of Object.entries(props)) {
        parameters.push({ name, in: where, required: where === 'path' || required.has(name), schema: s });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, resp] of Object.entries(r.responses)) {
      responses[status] = resp.schema
        ? { description: resp.description, content: { 'application/json': { schema: resp.schema } } }
        : { description: resp.description };
    }
    responses.default = { description: 'Error', content: { 'application/json': { schema: ERROR_SCHEMA } } };
    paths[path] ??= {};
    paths[path][r.method.toLowerCase()] = {
      summary: r.summary,
      tags: [r.tag],
      ...(r.auth ? { security: [{ bearer: [] }] } : {}),
      ...(parameters.length ? { parameters } : {}),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: r.body } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'mls-blob-broker',
      version,
      description: 'Presigned direct upload and download of end-to-end-encrypted MLS ciphertexts. No route carries ciphertext.',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    paths,
  };
}
