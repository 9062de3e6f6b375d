// The baseline the broker is measured against, in a child process of its own like the broker: a
// bare Koa app that verifies the same bearer JWT the same way (jose, HS256, the audience, the key
// imported once), reads a JSON body with the broker's own reader, and answers a small JSON body.
// It answers every method and path, so each scenario sends it exactly the broker's requests.
import { createSecretKey } from 'node:crypto';
import { once } from 'node:events';
import { jwtVerify } from 'jose';
import Koa from 'koa';
import { loadConfig } from '../../src/config.js';
import { MAX_BODY_BYTES, readJsonBody } from '../../src/http/body.js';
import { serveOverIpc } from './ipc-server.js';

const config = loadConfig();
if (config.jwt.secret === null) throw new Error('the baseline needs JWT_SECRET');
const key = createSecretKey(Buffer.from(config.jwt.secret, 'utf8'));
const options = { algorithms: ['HS256'], audience: config.jwt.audience, requiredClaims: ['exp', 'sub'], clockTolerance: 30 };

const koa = new Koa({ proxy: false });
koa.silent = true;
koa.use(async (ctx, next) => {
  const header = ctx.get('authorization');
  if (!header.startsWith('Bearer ')) {
    ctx.status = 401;
    ctx.body = { error: 'AuthRequired' };
    return;
  }
  try {
    const { payload } = await jwtVerify(header.slice(7), key, options);
    ctx.state.sub = payload.sub;
  } catch {
    ctx.status = 401;
    ctx.body = { error: 'InvalidToken' };
    return;
  }
  await next();
});
// The broker reads a body only inside a matched route, after auth; here after auth too.
koa.use(async (ctx, next) => {
  (ctx.request as { body?: unknown }).body = await readJsonBody(ctx, MAX_BODY_BYTES);
  return next();
});
koa.use((ctx) => {
  // The status each scenario expects from the broker, so both sides count the same as success.
  ctx.status = Number(ctx.get('x-bench-status')) || 200;
  ctx.body = ctx.status === 204 ? null : { ok: true, sub: ctx.state.sub as string };
});
const server = koa.listen(0, '127.0.0.1');
await once(server, 'listening');
serveOverIpc(server, async () => {});
