// Steps of the message flow as a client performs them, for the suites.
import { createHash, randomBytes } from 'node:crypto';
import * as assert from 'uvu/assert';
import type { TestApp } from './harness.js';
import { storePut } from './store-put.js';
import { TEST_SERVICE } from './harness.js';

export const md5b64 = (b: Uint8Array) => createHash('md5').update(b).digest('base64');
export const sha256b64 = (b: Uint8Array) => createHash('sha256').update(b).digest('base64');
export const bytes = (n: number) => randomBytes(n);

export async function setMembers(app: TestApp, convoId: string, members: string[]): Promise<void> {
  const r = await app.call('PUT', `/api/v1/convos/${convoId}/members`, { as: TEST_SERVICE, body: { members } });
  assert.is(r.status, 200, r.text);
}

export interface Reserved {
  message_id: string;
  blob_key: string;
  commit_deadline: string;
  expires_at: string;
  upload: { method: 'PUT'; url: string; headers: Record<string, string> };
}

export async function reserve(app: TestApp, as: string, convoId: string, body: Uint8Array, extra: Record<string, unknown> = {}): Promise<Reserved> {
  const r = await app.call('POST', '/api/v1/uploads', {
    as,
    body: { convo_id: convoId, size: body.length, md5: md5b64(body), sha256: sha256b64(body), ...extra },
  });
  assert.is(r.status, 201, r.text);
  return r.body as Reserved;
}

/** PUTs with exactly the returned headers; fetch computes content-length from the body itself. */
export async function putBytes(upload: { url: string; headers: Record<string, string> }, body: Uint8Array, options: { refusal?: boolean } = {}): Promise<number> {
  const { 'content-length': _len, ...headers } = upload.headers;
  return (await storePut(upload.url, headers, body, options)).status;
}

export async function commit(app: TestApp, as: string, body: Record<string, unknown>) {
  return app.call('POST', '/api/v1/messages', { as, body });
}

/** Reserve, PUT and commit in one go; returns the message id. */
export async function send(app: TestApp, as: string, convoId: string, recipients?: string[], size = 64): Promise<string> {
  const data = bytes(size);
  const r = await reserve(app, as, convoId, data);
  assert.is(await putBytes(r.upload, data), 200);
  const c = await commit(app, as, recipients ? { message_id: r.message_id, recipients } : { message_id: r.message_id });
  assert.is(c.status, 201, c.text);
  return r.message_id;
}

/** An answer's text without its request id, the one part two answers never share. */
export const withoutRequestId = (text: string): string => text.replace(/,"request_id":"[^"]*"/, '');

export { TEST_SERVICE };
