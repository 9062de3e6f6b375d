// A plain HTTP proxy in front of the R2 emulator that can fail chosen requests at the network
// level: the broker's S3 client then meets a real 503 or a reset connection, retries and all.
// Headers pass unchanged, so SigV4 signatures (which cover the Host header) still verify.
import http, { type IncomingMessage } from 'node:http';

/** What to do with one request: pass it on (null), answer with a status, or reset the connection. */
export type Verdict = null | number | 'reset';

export interface FaultProxy {
  /** The S3 endpoint through the proxy (same path as the emulator's). */
  endpoint: string;
  /** Decides per request; null passes everything. */
  fault: ((req: IncomingMessage) => Verdict) | null;
  /** Requests answered with a fault so far. */
  faulted: number;
  close(): Promise<void>;
}

export async function startFaultProxy(storeEndpoint: string): Promise<FaultProxy> {
  const target = new URL(storeEndpoint);
  const proxy: FaultProxy = { endpoint: '', fault: null, faulted: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    const verdict = proxy.fault?.(req) ?? null;
    if (verdict !== null) {
      proxy.faulted++;
      if (verdict === 'reset') {
        req.socket.destroy();
        return;
      }
      req.resume();
      const body = req.method === 'HEAD' ? undefined : '<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>';
      res.writeHead(verdict, body === undefined ? {} : { 'content-type': 'application/xml' });
      res.end(body);
      return;
    }
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  proxy.endpoint = `http://127.0.0.1:${port}${target.pathname}`;
  proxy.close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return proxy;
}
