// Fixtures of the reconcile suites: rows written directly, objects PUT through presigned URLs,
// and a suite whose database and bucket are emptied before each test.
import { randomUUID } from 'node:crypto';
import { suite, type Test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AppContext } from '../../src/context.js';
import { blobKeyFor } from '../../src/ids.js';
import { reconcile } from '../../src/jobs/reconcile.js';
import type { ReconcileReport } from '../../src/jobs/reconcile-report.js';
import { bytes, md5b64 } from './flow.js';
import { startTestApp, type TestApp } from './harness.js';

export const MIN = 60_000;
export const HOUR = 60 * MIN;
export const DAY = 24 * HOUR;
export const SENDER = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa';
export const RECIPIENT = 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb';

export interface UploadFixture {
  id: string;
  key: string;
  size: number;
}

export interface UploadOptions {
  object?: boolean;
  state?: string;
  cleaned?: boolean;
  size?: number;
  multipart?: string;
  windowMs?: number;
}

/** One suite's broker, its AppContext and the clock reading each test starts from. */
export class ReconcileFixtures {
  web!: TestApp;
  app!: AppContext;
  /** Date.now() when the test started. */
  T = 0;

  /** One routine pass at `now`. */
  pass(now: number, o: Parameters<typeof reconcile>[1] = {}): Promise<ReconcileReport> {
    return reconcile(this.app, { now: new Date(now), ...o });
  }

  /** One bucket audit at `now` (strays and missing objects). */
  audit(now: number, o: Parameters<typeof reconcile>[1] = {}): Promise<ReconcileReport> {
    return reconcile(this.app, { now: new Date(now), audit: true, ...o });
  }

  async putObject(key: string, size = 32): Promise<void> {
    const body = bytes(size);
    const p = await this.app.store.presignPut({ key, size, md5: md5b64(body), contentType: 'application/octet-stream', now: new Date(), expiresIn: 60 });
    const { 'content-length': _len, ...headers } = p.headers;
    const res = await fetch(p.url, { method: 'PUT', headers, body });
    await res.arrayBuffer();
    assert.is(res.status, 200);
  }

  async exists(key: string): Promise<boolean> {
    return (await this.app.store.head(key)) !== null;
  }

  /** A reservation made at `at`; `object` PUTs its bytes. */
  async upload(at: number, o: UploadOptions = {}): Promise<UploadFixture> {
    const id = randomUUID();
    const key = blobKeyFor(id, new Date(at));
    const size = o.size ?? 32;
    const deadline = new Date(at + (o.windowMs ?? this.app.config.commitWindowSeconds * 1000));
    await this.app.sql`
      insert into uploads (message_id, sender_did, convo_id, blob_key, size, md5, content_type, multipart_upload_id,
                           part_size, state, created_at, commit_deadline, updated_at, cleaned_at, urls_valid_until)
      values (${id}, ${SENDER}, 'c1', ${key}, ${size}, ${o.multipart ? null : 'AAAAAAAAAAAAAAAAAAAAAA=='},
              'application/octet-stream', ${o.multipart ?? null}, ${o.multipart ? 5 * 1024 * 1024 : null},
              ${o.state ?? 'pending'}, ${new Date(at)}, ${deadline}, ${new Date(at)}, ${o.cleaned ? new Date(at) : null},
              ${this.urlsUntil(at, deadline)})`;
    if (o.object) await this.putObject(key, size);
    return { id, key, size };
  }

  /** The first upload URL's expiry, as the broker would have issued it. */
  urlsUntil(at: number, deadline: Date): Date {
    return new Date(Math.min(deadline.getTime(), at + this.app.config.uploadUrlTtlSeconds * 1000));
  }

  /** A committed message (upload committed, message and recipient rows) created at `at`. */
  async message(at: number, o: { object?: boolean; ackedAt?: number; size?: number } = {}): Promise<UploadFixture> {
    const u = await this.upload(at, { object: o.object ?? true, state: 'committed', size: o.size });
    const acked = o.ackedAt === undefined ? null : new Date(o.ackedAt);
    await this.app.sql`
      insert into messages (id, convo_id, sender_did, blob_key, size, commit_digest, created_at, fully_acked_at)
      values (${u.id}, 'c1', ${SENDER}, ${u.key}, ${u.size}, 'd', ${new Date(at)}, ${acked})`;
    await this.app.sql`
      insert into message_recipients (message_id, recipient_did, delivered, delivered_at)
      values (${u.id}, ${RECIPIENT}, ${acked !== null}, ${acked})`;
    return u;
  }

  async uploadRow(id: string) {
    const [row] = await this.app.sql<{ state: string; cleaned_at: Date | null }[]>`select state, cleaned_at from uploads where message_id = ${id}`;
    return row ?? null;
  }

  async messageCount(id: string): Promise<number> {
    return (await this.app.sql<{ n: number }[]>`select count(*)::int as n from messages where id = ${id}`)[0]!.n;
  }

  async recipientCount(id: string): Promise<number> {
    return (await this.app.sql<{ n: number }[]>`select count(*)::int as n from message_recipients where message_id = ${id}`)[0]!.n;
  }
}

/** A suite on a broker of its own; before each test the tables and the bucket are emptied. */
export function reconcileSuite(name: string): [Test, ReconcileFixtures] {
  const test = suite(name);
  const fx = new ReconcileFixtures();
  test.before(async () => {
    fx.web = await startTestApp();
    fx.app = fx.web.ctx;
  });
  test.after(async () => {
    await fx.web?.close();
  });
  test.before.each(async () => {
    fx.T = Date.now();
    await fx.app.sql`truncate upload_parts, upload_quota_hours, uploads, messages, message_recipients, convo_members, audit_positions, job_leases`;
    for (;;) {
      const page = await fx.app.store.list({ prefix: '' });
      if (page.objects.length === 0) break;
      await fx.app.store.deleteMany(page.objects.map((o) => o.key));
    }
  });
  return [test, fx];
}

export function assertNothingDone(r: ReconcileReport): void {
  assert.equal(
    [r.expiredUploads.count, r.cleanedUploads.count, r.prunedUploads.count, r.retention.count, r.acked.count, r.strays.count, r.missing.count],
    [0, 0, 0, 0, 0, 0, 0],
    JSON.stringify(r),
  );
  assert.equal(r.errors, []);
  assert.ok(r.complete);
}
