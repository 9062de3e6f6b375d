// A closed-loop load generator on node:http: `connections` keep-alive connections to 127.0.0.1,
// each sending its next request as soon as the previous answer is read. Bounded by a request count
// and by time. Requests are prepared by the caller (bodies as Buffers, headers built once) so the
// generator's own CPU per request stays small: it shares the machine with what it measures.
import http from 'node:http';

export interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

export interface LoadOptions {
  /** Base URL: http://127.0.0.1:port only. */
  url: string;
  connections: number;
  seconds: number;
  /** At most this many requests (e.g. the number of prepared uploads). */
  maxRequests: number;
  /** The i-th request (i counts from 0 across all connections). */
  request(i: number): Req;
  /** The expected status; anything else counts as an error. */
  expect: number;
  /**
   * Open loop: send `rate` requests per second on schedule, whatever the answers do, over at most
   * `connections` sockets (a request waits for a free one). Latency counts from the scheduled time,
   * so a stall delays every request behind it as it would delay real clients. Without it: closed loop.
   */
  rate?: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50ms: number;
  p99ms: number;
  /** First unexpected answer, for the log. */
  firstError: string | null;
}

/**
 * Sends one request and reads its answer to the end. The body is kept only when the status is not the
 * expected one (for the error line): buffering and decoding every 18 KB pending page cost the load
 * generator, which shares the cores with what it measures, more than the broker's own work.
 */
function send(agent: http.Agent, host: string, port: number, r: Req, expect: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = r.body ? { ...r.headers, 'content-length': String(r.body.length) } : r.headers;
    const req = http.request({ host, port, method: r.method, path: r.path, headers, agent }, (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      if (status === expect) res.resume();
      else res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status, body: chunks.length === 0 ? '' : Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const target = new URL(o.url);
  if (target.hostname !== '127.0.0.1') throw new Error('the load generator targets 127.0.0.1 only');
  const port = Number(target.port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections });
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | null = null;
  const started = performance.now();
  const deadline = started + o.seconds * 1000;
  const one = async (r: Req, t: number) => {
    try {
      const res = await send(agent, '127.0.0.1', port, r, o.expect);
      if (res.status !== o.expect) {
        errors++;
        firstError ??= `${r.method} ${r.path} → ${res.status} ${res.body.slice(0, 200)}`;
      }
    } catch (err) {
      errors++;
      firstError ??= `${r.method} ${r.path} → ${(err as Error).message}`;
    }
    latencies.push(performance.now() - t);
  };
  const worker = async () => {
    while (next < o.maxRequests && performance.now() < deadline) {
      const r = o.request(next++);
      await one(r, performance.now());
    }
  };
  const scheduled = async (rate: number) => {
    const inFlight = new Set<Promise<void>>();
    while (next < o.maxRequests) {
      const due = started + (next * 1000) / rate;
      if (due >= deadline) break;
      const wait = due - performance.now();
      // Behind schedule, the due requests go out at once, but answers are read in between.
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      else if (next % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
      const p = one(o.request(next++), due);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    await Promise.all(inFlight);
  };
  if (o.rate === undefined) await Promise.all(Array.from({ length: o.connections }, worker));
  else await scheduled(o.rate);
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return { requests: latencies.length, errors, seconds, perSecond: latencies.length / seconds, p50ms: pct(0.5), p99ms: pct(0.99), firstError };
}
