// A PUT to a presigned store URL that always sees the store's answer. With fetch, a store that
// refuses a request from its headers (a signed size or an expiry that does not match) and closes
// the connection mid-body often surfaces as "fetch failed" (README, "Architecture", storage
// facts): a test could then not tell a refusal from a store that is down. With `Expect: 100-continue` the store refuses
// from the headers before any body is sent, so a refusal arrives as its status. The emulator does
// not send "100 Continue" for a request it accepts, so the body goes after a short wait (as curl
// does); a refusal by then has long arrived.
import { request } from 'node:http';

/** How long the store has to refuse from the headers alone before the body is sent anyway. */
const CONTINUE_WAIT_MS = 1000;

export interface StoreAnswer {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/**
 * `refusal: true` when the test expects (or may meet) a refusal: the headers go first and the body
 * after the store had its chance to refuse (costing up to CONTINUE_WAIT_MS on an accepted PUT).
 * Otherwise the body goes at once and a cut connection is an error, never a status.
 */
export async function storePut(
  url: string,
  headers: Record<string, string>,
  body: Uint8Array | Blob,
  options: { signal?: AbortSignal; refusal?: boolean } = {},
): Promise<StoreAnswer> {
  const { signal, refusal = false } = options;
  const data = body instanceof Blob ? Buffer.from(await body.arrayBuffer()) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({
      host: u.hostname,
      port: u.port,
      path: u.pathname + u.search,
      method: 'PUT',
      headers: { ...headers, 'content-length': String(data.length), ...(refusal ? { expect: '100-continue' } : {}) },
      signal,
      // A connection of its own: the store may close one after a refusal or when idle, and a kept-alive
      // socket reused at that moment fails the next PUT with "socket hang up" (seen under load).
      agent: false,
    });
    let sent = false;
    const send = () => {
      if (!sent) req.end(data);
      sent = true;
    };
    const wait = setTimeout(send, refusal ? CONTINUE_WAIT_MS : 0);
    req.once('continue', send);
    req.once('response', (res) => {
      clearTimeout(wait);
      sent = true; // answered: whatever was not sent never will be
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.once('end', () => {
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h[k] = v;
        resolve({ status: res.statusCode ?? 0, headers: h, text });
      });
      // The store may close the connection right after a refusal: the status is what counts.
      res.once('error', () => resolve({ status: res.statusCode ?? 0, headers: {}, text }));
    });
    req.once('error', (err) => {
      clearTimeout(wait);
      reject(err);
    });
    req.flushHeaders();
  });
}
