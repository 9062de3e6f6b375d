// Live progress within one PUT. `fetch` reports nothing while a request body goes out, so:
// in browsers the PUT goes through XMLHttpRequest, whose upload events fire as the body is sent
// (every 50 ms or so in Chromium); in Node the body is a stream that counts the bytes as the
// connection takes them, 256 KiB at a time. Without a progress listener a plain fetch is used.
import { NetworkError } from './errors.js';
import { parseS3Error, storePut, type StoreAnswer } from './http.js';

/** How a PUT reports the bytes it has sent: 'xhr' (browsers), 'stream' (Node), 'none'. */
export type BodyProgress = 'xhr' | 'stream' | 'none';

const CHUNK = 256 * 1024;

/** The subset of XMLHttpRequest used here (the DOM types are not part of this build). */
interface Xhr {
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  getResponseHeader(name: string): string | null;
  send(body: Uint8Array | Blob): void;
  abort(): void;
  readonly status: number;
  readonly responseText: string;
  readonly upload: { onprogress: ((e: { loaded: number }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  ontimeout: (() => void) | null;
}

const xhrConstructor = (): (new () => Xhr) | undefined => (globalThis as { XMLHttpRequest?: new () => Xhr }).XMLHttpRequest;

/**
 * XHR where the page's own fetch is used (a custom fetch is the caller's choice, and a plain
 * fetch cannot report), a counting stream body in Node, nothing elsewhere.
 */
export function detectBodyProgress(customFetch: boolean): BodyProgress {
  if (!customFetch && typeof xhrConstructor() === 'function') return 'xhr';
  const node = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
  return typeof node === 'string' ? 'stream' : 'none';
}

/**
 * One presigned PUT (exactly the signed headers; content-length comes from the body) that calls
 * `onSent(bytes)` as the body goes out. Throws NetworkError when no answer came: the store may
 * have refused the body before reading it (Node's fetch can throw where curl sees the 403), so "maybe rejected".
 */
export function putWithProgress(
  mode: BodyProgress,
  doFetch: typeof globalThis.fetch,
  url: string,
  signed: Record<string, string>,
  body: Uint8Array | Blob,
  onSent: (bytes: number) => void,
  signal?: AbortSignal,
): Promise<StoreAnswer> {
  if (mode === 'xhr') return xhrPut(url, signed, body, onSent, signal);
  if (mode === 'none') return storePut(doFetch, url, signed, body, signal);
  // Node's fetch sends a stream chunked unless told its length; storePut sets it (it is signed).
  return storePut(doFetch, url, signed, body, signal, countingStream(body, onSent));
}

/** The body as a stream that reports, at each pull, the bytes the connection has taken so far. */
export function countingStream(body: Uint8Array | Blob, onSent: (bytes: number) => void): ReadableStream<Uint8Array> {
  let sent = 0;
  if (body instanceof Uint8Array) {
    return new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (sent > 0) onSent(sent);
          if (sent >= body.length) return controller.close();
          const end = Math.min(body.length, sent + CHUNK);
          controller.enqueue(body.subarray(sent, end));
          sent = end;
        },
      },
      { highWaterMark: 0 },
    );
  }
  const reader = body.stream().getReader();
  // A Blob's stream may hand over megabytes at once (Node gives a Blob made of one buffer whole).
  let rest = new Uint8Array(0);
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (sent > 0) onSent(sent);
        if (rest.length === 0) {
          const { done, value } = await reader.read();
          if (done) return controller.close();
          rest = value;
        }
        const chunk = rest.subarray(0, CHUNK);
        rest = rest.subarray(chunk.length);
        controller.enqueue(chunk);
        sent += chunk.length;
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
}

function xhrPut(url: string, signed: Record<string, string>, body: Uint8Array | Blob, onSent: (bytes: number) => void, signal?: AbortSignal): Promise<StoreAnswer> {
  return new Promise<StoreAnswer>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const Ctor = xhrConstructor()!;
    const xhr = new Ctor();
    const onAbort = () => {
      xhr.abort();
      reject(signal!.reason);
    };
    const settle = () => signal?.removeEventListener('abort', onAbort);
    xhr.open('PUT', url);
    // Browsers set content-length themselves and refuse it from a script.
    for (const [k, v] of Object.entries(signed)) if (k.toLowerCase() !== 'content-length') xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onSent(e.loaded);
    xhr.onload = () => {
      settle();
      const ok = xhr.status >= 200 && xhr.status < 300;
      const { code, message } = ok ? { code: null, message: null } : parseS3Error(xhr.responseText);
      resolve({ status: xhr.status, etag: xhr.getResponseHeader('etag'), code, message });
    };
    // No answer (a refused preflight, a reset connection, a body the store stopped reading): maybe rejected.
    xhr.onerror = xhr.ontimeout = () => {
      settle();
      reject(new NetworkError('PUT to the store: no answer (the store may have refused the body, or CORS the request)'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    xhr.send(body);
  });
}
