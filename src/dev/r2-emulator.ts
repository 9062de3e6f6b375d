// Cloudflare's own R2 emulator (miniflare) with its local S3 endpoint: it verifies SigV4
// presigned URLs, expiry, signed size, Content-MD5 and If-None-Match like R2 does.
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { withoutForeignSignalHandlers } from './signals.js';

export interface R2Emulator {
  /** The S3 endpoint, path style: `<origin>/cdn-cgi/local/r2/s3`. */
  endpoint: string;
  /**
   * With `loader: true` only: stores `body` under every key of `keys` in bucket `bucket`, from inside
   * the emulator (no HTTP request, no signature per object): for the benchmark's bulk loads, several
   * times faster than a presigned PUT each.
   */
  load?(bucket: string, keys: readonly string[], body: string): Promise<void>;
  stop(): Promise<void>;
}

const NOT_FOUND = 'export default { fetch() { return new Response(null, { status: 404 }) } }';

/**
 * The worker behind the emulator's own origin when a loader is wanted: a POST carrying the secret
 * made at start (only the process that started the emulator knows it) stores objects in a binding;
 * anything else is 404, as without a loader.
 */
const loaderScript = (secret: string) => `export default {
  async fetch(request, env) {
    if (request.method !== 'POST' || request.headers.get('x-loader-secret') !== ${JSON.stringify(secret)}) {
      return new Response(null, { status: 404 });
    }
    const { binding, keys, body } = await request.json();
    await Promise.all(keys.map((key) => env[binding].put(key, body)));
    return new Response(null, { status: 204 });
  },
};`;

let miniflare: Promise<typeof import('miniflare')> | undefined;

/** Miniflare's code (large: about as long to load as the emulator takes to boot), loaded once. */
export function loadMiniflare(): Promise<typeof import('miniflare')> {
  miniflare ??= withoutForeignSignalHandlers(() => import('miniflare'));
  return miniflare;
}

export interface R2EmulatorOptions {
  persistDir: string;
  buckets: readonly string[];
  accessKeyId: string;
  secretAccessKey: string;
  port?: number;
  /** Enables `load` (the benchmark only; never in `npm start`). */
  loader?: boolean;
}

/**
 * Miniflare's options for the emulator, all but its log (a Miniflare class: made where Miniflare is
 * loaded); plain data, so that ./r2-emulator-thread.ts can start the same emulator from a thread.
 */
export function miniflareOptions(options: R2EmulatorOptions, secret: string) {
  const credentials = { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey };
  const r2Buckets = Object.fromEntries(options.buckets.map((id, i) => [`B${i}`, { id, s3Credentials: credentials }]));
  return {
    modules: true,
    script: options.loader ? loaderScript(secret) : NOT_FOUND,
    host: '127.0.0.1',
    port: options.port ?? 0,
    r2Buckets,
    r2Persist: options.persistDir,
    // The default fetches request.cf data from Cloudflare at start; nothing outside is reachable or needed.
    cf: false,
  };
}

/** The S3 endpoint of an emulator listening on `origin`. */
export const s3Endpoint = (origin: URL | string) => new URL('/cdn-cgi/local/r2/s3', origin).href;

export async function startR2Emulator(options: R2EmulatorOptions): Promise<R2Emulator> {
  await mkdir(options.persistDir, { recursive: true });
  const { Miniflare, Log, LogLevel } = await loadMiniflare();
  const secret = randomBytes(24).toString('hex');
  const bindingOf = new Map(options.buckets.map((id, i) => [id, `B${i}`]));
  return withoutForeignSignalHandlers(async () => {
    const mf = new Miniflare({ ...miniflareOptions(options, secret), log: new Log(LogLevel.WARN) });
    const origin = await mf.ready;
    const load = async (bucket: string, keys: readonly string[], body: string) => {
      const binding = bindingOf.get(bucket);
      if (binding === undefined) throw new Error(`the emulator has no bucket ${bucket}`);
      const res = await mf.dispatchFetch(origin, { method: 'POST', headers: { 'x-loader-secret': secret }, body: JSON.stringify({ binding, keys, body }) });
      await res.arrayBuffer();
      if (res.status !== 204) throw new Error(`loading ${keys.length} objects: ${res.status}`);
    };
    return {
      endpoint: s3Endpoint(origin),
      ...(options.loader ? { load } : {}),
      stop: () => mf.dispose(),
    };
  });
}
