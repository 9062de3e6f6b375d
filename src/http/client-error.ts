// Requests Node's HTTP parser refuses before Koa sees them: headers above its limit (16 KiB unless
// --max-http-header-size says otherwise) and bytes that are not HTTP/1.1. Left alone, Node answers
// them with a bare status line; here they get the house error body with a request id, an access line
// and their count in broker_http_requests_total, like every other answer. A request slower to arrive than
// requestTimeout keeps Node's own bodiless 408 (README, "API reference", errors).
import { randomUUID } from 'node:crypto';
import { maxHeaderSize } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AppContext } from '../context.js';
import { headersTooLarge, invalidRequest, payloadTooLarge, type AppError } from '../errors.js';
import { CONTENT_SECURITY_POLICY } from './security-headers.js';

const REASONS: Record<number, string> = { 400: 'Bad Request', 413: 'Payload Too Large', 431: 'Request Header Fields Too Large' };
/** Node's own answers, for what is not a parse error. */
const REQUEST_TIMEOUT = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n';
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';
/** How long a refused client may take to close its side before the connection is dropped. */
const LINGER_MS = 5000;

function refusalFor(code: string | undefined): AppError | null {
  if (code === 'HPE_HEADER_OVERFLOW') return headersTooLarge(maxHeaderSize);
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return payloadTooLarge('The chunk extensions of the body are too large.');
  if (code?.startsWith('HPE_')) return invalidRequest('The request is not valid HTTP/1.1.');
  return null;
}

/** The server's 'clientError' listener. */
export function answerClientErrors(app: AppContext) {
  const { log, metrics } = app;
  // The parser reports again for every later chunk of a refused connection: it is answered once.
  const answered = new WeakSet<Duplex>();
  return function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    if (answered.has(socket)) return;
    answered.add(socket);
    // Node's own rule: never write into a response already under way on this connection.
    const current = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || current?.headersSent === true) {
      socket.destroy();
      return;
    }
    // The client may still be sending (the rest of its headers): its side is read and dropped until
    // it closes, so the answer is not lost to a reset, but not for longer than LINGER_MS.
    const linger = setTimeout(() => socket.destroy(), LINGER_MS).unref();
    socket.once('close', () => clearTimeout(linger));
    const refusal = refusalFor(err.code);
    if (refusal === null) {
      socket.end(err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? REQUEST_TIMEOUT : BAD_REQUEST);
      return;
    }
    const requestId = randomUUID();
    const body = JSON.stringify({ error: refusal.code, message: refusal.message, request_id: requestId });
    const head = [
      `HTTP/1.1 ${refusal.status} ${REASONS[refusal.status] ?? 'Bad Request'}`,
      'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      `x-request-id: ${requestId}`,
      'X-Content-Type-Options: nosniff',
      `Content-Security-Policy: ${CONTENT_SECURITY_POLICY}`,
      'Cache-Control: no-store',
      'Connection: close',
    ];
    socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
    // Neither method nor route was read; nothing of the request is logged but its refusal.
    const labels = { method: 'unknown', route: 'unmatched', status: String(refusal.status) };
    metrics.httpRequests.inc(labels);
    log.info({ request_id: requestId, route: 'unmatched', status: refusal.status, error: refusal.code, bytes: Buffer.byteLength(body) }, 'request');
  };
}
