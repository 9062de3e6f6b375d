// JSON request bodies: 415 for anything else, 413 past 256 KiB (before reading it all), 400 when
// malformed. Written here rather than taken from a body parser so every failure has our error body.
import type { Context, Next } from 'koa';
import { payloadTooLarge, unsupportedMediaType, type AppError } from '../errors.js';
import { parseJson } from './json.js';

export const MAX_BODY_BYTES = 256 * 1024;

/** Refuses the body: the rest is drained unread so the client receives the 413 rather than a
 *  reset, and the connection is not reused since its request stream is spent. */
function tooLarge(ctx: Context): AppError {
  ctx.req.resume();
  ctx.set('Connection', 'close');
  return payloadTooLarge(`Request bodies are limited to ${MAX_BODY_BYTES} bytes.`);
}

export async function jsonBody(ctx: Context, next: Next): Promise<void> {
  const declared = ctx.request.length; // undefined when chunked or absent
  const hasBody = (declared !== undefined && declared > 0) || ctx.get('transfer-encoding') !== '';
  if (!hasBody || ctx.method === 'GET' || ctx.method === 'HEAD' || ctx.method === 'OPTIONS') {
    return next();
  }
  if (declared !== undefined && declared > MAX_BODY_BYTES) throw tooLarge(ctx);
  if (!ctx.is('application/json')) {
    throw unsupportedMediaType();
  }
  const chunks = await readLimited(ctx);
  if (chunks === null) throw tooLarge(ctx);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return next();
  (ctx.request as { body?: unknown }).body = parseJson(text);
  return next();
}

/**
 * The body's chunks, or null once it passes MAX_BODY_BYTES. Listeners rather than for-await: a
 * for-await left early destroys the request stream, and the refused rest must drain instead.
 */
function readLimited(ctx: Context): Promise<Buffer[] | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        cleanup();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      ctx.req.off('data', onData);
      ctx.req.off('end', onEnd);
      ctx.req.off('error', onError);
    };
    ctx.req.on('data', onData);
    ctx.req.once('end', onEnd);
    ctx.req.once('error', onError);
  });
}
