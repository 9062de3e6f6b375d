// A small HTTP front for the local R2 emulator that answers CORS the way R2 does with the rules
// `npm run setup-bucket` sets (src/store/bucket-rules.ts). The emulator itself answers any local
// origin with `Access-Control-Allow-Origin: *` and every method, so a browser talking to it proves
// nothing about the bucket's real rules. Development only.
//
// The front is the store endpoint the broker signs for: requests go on to the emulator with path,
// query and Host unchanged, so the emulator checks each SigV4 signature against the host the
// client really used.
import type { CORSRule } from '@aws-sdk/client-s3';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CorsFront {
  /** The S3 endpoint to sign for: the emulator's, on the front's origin. */
  endpoint: string;
  origin: string;
  /** Replaces the rules (the broker learns its own origin only once it listens). */
  setRules(rules: readonly CORSRule[]): void;
  stop(): Promise<void>;
}

/** What a rule set answers a request from `origin` for `method` (and, for a preflight, the headers it asks for). */
export function matchCorsRule(rules: readonly CORSRule[], origin: string, method: string, headers: readonly string[] = []): CORSRule | null {
  const m = method.toUpperCase();
  for (const rule of rules) {
    if (!(rule.AllowedOrigins ?? []).some((o) => wildcard(o, origin))) continue;
    if (!(rule.AllowedMethods ?? []).some((x) => x.toUpperCase() === m)) continue;
    const allowed = (rule.AllowedHeaders ?? []).map((h) => h.toLowerCase());
    if (!headers.every((h) => allowed.some((a) => wildcard(a, h.toLowerCase())))) continue;
    return rule;
  }
  return null;
}

/** S3's rule patterns: exact, or one `*` standing for any run of characters. */
function wildcard(pattern: string, value: string): boolean {
  const star = pattern.indexOf('*');
  if (star < 0) return pattern === value;
  const head = pattern.slice(0, star);
  const tail = pattern.slice(star + 1);
  return value.length >= head.length + tail.length && value.startsWith(head) && value.endsWith(tail);
}

const forbidden = (res: ServerResponse, message: string) => {
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessForbidden</Code><Message>CORSResponse: ${message}</Message></Error>`;
  res.writeHead(403, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

function preflight(rules: readonly CORSRule[], req: IncomingMessage, res: ServerResponse): void {
  const origin = req.headers.origin;
  const method = req.headers['access-control-request-method'];
  if (typeof origin !== 'string' || typeof method !== 'string') {
    return forbidden(res, 'Invalid preflight request: Origin and Access-Control-Request-Method are required');
  }
  const asked = (req.headers['access-control-request-headers'] ?? '')
    .toString()
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  const rule = matchCorsRule(rules, origin, method, asked);
  if (rule === null) return forbidden(res, 'This CORS request is not allowed: no rule allows this origin, method and headers');
  const headers: http.OutgoingHttpHeaders = {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': (rule.AllowedMethods ?? []).join(', '),
    vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
    'content-length': 0,
  };
  if (asked.length > 0) headers['access-control-allow-headers'] = asked.join(', ');
  if (rule.ExposeHeaders?.length) headers['access-control-expose-headers'] = rule.ExposeHeaders.join(', ');
  if (rule.MaxAgeSeconds !== undefined) headers['access-control-max-age'] = String(rule.MaxAgeSeconds);
  res.writeHead(200, headers);
  res.end();
}

/** Upstream headers without the emulator's own CORS answer, plus ours for an allowed origin. */
function answerHeaders(rules: readonly CORSRule[], req: IncomingMessage, upstream: IncomingMessage): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(upstream.headers)) {
    if (v !== undefined && !k.startsWith('access-control-')) out[k] = v;
  }
  const origin = req.headers.origin;
  const rule = typeof origin === 'string' ? matchCorsRule(rules, origin, req.method ?? 'GET') : null;
  if (rule !== null) {
    out['access-control-allow-origin'] = origin;
    if (rule.ExposeHeaders?.length) out['access-control-expose-headers'] = rule.ExposeHeaders.join(', ');
  }
  if (typeof origin === 'string') out.vary = out.vary ? `${String(out.vary)}, Origin` : 'Origin';
  return out;
}

/** Starts the front on 127.0.0.1 (a free port unless given) before the emulator at `emulatorEndpoint`. */
export async function startCorsFront(options: { emulatorEndpoint: string; rules: readonly CORSRule[]; port?: number }): Promise<CorsFront> {
  const target = new URL(options.emulatorEndpoint);
  let rules = options.rules;
  // A connection per request: the emulator may answer before reading a body (a refused signature)
  // and then close, which would break the next request on a kept-alive socket.
  const agent = new http.Agent({ keepAlive: false });
  const server = http.createServer((req, res) => {
    if (req.method === 'OPTIONS') {
      req.resume();
      return preflight(rules, req, res);
    }
    // CORS is answered here; the emulator refuses any non-local Origin outright (Origin is never signed).
    const { origin: _origin, ...headers } = req.headers;
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answerHeaders(rules, req, answer));
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('the R2 emulator did not answer');
      } else res.destroy();
    });
    // A client that goes away mid-body takes the upstream request with it.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    endpoint: new URL(target.pathname, origin).href.replace(/\/$/, ''),
    origin,
    setRules(next) {
      rules = next;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
