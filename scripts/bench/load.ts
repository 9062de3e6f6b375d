// Requests per second of reserve and of commit on loopback, bounded in count and in time. The load
// generator shares the machine with the broker (2 cores here): the numbers are a floor.
import { createHash, randomBytes } from 'node:crypto';

export interface PhaseResult {
  phase: string;
  requests: number;
  seconds: number;
  perSecond: number;
  p50ms: number;
  p99ms: number;
  errors: number;
}

/** Runs `count` calls with `concurrency` in flight; stops starting new ones after `maxSeconds`. */
export async function phase(name: string, count: number, concurrency: number, maxSeconds: number, call: (i: number) => Promise<boolean>): Promise<PhaseResult> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + maxSeconds * 1000;
  const worker = async () => {
    while (next < count && performance.now() < deadline) {
      const i = next++;
      const t = performance.now();
      const ok = await call(i).catch(() => false);
      latencies.push(performance.now() - t);
      if (!ok) errors++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return { phase: name, requests: latencies.length, seconds, perSecond: latencies.length / seconds, p50ms: pct(0.5), p99ms: pct(0.99), errors };
}

export interface Reserved {
  messageId: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
  token: string;
}

export async function reserveOne(base: string, token: string, convo: string): Promise<Reserved | null> {
  const body = randomBytes(64);
  const res = await fetch(`${base}/api/v1/uploads`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ convo_id: convo, size: body.length, md5: createHash('md5').update(body).digest('base64') }),
  });
  const r = (await res.json()) as { message_id: string; upload: { url: string; headers: Record<string, string> } };
  if (res.status !== 201) return null;
  return { messageId: r.message_id, url: r.upload.url, headers: r.upload.headers, body, token };
}

export async function putOne(r: Reserved): Promise<boolean> {
  const { 'content-length': _len, ...headers } = r.headers;
  const res = await fetch(r.url, { method: 'PUT', headers, body: r.body });
  await res.arrayBuffer();
  return res.status === 200;
}

export async function commitOne(base: string, r: Reserved, recipient: string): Promise<boolean> {
  const res = await fetch(`${base}/api/v1/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${r.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ message_id: r.messageId, recipients: [recipient] }),
  });
  await res.arrayBuffer();
  return res.status === 201;
}
