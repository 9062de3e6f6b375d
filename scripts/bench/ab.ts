// npm run bench:ab -- [--scenario reserve|ack] [--b-node-args "<flags>"] [--b-env '{"K":"V"}'] [--rounds N]
// Two brokers of this checkout side by side, A as configured and B with extra node flags or
// environment, taking turns over the same requests like the baseline and the broker do in
// `npm run bench`: what one change costs, measured in one run. For example, what AsyncLocalStorage
// costs (any use of it turns promise hooks on for the whole process):
//   npm run bench:ab -- --b-node-args "--import ./scripts/bench/fixtures/als-on.mjs"
// or what the verified-token cache saves:  npm run bench:ab -- --b-env '{"JWT_CACHE_SECONDS":"0"}'
// or a larger database pool:              npm run bench:ab -- --b-env '{"DATABASE_POOL_SIZE":"10"}'
import path from 'node:path';
import { parseArgs } from 'node:util';
import { quietAwsSdkNodeWarning } from '../../src/config.js';
import { createSql } from '../../src/db/sql.js';
import { harness, stopHarness, testEnv } from '../../tests/helpers/harness.js';
import { startBrokerChild } from './child.js';
import { cpuSampler, postmasterPid } from './machine-cpu.js';
import { runScenario } from './ratios.js';
import { ackScenario, BENCH_POOL_SIZE, CONVO, RECIPIENTS, reserveScenario, SENDERS, SOLO } from './scenarios.js';
import { growRecipientRows, seedMembers } from './seed.js';

quietAwsSdkNodeWarning();
const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'reserve' },
    'b-node-args': { type: 'string', default: '' },
    'b-env': { type: 'string', default: '{}' },
    rounds: { type: 'string', default: '4' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write('usage: npm run bench:ab -- [--scenario reserve|ack] [--b-node-args "<flags>"] [--b-env \'{"K":"V"}\'] [--rounds N]\n');
  process.exit(0);
}
if (values.scenario !== 'reserve' && values.scenario !== 'ack') throw new Error('--scenario is reserve or ack');
const nodeArgs = values['b-node-args'].split(' ').filter(Boolean).map((a) => (a.startsWith('./') ? path.resolve(a) : a));
const bEnv = JSON.parse(values['b-env']) as Record<string, string>;
const log = (s: string) => process.stdout.write(`${s}\n`);

const { root } = await harness();
// PostgreSQL's, the emulator's and the load generator's CPU per request beside each broker's own.
const shares = cpuSampler(postmasterPid(path.join(root, 'postgres')) ?? -1);
try {
  const env = await testEnv({ MAX_PENDING_UPLOADS: '100000', LOG_LEVEL: 'info', RECONCILE_CRON: 'off', DATABASE_POOL_SIZE: String(BENCH_POOL_SIZE) });
  const admin = createSql(env.DATABASE_URL!, { max: 2 });
  await seedMembers(admin, CONVO, [...SENDERS, ...RECIPIENTS, ...SOLO]);
  if (values.scenario === 'ack') await growRecipientRows(admin, 100_000, log);
  const a = await startBrokerChild(env);
  const b = await startBrokerChild({ ...env, ...bEnv }, { nodeArgs });
  try {
    const s =
      values.scenario === 'ack'
        ? await ackScenario({ connections: 50, seconds: 3, maxRequests: 5000 })
        : await reserveScenario({ connections: 50, seconds: 3, maxRequests: 1_000_000 }, admin);
    log(`${s.name}: A = this checkout, B = with ${nodeArgs.join(' ') || 'no extra flags'} ${values['b-env']}`);
    // runScenario's "baseline" is A and its "broker" B; both get the broker's requests.
    const r = await runScenario(
      { ...s, prepare: (_t, run) => s.prepare('broker', run) },
      { baseline: a, broker: b },
      { rounds: Number(values.rounds), warmupSeconds: 2, shares, log: (l) => log(l.replace("baseline's", "A's").replace('baseline', 'A').replace('broker', 'B').replace(' baseline,', ' A,').replace(' broker', ' B')) },
    );
    log(`B ÷ A throughput: ×${r.throughput.median.toFixed(2)} (${r.throughput.min.toFixed(2)}–${r.throughput.max.toFixed(2)})`);
  } finally {
    await a.stop();
    await b.stop();
    await admin.end();
  }
} finally {
  await stopHarness();
}
