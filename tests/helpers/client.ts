// A BrokerClient for the suites, with a fetch that records every request and lets a test inject
// faults (a hand-written fake, used only where a real part cannot show the case).
import { BrokerClient } from '../../src/client/index.js';
import type { BrokerClientOptions } from '../../src/client/index.js';
import type { TestApp } from './harness.js';
import { storePut } from './store-put.js';

export interface Recorded {
  method: string;
  url: string;
  /** 'api' for the broker, 'store' for presigned bucket URLs. */
  target: 'api' | 'store';
  /** Part number of a multipart part PUT, null otherwise. */
  part: number | null;
  /** The HTTP status, or -1 when fetch threw. */
  status: number;
  /** Request headers as sent. */
  headers: Record<string, string>;
  /** A JSON request body, parsed. */
  body: unknown;
}

export type Intercept = (req: { method: string; url: string; target: 'api' | 'store'; part: number | null; n: number; init: RequestInit | undefined }) =>
  | Response
  | Error
  | undefined
  | Promise<Response | Error | undefined>;

export interface RecordingFetch {
  fetch: typeof fetch;
  calls: Recorded[];
  /** Runs before each request; a Response or Error returned replaces the real request. */
  intercept: Intercept | null;
  /** Most store PUTs in flight at once. */
  maxInFlight: number;
  /** Delay (ms) added after each store PUT answer, to make overlap observable. */
  putDelayMs: number;
  /** The test expects the store to refuse some PUTs: send them so the refusal is always seen (storePut). */
  refusals: boolean;
}

/**
 * A store PUT as the client sent it, through `storePut`: the store's refusal always arrives as its
 * status, never as the "fetch failed" of a connection cut mid-body, so a test can insist on a 403.
 */
async function putThrough(url: string, init: RequestInit | undefined): Promise<Response> {
  const { 'content-length': _len, ...headers } = Object.fromEntries(new Headers(init?.headers).entries());
  const body = init?.body;
  if (!(body instanceof Uint8Array) && !(body instanceof Blob)) throw new Error('recordingFetch: a store PUT body must be bytes or a Blob');
  const answer = await storePut(url, headers, body, { signal: init?.signal ?? undefined, refusal: true });
  return new Response(answer.status === 204 || answer.status === 304 ? null : answer.text, { status: answer.status, headers: answer.headers });
}

export function recordingFetch(app: TestApp): RecordingFetch {
  const rec: RecordingFetch = { fetch: undefined as unknown as typeof fetch, calls: [], intercept: null, maxInFlight: 0, putDelayMs: 0, refusals: false };
  let inFlight = 0;
  let n = 0;
  rec.fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = init?.method ?? 'GET';
    const target = url.startsWith(app.url) ? 'api' : 'store';
    const partParam = target === 'store' ? new URL(url).searchParams.get('partNumber') : null;
    const part = partParam === null ? null : Number(partParam);
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as unknown) : undefined;
    const entry: Recorded = { method, url, target, part, status: -1, headers, body };
    rec.calls.push(entry);
    const isPut = target === 'store' && method === 'PUT';
    if (isPut) rec.maxInFlight = Math.max(rec.maxInFlight, ++inFlight);
    try {
      const injected = rec.intercept ? await rec.intercept({ method, url, target, part, n: n++, init }) : undefined;
      if (injected instanceof Error) throw injected;
      const res = injected ?? (isPut && rec.refusals ? await putThrough(url, init) : await fetch(input, init));
      entry.status = res.status;
      // The broker's own answers must match its document (an injected fault is not the broker's).
      if (injected === undefined && target === 'api') await app.checkAnswer(method, url, res.status, res.headers, await res.clone().text());
      if (isPut && rec.putDelayMs > 0) await new Promise((r) => setTimeout(r, rec.putDelayMs));
      return res;
    } finally {
      if (isPut) inFlight--;
    }
  };
  return rec;
}

/** A client acting as `did` against the suite's broker; short backoff so retries do not slow tests. */
export function clientFor(app: TestApp, did: string, options: Partial<BrokerClientOptions> = {}): BrokerClient {
  return new BrokerClient({
    baseUrl: app.url,
    token: () => app.token(did),
    baseDelayMs: 5,
    maxDelayMs: 50,
    ...options,
  });
}

export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
