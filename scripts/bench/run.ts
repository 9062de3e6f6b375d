// npm run bench -- [--quick] [--profile] [--only <regex>] [--pool N]
// Every hot route against a baseline in the same run (scripts/bench/baseline.ts: bare Koa, the same
// jose verification and JSON body reader), as ratios; then reconciliation at scale, cold start, and
// what an upload and a presign cost the broker. Results: scripts/bench/RESULTS.md.
// --profile writes the broker's CPU profile (--cpu-prof) under scripts/bench/profiles/.
// --only <regex> runs only the ratio scenarios and sections ('reconcile', 'cold start', 'upload cost')
// whose name matches, and leaves RESULTS.md alone.
// --pool N: the broker's DATABASE_POOL_SIZE (default BENCH_POOL_SIZE, 4; see scenarios.ts).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { quietAwsSdkNodeWarning } from '../../src/config.js';
import { createSql } from '../../src/db/sql.js';
import { harness, stopHarness, testEnv } from '../../tests/helpers/harness.js';
import { startBrokerChild, type BrokerChild } from './child.js';
import { coldStart, type ColdStart } from './cold-start.js';
import { cpuSampler, postmasterPid } from './machine-cpu.js';
import { runScenario, type Scenario, type ScenarioResult } from './ratios.js';
import { reconcileAtScale, type ReconcileResult } from './reconcile-scale.js';
import { report } from './report.js';
import { ackScenario, BENCH_POOL_SIZE, commitScenario, CONVO, fetchScenario, pendingScenario, RECIPIENTS, reserveScenario, SENDERS, SOLO, soloScenario } from './scenarios.js';
import { explainPending, growRecipientRows, seedMembers } from './seed.js';
import { uploadCost } from './upload-cost.js';

quietAwsSdkNodeWarning();
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const profile = args.includes('--profile');
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? new RegExp(args[onlyAt + 1] ?? '.') : null;
const poolAt = args.indexOf('--pool');
const poolSize = poolAt >= 0 ? Number(args[poolAt + 1]) : BENCH_POOL_SIZE;
if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 1000) throw new Error(`--pool takes a whole number of connections from 1 to 1000, not ${args[poolAt + 1]}`);
const here = path.dirname(fileURLToPath(import.meta.url));
const log = (s: string) => process.stdout.write(`${s}\n`);

export const SETTINGS = {
  quick,
  connections: 50,
  poolSize,
  seconds: quick ? 2 : 5,
  warmupSeconds: quick ? 1 : 2,
  rounds: 3,
  smallRows: 100_000,
  // The goals' sizes: pending over 10 M recipient rows (bulk-loaded with SQL), reconciliation over
  // 100 k objects (loaded from inside the emulator, on tmpfs). The quick run keeps to 3 minutes.
  largeRows: quick ? 300_000 : 10_000_000,
  reconcileObjects: quick ? [1_000, 5_000] : [10_000, 100_000],
};
const wants = (name: string) => only === null || only.test(name);

async function ratios(): Promise<{ results: ScenarioResult[]; explain: string; seedSeconds: number }> {
  const env = await testEnv({ MAX_PENDING_UPLOADS: '100000', LOG_LEVEL: 'info', RECONCILE_CRON: 'off', DATABASE_POOL_SIZE: String(poolSize) });
  const admin = createSql(env.DATABASE_URL!, { max: 2 });
  await seedMembers(admin, CONVO, [...SENDERS, ...RECIPIENTS, ...SOLO]);
  const nodeArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(here, 'profiles')}`] : [];
  const broker = await startBrokerChild(env, { nodeArgs });
  const baseline = await startBrokerChild(env, { script: 'baseline.ts' });
  const children = { broker, baseline };
  // PostgreSQL's share is known only for the embedded cluster (not with TEST_DATABASE_URL).
  const shares = cpuSampler(postmasterPid(path.join((await harness()).root, 'postgres')) ?? -1);
  const results: ScenarioResult[] = [];
  const { connections, seconds } = SETTINGS;
  const timed = { connections, seconds, maxRequests: 1_000_000 };
  const run = async (s: Scenario) => {
    if (!wants(s.name)) return;
    log(`${s.name} (${s.connections} connections)`);
    results.push(await runScenario(s, children, { rounds: SETTINGS.rounds, warmupSeconds: SETTINGS.warmupSeconds, log, shares }));
  };
  let explain = '';
  let seedSeconds = 0;
  try {
    await run(await reserveScenario(timed, admin));
    await run(await soloScenario({ connections: 20, seconds, maxRequests: 1_000_000 }, admin));
    await run(await commitScenario({ connections, seconds, maxRequests: quick ? 400 : 1000 }, broker.url));
    if (!['pending', 'fetch', 'ack'].some(wants)) return { results, explain, seedSeconds };
    log(`seeding ${SETTINGS.smallRows.toLocaleString('en')} recipient rows`);
    await growRecipientRows(admin, SETTINGS.smallRows, log);
    await run(await pendingScenario(timed, `${SETTINGS.smallRows / 1000} k`));
    log(`seeding up to ${SETTINGS.largeRows.toLocaleString('en')} recipient rows`);
    const t = performance.now();
    await growRecipientRows(admin, SETTINGS.largeRows, log);
    seedSeconds = (performance.now() - t) / 1000;
    await run(await pendingScenario(timed, `${SETTINGS.largeRows / 1_000_000} M`));
    explain = await explainPending(admin);
    await run(await fetchScenario(timed));
    // Ten runs (two warm-ups, three rounds of two, one of each at the same rate) of distinct deliveries: 100 k.
    await run(await ackScenario({ connections, seconds, maxRequests: 10_000 }));
  } finally {
    await broker.stop();
    await baseline.stop();
    await admin.end();
  }
  return { results, explain, seedSeconds };
}

async function main(): Promise<void> {
  const started = performance.now();
  log(`bench${quick ? ' --quick' : ''}: starting PostgreSQL and the R2 emulator`);
  await harness();
  let reconcile: ReconcileResult[] = [];
  let cold: ColdStart | null = null;
  let uploads = '';
  const failures: string[] = [];
  try {
    const r = await ratios();
    // A section that fails is reported as such; the figures of the others are kept.
    const section = async <T>(name: string, fn: () => Promise<T>, fallback: T): Promise<T> => {
      if (!wants(name)) return fallback;
      try {
        return await fn();
      } catch (err) {
        log(`${name} failed: ${(err as Error).message}`);
        failures.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
        return fallback;
      }
    };
    reconcile = await section('reconcile', () => reconcileAtScale(SETTINGS.reconcileObjects, log), []);
    cold = await section('cold start', () => coldStart(log), null);
    uploads = await section('upload cost', () => uploadCost(quick, log), '');
    const total = (performance.now() - started) / 1000;
    if (only === null) {
      writeFileSync(path.join(here, 'RESULTS.md'), report({ settings: SETTINGS, ...r, reconcile, cold, uploads, failures, total }));
      log(`done in ${total.toFixed(0)} s; results in scripts/bench/RESULTS.md`);
    } else {
      log(`done in ${total.toFixed(0)} s (--only: RESULTS.md left as it was)`);
    }
  } finally {
    await stopHarness();
  }
}

await main();
