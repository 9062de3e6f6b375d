// Runs in Chromium (bundled by tests/browser.test.ts with esbuild): the client library as a web
// app uses it, with the page's own fetch and XMLHttpRequest, on a real origin.
import { BrokerClient, sha256Base64, type Progress } from '../../src/client/index.js';

export interface SendResult {
  message_id: string;
  size: number;
  sha256: string;
  progress: Progress[];
}

function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  // getRandomValues fills at most 64 KiB per call.
  for (let at = 0; at < n; at += 65536) crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
  return out;
}

const api = {
  /** Alice: a Blob of random bytes, reserved, PUT straight to the bucket and committed. */
  async send(o: { baseUrl: string; token: string; convoId: string; recipient: string; size: number }): Promise<SendResult> {
    const data = randomBytes(o.size);
    const client = new BrokerClient({ baseUrl: o.baseUrl, token: o.token, retries: 1, baseDelayMs: 10 });
    const progress: Progress[] = [];
    const done = await client.upload(o.convoId, new Blob([data]), { recipients: [o.recipient], onProgress: (p) => progress.push(p) });
    return { message_id: done.message_id, size: done.size, sha256: await sha256Base64(data), progress };
  },

  /** Bob: his pending list, then the bytes of one message (verified by the library), then ack. */
  async receive(o: { baseUrl: string; token: string; messageId: string }): Promise<{ pending: string[]; size: number; sha256: string; verified: string }> {
    const client = new BrokerClient({ baseUrl: o.baseUrl, token: o.token, retries: 1, baseDelayMs: 10 });
    const page = await client.pending({ limit: 500 });
    const got = await client.fetchMessage(o.messageId);
    await client.ack(o.messageId);
    return { pending: page.messages.map((m) => m.message_id), size: got.data.length, sha256: await sha256Base64(got.data), verified: got.verified };
  },

  /** A bare PUT of `size` zero bytes to a presigned URL from this page: "status N" or the error's name. */
  async putDirect(o: { url: string; headers: Record<string, string>; size: number }): Promise<string> {
    const { 'content-length': _len, ...headers } = o.headers;
    try {
      const res = await fetch(o.url, { method: 'PUT', headers, body: new Uint8Array(o.size) });
      return `status ${res.status}`;
    } catch (err) {
      return (err as Error).name;
    }
  },
};

export type PageApi = typeof api;
(window as unknown as { broker: PageApi }).broker = api;
