// JSON request bodies, read by a matched route only after authentication and the rate limit: an
// unmatched, unauthenticated or throttled request is answered without its body being read or
// parsed (Node discards the unread rest). 415 for anything but JSON, 413 past the route's limit
// (before reading it all), 400 when malformed or nested too deep. Written here rather than taken
// from a body parser so every failure has our error body.
import type { Context } from 'koa';
import { payloadTooLarge, unsupportedMediaType, type AppError } from '../errors.js';
import { parseJson } from './json.js';

/** The largest body any route accepts: /complete, which lists up to 1,000 part ETags. */
export const MAX_BODY_BYTES = 256 * 1024;
/** A route that takes no body still tolerates a small one (`{}`), refused later if not empty. */
export const NO_BODY_BYTES = 1024;
/** Routes with a small body (a reservation, part numbers) unless they declare more. */
export const DEFAULT_BODY_BYTES = 16 * 1024;

/** The largest body a route reads. */
export const bodyLimit = (route: { body?: unknown; maxBodyBytes?: number }): number =>
  Math.min(route.maxBodyBytes ?? (route.body === undefined ? NO_BODY_BYTES : DEFAULT_BODY_BYTES), MAX_BODY_BYTES);

/**
 * A commit: 4 KiB of metadata, the id, and room for MAX_RECIPIENTS DIDs of up to ~60 characters
 * (a did:plc is 32), within MAX_BODY_BYTES.
 */
export const commitBodyBytes = (maxRecipients: number): number => Math.min(MAX_BODY_BYTES, 8 * 1024 + 64 * maxRecipients);

/** The client went away before its body arrived: not a failure of ours, nothing to answer. */
export class ClientClosed extends Error {
  constructor(cause?: unknown) {
    super('the client closed the connection before sending its whole body', { cause });
    this.name = 'ClientClosed';
  }
}

/** Refuses the body: the rest is drained unread so the client receives the 413 rather than a
 *  reset, and the connection is not reused since its request stream is spent. */
function tooLarge(ctx: Context, limit: number): AppError {
  ctx.req.resume();
  ctx.set('Connection', 'close');
  return payloadTooLarge(`Request bodies on this route are limited to ${limit} bytes.`);
}

/** The parsed JSON body, or undefined when there is none. */
export async function readJsonBody(ctx: Context, limit: number): Promise<unknown> {
  const declared = ctx.request.length; // undefined when chunked or absent
  const hasBody = (declared !== undefined && declared > 0) || ctx.get('transfer-encoding') !== '';
  if (!hasBody || ctx.method === 'GET' || ctx.method === 'HEAD' || ctx.method === 'OPTIONS') return undefined;
  if (declared !== undefined && declared > limit) throw tooLarge(ctx, limit);
  if (!ctx.is('application/json')) throw unsupportedMediaType();
  const chunks = await readLimited(ctx, limit);
  if (chunks === null) throw tooLarge(ctx, limit);
  const text = Buffer.concat(chunks).toString('utf8');
  return text.trim() === '' ? undefined : parseJson(text);
}

/**
 * The body's chunks, or null once it passes `limit`. Listeners rather than for-await: a
 * for-await left early destroys the request stream, and the refused rest must drain instead.
 */
function readLimited(ctx: Context, limit: number): Promise<Buffer[] | null> {
  return new Promise((resolve, reject) => {
    // Gone before we looked: its 'close' has fired already and would never reach a listener.
    if (ctx.req.destroyed && !ctx.req.readableEnded) {
      reject(new ClientClosed());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
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
    // A client that disconnects mid-body shows up as an 'error' (ECONNRESET, "aborted") or a
    // 'close' before 'end', depending on timing: both are the client's doing.
    const onError = (err: Error) => {
      cleanup();
      reject(new ClientClosed(err));
    };
    const onClose = () => {
      cleanup();
      reject(new ClientClosed());
    };
    const cleanup = () => {
      ctx.req.off('data', onData);
      ctx.req.off('end', onEnd);
      ctx.req.off('error', onError);
      ctx.req.off('close', onClose);
    };
    ctx.req.on('data', onData);
    ctx.req.once('end', onEnd);
    ctx.req.once('error', onError);
    ctx.req.once('close', onClose);
  });
}
