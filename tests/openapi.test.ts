// /openapi.json: valid OpenAPI 3.1 by a maintained validator, one operation per route the router
// serves and no other, every input and answer described. (Live answers are checked against it by
// the harness's HTTP helpers in every suite.)
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Router from '@koa/router';
import { Validator } from '@seriousme/openapi-schema-validator';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { allRoutes, createApp } from '../src/app.js';
import { startTestApp, type TestApp } from './helpers/harness.js';

const test = suite('openapi');
let app: TestApp;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let doc: any;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test.before(async () => {
  app = await startTestApp();
  doc = (await app.call('GET', '/openapi.json')).body;
});
test.after(() => app.close());

test('the document is valid OpenAPI 3.1', async () => {
  assert.is(doc.openapi, '3.1.0');
  const result = await new Validator().validate(doc);
  assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
});

test('every route the router serves is documented, and nothing else', () => {
  const koa = createApp(app.ctx);
  const dispatch = koa.middleware.find((m) => (m as { router?: Router }).router !== undefined) as { router: Router } | undefined;
  assert.ok(dispatch, 'the router is mounted');
  const served = new Set<string>();
  for (const layer of dispatch.router.stack) {
    for (const m of layer.methods) if (m !== 'HEAD') served.add(`${m} ${String(layer.path).replace(/:([a-z_]+)/g, '{$1}')}`);
  }
  const documented = new Set<string>();
  for (const [p, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    for (const m of Object.keys(item)) documented.add(`${m.toUpperCase()} ${p}`);
  }
  assert.equal([...served].sort(), [...documented].sort());
  assert.is(served.size, allRoutes(app.config).length);
});

test('inputs, answers, errors and the bearer scheme are described', () => {
  assert.equal(doc.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: "sub is the caller's DID" });
  const error = doc.components.schemas.Error;
  assert.equal(error.required, ['error', 'message', 'request_id']);
  assert.ok(error.properties.error.enum.includes('UploadIncomplete'));
  for (const route of allRoutes(app.config)) {
    const p = route.path.replace(/:([a-z_]+)/g, '{$1}');
    const op = doc.paths[p][route.method.toLowerCase()];
    const where = `${route.method} ${route.path}`;
    assert.equal(op.security, route.auth ? [{ bearer: [] }] : [], where);
    if (route.body) assert.equal(op.requestBody.content['application/json'].schema, JSON.parse(JSON.stringify(route.body)), where);
    else assert.is(op.requestBody, undefined, where);
    const params = op.parameters.filter((x: { in?: string }) => x.in === 'query' || x.in === 'path').map((x: { name: string }) => x.name).sort();
    const declared = [...Object.keys(route.params?.properties ?? {}), ...Object.keys(route.query?.properties ?? {})].sort();
    assert.equal(params, declared, where);
    for (const status of Object.keys(route.responses)) assert.ok(op.responses[status], `${where} ${status}`);
    for (const status of ['400', '405', '500', 'default']) assert.ok(op.responses[status], `${where} ${status}`);
    if (route.auth) for (const status of ['401', '429', '503']) assert.ok(op.responses[status], `${where} ${status}`);
    for (const [status, r] of Object.entries(op.responses as Record<string, { $ref?: string; content?: unknown; description: string }>)) {
      assert.ok(r.$ref !== undefined || r.description.length > 0, `${where} ${status} is described`);
      if (Number(status) >= 400 || status === 'default') assert.is(r.$ref, '#/components/responses/Error', `${where} ${status}`);
    }
  }
});

test('npm run openapi writes the document /openapi.json serves', async () => {
  const out = path.join(tmpdir(), `openapi-${process.pid}.json`);
  try {
    const env = { ...process.env, MAX_RECIPIENTS: String(app.config.maxRecipients) };
    await new Promise<void>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', 'scripts/openapi.ts', '--out', out], { cwd: root, env, timeout: 60_000 }, (err) => (err ? reject(err) : resolve())),
    );
    assert.equal(JSON.parse(await readFile(out, 'utf8')), doc);
  } finally {
    await rm(out, { force: true });
  }
});

test.run();
