// Cloudflare's own R2 emulator (miniflare) with its local S3 endpoint: it verifies SigV4
// presigned URLs, expiry, signed size, Content-MD5 and If-None-Match like R2 does.
import { mkdir } from 'node:fs/promises';
import { withoutForeignSignalHandlers } from './signals.js';

export interface R2Emulator {
  /** The S3 endpoint, path style: `<origin>/cdn-cgi/local/r2/s3`. */
  endpoint: string;
  stop(): Promise<void>;
}

export async function startR2Emulator(options: {
  persistDir: string;
  buckets: readonly string[];
  accessKeyId: string;
  secretAccessKey: string;
  port?: number;
}): Promise<R2Emulator> {
  await mkdir(options.persistDir, { recursive: true });
  const { Miniflare, Log, LogLevel } = await withoutForeignSignalHandlers(() => import('miniflare'));
  const credentials = { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey };
  const r2Buckets = Object.fromEntries(options.buckets.map((id, i) => [`B${i}`, { id, s3Credentials: credentials }]));
  return withoutForeignSignalHandlers(async () => {
    const mf = new Miniflare({
      modules: true,
      script: 'export default { fetch() { return new Response(null, { status: 404 }) } }',
      host: '127.0.0.1',
      port: options.port ?? 0,
      r2Buckets,
      r2Persist: options.persistDir,
      log: new Log(LogLevel.WARN),
      // The default fetches request.cf data from Cloudflare at start; nothing outside is reachable or needed.
      cf: false,
    });
    const origin = await mf.ready;
    return {
      endpoint: new URL('/cdn-cgi/local/r2/s3', origin).href,
      stop: () => mf.dispose(),
    };
  });
}
