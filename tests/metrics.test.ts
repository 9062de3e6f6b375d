// /metrics after a flow: every family an operator needs has a non-zero sample.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { reconcile } from '../src/jobs/reconcile.js';
import { bytes, commit, md5b64, putBytes, reserve, setMembers } from './helpers/flow.js';
import { startTestApp, type TestApp } from './helpers/harness.js';
import { did } from './helpers/tokens.js';

const test = suite('metrics');
let app: TestApp;
let started = 0;
const alice = did('alice');
const bob = did('bob');
const MIB = 1024 * 1024;

test.before(async () => {
  app = await startTestApp({ defaultMetrics: true, env: { MULTIPART_THRESHOLD_BYTES: String(5 * MIB), PART_SIZE_BYTES: String(5 * MIB) } });
  started = performance.now();
});
test.after(() => app.close());

/** Samples by family: `name{labels} value` lines, keyed by the sample's metric name. */
function samples(text: string): Map<string, { labels: string; value: number }[]> {
  const out = new Map<string, { labels: string; value: number }[]>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m) continue;
    const list = out.get(m[1]!) ?? [];
    list.push({ labels: m[2] ?? '', value: Number(m[3]) });
    out.set(m[1]!, list);
  }
  return out;
}

test('after a flow, /metrics has a non-zero sample in every family', async () => {
  await setMembers(app, 'metrics-convo', [alice, bob]);
  // Commit before the PUT (HeadObject answers NotFound), then the PUT, the commit and a replay.
  const data = bytes(200);
  const r = await reserve(app, alice, 'metrics-convo', data);
  assert.is((await commit(app, alice, { message_id: r.message_id })).status, 409);
  assert.is(await putBytes(r.upload, data), 200);
  assert.is((await commit(app, alice, { message_id: r.message_id })).status, 201);
  assert.is((await commit(app, alice, { message_id: r.message_id })).status, 200);
  assert.is((await app.call('GET', `/api/v1/messages/${r.message_id}`, { as: bob })).status, 200);
  // A multipart reservation: part URLs, CreateMultipartUpload.
  const big = await app.call('POST', '/api/v1/uploads', { as: alice, body: { convo_id: 'metrics-convo', size: 6 * MIB, sha256: `${'A'.repeat(43)}=` } });
  assert.is(big.status, 201, big.text);
  assert.is(big.body.upload.method, 'MULTIPART');
  // An upload left to expire, for a reconciliation pass with something to do.
  await reserve(app, alice, 'metrics-convo', bytes(10));
  const report = await reconcile(app.ctx, { now: new Date(app.clock.now().getTime() + 3 * 3600_000) });
  assert.ok(report.expiredUploads.count >= 1);

  // The event-loop delay histogram (prom-client, 100 ms resolution) records its first delay on its
  // second tick: a flow done within 200 ms of the start (CI's was) would leave its max at 0.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, 250 - (performance.now() - started))));
  const res = await app.call('GET', '/metrics');
  assert.is(res.status, 200);
  const s = samples(res.text);
  const nonZero = (name: string, labels: RegExp = /.*/) => {
    const found = (s.get(name) ?? []).filter((x) => labels.test(x.labels) && x.value > 0);
    assert.ok(found.length > 0, `${name} ${labels} has a non-zero sample`);
  };
  nonZero('broker_http_requests_total', /method="POST",route="\/api\/v1\/messages",status="201"/);
  nonZero('broker_http_request_duration_seconds_count', /method="GET",route="\/api\/v1\/messages\/:message_id",status="200"/);
  nonZero('broker_presigned_urls_total', /kind="put"/);
  nonZero('broker_presigned_urls_total', /kind="part"/);
  nonZero('broker_presigned_urls_total', /kind="get"/);
  nonZero('broker_uploads_reserved_total', /kind="multipart"/);
  nonZero('broker_commits_total', /outcome="committed"/);
  nonZero('broker_commits_total', /outcome="replayed"/);
  nonZero('broker_commits_total', /outcome="UploadIncomplete"/);
  nonZero('broker_messages_committed_total');
  nonZero('broker_token_verifications_total', /outcome="verified"/);
  nonZero('broker_token_verifications_total', /outcome="cached"/);
  nonZero('broker_store_calls_total', /operation="HeadObject"/);
  nonZero('broker_store_calls_total', /operation="CreateMultipartUpload"/);
  nonZero('broker_store_errors_total', /operation="HeadObject",code="NotFound"/);
  nonZero('broker_store_request_duration_seconds_count', /operation="HeadObject"/);
  nonZero('broker_db_pool_max_connections');
  nonZero('broker_db_pool_idle_connections');
  assert.ok(s.has('broker_db_pool_active_connections') && s.has('broker_db_pool_waiting_connections'));
  nonZero('broker_reconcile_runs_total', /outcome="ok"/);
  nonZero('broker_reconcile_items_total', /category="expired_uploads"/);
  nonZero('broker_reconcile_last_outcome', /outcome="ok"/);
  nonZero('broker_reconcile_last_duration_seconds');
  nonZero('broker_reconcile_last_success_timestamp_seconds');
  nonZero('process_cpu_seconds_total');
  nonZero('process_resident_memory_bytes');
  nonZero('nodejs_eventloop_lag_max_seconds');
  assert.ok(s.has('nodejs_eventloop_lag_seconds'));
  nonZero('nodejs_heap_size_used_bytes');
  // Labels are route patterns, never paths with ids in them.
  assert.not.ok(res.text.includes(r.message_id));
});

test('the pool gauges count only this broker\'s connections', async () => {
  const other = await startTestApp();
  try {
    // Another broker on the same database opens all 8 of its connections: none of them may count here.
    await Promise.all(Array.from({ length: 8 }, () => other.ctx.sql`select pg_sleep(0.05)`));
    const text = (await app.call('GET', '/metrics')).text;
    const open = ['active', 'idle', 'idle_in_transaction'].reduce(
      (n, state) => n + (samples(text).get(`broker_db_pool_${state}_connections`)?.[0]?.value ?? 0),
      0,
    );
    assert.ok(open >= 1 && open <= 8, `open connections ${open}`);
  } finally {
    await other.close();
  }
});

test('DATABASE_POOL_SIZE bounds this broker\'s connections, and the gauge says so', async () => {
  const small = await startTestApp({ env: { DATABASE_POOL_SIZE: '3' } });
  try {
    // Seven statements at once on a pool of three: three connections, the others wait their turn.
    await Promise.all(Array.from({ length: 7 }, () => small.ctx.sql`select pg_sleep(0.05)`));
    const s = samples((await small.call('GET', '/metrics')).text);
    assert.is(s.get('broker_db_pool_max_connections')?.[0]?.value, 3);
    const open = ['active', 'idle', 'idle_in_transaction'].reduce((n, state) => n + (s.get(`broker_db_pool_${state}_connections`)?.[0]?.value ?? 0), 0);
    assert.is(open, 3, `open connections ${open}`);
  } finally {
    await small.close();
  }
});

test.run();
