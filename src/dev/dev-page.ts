// GET /dev/: a page to try the broker in a browser, served only by a fully embedded development
// broker on loopback (config.devPage), never in production. Alice uploads a file with the client
// library, Bob sees it pending and downloads it. The page's script (page/main.ts, with the client
// library) is bundled by esbuild, a devDependency loaded on first use.
import { createSecretKey } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose/jwt/sign';
import type { Context, Next } from 'koa';
import type { AppContext } from '../context.js';
import { replaceMembers } from '../services/convos.js';

const CONVO = 'dev-convo';
const USERS = [
  { name: 'alice', did: 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa' },
  { name: 'bob', did: 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb' },
];
const TOKEN_TTL_SECONDS = 3600;

/** Whether this broker serves /dev/: fully embedded development, its bucket behind the CORS front. */
export function devPageEnabled(app: AppContext): boolean {
  return app.config.devPage && app.config.nodeEnv !== 'production' && app.storeFront !== null && app.config.jwt.secret !== null;
}

/**
 * The page may talk to itself and to the local bucket, nothing else; no inline script or style.
 * Its own policy, in place of the API's (which allows nothing at all).
 */
export function devPagePolicy(storeOrigin: string): string {
  return [
    "default-src 'none'",
    // The client library may hash large files with WebAssembly (hash-wasm), which needs this.
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self'",
    `connect-src 'self' ${storeOrigin}`,
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mls-blob-broker · try it</title>
<link rel="stylesheet" href="/dev/page.css">
<script type="module" src="/dev/page.js"></script>
</head>
<body>
<h1>mls-blob-broker · try it</h1>
<p>Development only: a fully embedded broker (PostgreSQL and the R2 emulator behind its CORS front).
The bytes go from this page straight to the bucket, never through the broker.</p>
<section>
<h2>Alice sends <small id="alice"></small></h2>
<input type="file" id="file"> <button id="send">Upload</button>
<p><progress id="bar" max="1" value="0"></progress> <span id="send-status">pick a file</span>
· progress reports: <span id="reports">0</span></p>
</section>
<section>
<h2>Bob receives <small id="bob"></small></h2>
<p>Pending: <span id="pending-count">…</span> <button id="refresh">Refresh</button></p>
<ul id="pending"></ul>
</section>
</body>
</html>
`;

const CSS = `body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; }
section { border: 1px solid #ccc; border-radius: 6px; padding: 0 1rem 1rem; margin: 1rem 0; }
small { color: #666; font-weight: normal; }
progress { width: 20rem; }
li { margin: .3rem 0; font-family: ui-monospace, monospace; font-size: 13px; }
.result { margin-left: .5rem; color: #064; }
`;

let bundle: Promise<string> | null = null;

/** The page's script with the client library, bundled once per process. */
function pageScript(): Promise<string> {
  bundle ??= (async () => {
    const { build } = await import('esbuild');
    const out = await build({
      entryPoints: [fileURLToPath(new URL('./page/main.ts', import.meta.url))],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    return out.outputFiles[0]!.text;
  })();
  bundle.catch(() => (bundle = null));
  return bundle;
}

async function mint(secret: string, audience: string, issuer: string | null, did: string): Promise<string> {
  let jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(did).setAudience(audience).setIssuedAt().setExpirationTime(`${TOKEN_TTL_SECONDS}s`);
  if (issuer !== null) jwt = jwt.setIssuer(issuer);
  return jwt.sign(createSecretKey(Buffer.from(secret, 'utf8')));
}

/** Koa middleware answering /dev/…; everything else passes on. */
export function devPage(app: AppContext) {
  const policy = devPagePolicy(app.storeFront!.origin);
  const { secret, audience, issuer } = app.config.jwt;
  return async function servePage(ctx: Context, next: Next): Promise<void> {
    if (ctx.path !== '/dev' && !ctx.path.startsWith('/dev/')) return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    ctx.set('Content-Security-Policy', policy);
    ctx.set('Cache-Control', 'no-store');
    switch (ctx.path) {
      case '/dev':
        return ctx.redirect('/dev/');
      case '/dev/':
        ctx.type = 'text/html; charset=utf-8';
        ctx.body = HTML;
        return;
      case '/dev/page.css':
        ctx.type = 'text/css; charset=utf-8';
        ctx.body = CSS;
        return;
      case '/dev/page.js':
        ctx.type = 'text/javascript; charset=utf-8';
        ctx.body = await pageScript();
        return;
      case '/dev/session.json': {
        // Both users in one conversation, with tokens signed by this development broker's own key.
        const service = { did: app.config.serviceDids[0]!, isService: true };
        await replaceMembers(app, service, CONVO, USERS.map((u) => u.did));
        const users = await Promise.all(USERS.map(async (u) => ({ ...u, token: await mint(secret!, audience, issuer, u.did) })));
        ctx.body = { convo_id: CONVO, users };
        return;
      }
      default:
        return next();
    }
  };
}
