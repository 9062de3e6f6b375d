// Requests to the broker (JSON, bearer token, retries) and to the bucket (presigned, no token).
import { BrokerError, NetworkError, StoreError } from './errors.js';
import type { TokenSource } from './types.js';

export interface RetryPolicy {
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Exponential backoff with full jitter (spreads clients that failed together); honours Retry-After. */
export function backoff(policy: RetryPolicy, attempt: number, retryAfterSeconds?: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  const jittered = Math.random() * ceiling;
  return retryAfterSeconds === undefined ? jittered : Math.max(retryAfterSeconds * 1000, jittered);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A fetch failure caused by the caller's signal is not a network error: let it through untouched. */
function rethrowIfAborted(err: unknown, signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason;
  if ((err as { name?: string })?.name === 'AbortError') throw err;
}

const retryable = (status: number) => status === 429 || status >= 500;

export interface ApiOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  signal?: AbortSignal;
  /** Statuses that are answers, not errors (returned instead of thrown). */
  accept?: number[];
  /** Retry network errors, 429 (but QuotaExceeded) and 5xx (default true; every broker route is safe to repeat). */
  retry?: boolean;
}

export interface ApiResponse<T> {
  status: number;
  body: T;
}

export class Transport {
  private readonly origin: string;

  constructor(
    baseUrl: string,
    private readonly token: TokenSource,
    readonly fetch: typeof globalThis.fetch,
    readonly policy: RetryPolicy,
  ) {
    this.origin = baseUrl.replace(/\/+$/, '');
  }

  private async bearer(): Promise<string> {
    return typeof this.token === 'string' ? this.token : await this.token();
  }

  /** One JSON call to the broker. Throws BrokerError for an error answer, NetworkError when none came. */
  async api<T>(method: string, path: string, options: ApiOptions = {}): Promise<ApiResponse<T>> {
    let url = this.origin + path;
    if (options.query) {
      const q = Object.entries(options.query).filter((e): e is [string, string | number] => e[1] !== undefined);
      if (q.length > 0) url += '?' + q.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&');
    }
    const retries = options.retry === false ? 0 : this.policy.retries;
    let refreshedToken = false;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { authorization: `Bearer ${await this.bearer()}`, accept: 'application/json' };
      let body: string | undefined;
      if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers['content-type'] = 'application/json';
      }
      let res: Response;
      try {
        res = await this.fetch(url, { method, headers, body, signal: options.signal });
      } catch (err) {
        rethrowIfAborted(err, options.signal);
        if (attempt >= retries) throw new NetworkError(`${method} ${path}: no answer from the broker`, { cause: err });
        await sleep(backoff(this.policy, attempt), options.signal);
        continue;
      }
      const text = await res.text();
      let parsed: unknown = undefined;
      if (text !== '') {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
      }
      if (res.ok || options.accept?.includes(res.status)) return { status: res.status, body: parsed as T };
      const error = toBrokerError(res, parsed, `${method} ${path}`);
      // A token function may hold an expired token: ask it once more before giving up.
      if (res.status === 401 && typeof this.token === 'function' && !refreshedToken) {
        refreshedToken = true;
        continue;
      }
      // The byte quota's wait is hours: the caller decides whether to come back (error.retryAfter).
      if (retryable(res.status) && error.code !== 'QuotaExceeded' && attempt < retries) {
        await sleep(backoff(this.policy, attempt, error.retryAfter), options.signal);
        continue;
      }
      throw error;
    }
  }
}

function toBrokerError(res: Response, body: unknown, what: string): BrokerError {
  const b = (body ?? {}) as { error?: unknown; message?: unknown };
  const retryAfterHeader = res.headers.get('retry-after');
  const retryAfter = retryAfterHeader !== null && /^\d+$/.test(retryAfterHeader) ? Number(retryAfterHeader) : undefined;
  return new BrokerError(
    res.status,
    typeof b.error === 'string' ? b.error : `Http${res.status}`,
    typeof b.message === 'string' ? b.message : `${what} answered ${res.status}`,
    body,
    retryAfter,
    res.headers.get('x-request-id') ?? undefined,
  );
}

export interface StoreAnswer {
  status: number;
  /** ETag response header, quotes kept as the store sent it. */
  etag: string | null;
  /** S3 error code from the XML body, for non-2xx answers. */
  code: string | null;
  message: string | null;
}

/**
 * One presigned PUT with exactly the signed headers, except content-length: fetch derives it from
 * the body (browsers forbid setting it). Throws NetworkError when no answer came. `streamed`
 * (Node only, see progress.ts) sends a stream of `body` instead, with its content-length set.
 */
export async function storePut(
  doFetch: typeof globalThis.fetch,
  url: string,
  signed: Record<string, string>,
  body: Uint8Array | Blob,
  signal?: AbortSignal,
  streamed?: ReadableStream<Uint8Array>,
): Promise<StoreAnswer> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed)) if (k.toLowerCase() !== 'content-length') headers[k] = v;
  // Never a SharedArrayBuffer view; the DOM typings (browser build) want that said.
  const init: RequestInit = { method: 'PUT', headers, body: body as Uint8Array<ArrayBuffer> | Blob, signal };
  if (streamed !== undefined) {
    headers['content-length'] = String(body instanceof Uint8Array ? body.length : body.size);
    Object.assign(init, { body: streamed, duplex: 'half' });
  }
  let res: Response;
  let text: string;
  try {
    res = await doFetch(url, init);
    text = await res.text();
  } catch (err) {
    rethrowIfAborted(err, signal);
    throw new NetworkError('PUT to the store: no answer (the store may have refused the body)', { cause: err });
  }
  const { code, message } = res.ok ? { code: null, message: null } : parseS3Error(text);
  return { status: res.status, etag: res.headers.get('etag'), code, message };
}

/** GET of a presigned download URL. */
/** Error bodies are small XML documents; read no more of one than this. */
const MAX_ERROR_BODY = 64 * 1024;

/** GET from the store, reading at most `limit` bytes of a success (and 64 KiB of an error). */
export async function storeGet(
  doFetch: typeof globalThis.fetch,
  url: string,
  signal?: AbortSignal,
  limit = Number.POSITIVE_INFINITY,
): Promise<{ status: number; bytes: Uint8Array; code: string | null }> {
  let res: Response;
  let bytes: Uint8Array;
  try {
    res = await doFetch(url, { method: 'GET', signal });
    bytes = await readAtMost(res, res.ok ? limit : MAX_ERROR_BODY);
  } catch (err) {
    rethrowIfAborted(err, signal);
    throw new NetworkError('GET from the store: no answer', { cause: err });
  }
  return { status: res.status, bytes, code: res.ok ? null : parseS3Error(new TextDecoder().decode(bytes)).code };
}

/** The body, cut after `limit` bytes (the rest is not downloaded). */
async function readAtMost(res: Response, limit: number): Promise<Uint8Array> {
  if (res.body === null) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
    if (total >= limit) {
      await reader.cancel().catch(() => {});
      break;
    }
  }
  const out = new Uint8Array(Math.min(total, limit));
  let at = 0;
  for (const c of chunks) {
    const take = Math.min(c.length, out.length - at);
    out.set(c.subarray(0, take), at);
    at += take;
    if (at === out.length) break;
  }
  return out;
}

export function parseS3Error(xml: string): { code: string | null; message: string | null } {
  const code = /<Code>([^<]*)<\/Code>/.exec(xml)?.[1] ?? null;
  const message = /<Message>([^<]*)<\/Message>/.exec(xml)?.[1] ?? null;
  return { code, message };
}

export function storeError(answer: StoreAnswer, what: string): StoreError {
  const code = answer.code ?? `Http${answer.status}`;
  return new StoreError(answer.status, code, `${what}: the store answered ${answer.status} ${code}${answer.message ? ` (${answer.message})` : ''}`);
}

export { retryable };
