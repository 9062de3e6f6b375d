// `npm run fuzz -- --runs N [--seed S] [--path P]`: the fuzz of tests/fuzz.test.ts with more cases,
// or replaying a failing seed (tests/RELIABILITY.md, "Fuzzing"). The broker runs in this process
// on the test harness's PostgreSQL and R2 emulator, on 127.0.0.1 only. Exits 1 when a case fails,
// printing the failing request and how to replay it.
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { quietAwsSdkNodeWarning } from '../src/config.js';
import { BATCH, FUZZ_ENV, runFuzz, type FuzzStats } from '../tests/helpers/fuzz-run.js';
import { startTestApp, stopHarness } from '../tests/helpers/harness.js';

quietAwsSdkNodeWarning();
const USAGE = `Usage: npm run fuzz -- --runs N [--seed S] [--path P]
  --runs N   cases (requests) to run, 1..10000000; rounded up to batches of ${BATCH} (default 10000)
  --seed S   fast-check seed, an integer (default: a random one, printed)
  --path P   with --seed: replay only the batch at fast-check's counterexample path P
  --help     this text
`;

let values: { runs?: string; seed?: string; path?: string; help?: boolean };
try {
  ({ values } = parseArgs({
    options: { runs: { type: 'string', default: '10000' }, seed: { type: 'string' }, path: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const runs = Number(values.runs);
const seed = values.seed === undefined ? randomInt(2 ** 31) : Number(values.seed);
if (!Number.isInteger(runs) || runs < 1 || runs > 10_000_000 || !Number.isSafeInteger(seed) || (values.path !== undefined && values.seed === undefined)) {
  process.stderr.write(`--runs must be 1..10000000, --seed an integer, and --path needs --seed\n${USAGE}`);
  process.exit(2);
}

const replay = `npm run fuzz -- --runs ${runs} --seed ${seed}`;
process.stdout.write(`fuzz: ${runs} cases, seed ${seed} (replay: ${replay})\n`);
const app = await startTestApp({ env: FUZZ_ENV });
const started = Date.now();
let shown = 0;
const progress = (s: FuzzStats) => {
  if (s.cases - shown < 2000) return;
  shown = s.cases;
  const secs = (Date.now() - started) / 1000;
  process.stdout.write(`  ${s.cases} cases in ${secs.toFixed(0)} s (${(s.cases / secs).toFixed(1)}/s); alone ${s.alone}, written ${s.written}, rechecked ${s.rechecked}\n`);
};
let code = 1;
try {
  const r = await runFuzz(app, { runs, seed, path: values.path, onProgress: progress });
  const s = r.stats;
  process.stdout.write(
    `\n${s.cases} cases in ${r.seconds.toFixed(1)} s (${(s.cases / r.seconds).toFixed(1)} cases/s), seed ${seed}: ` +
      `${s.batches} batches, ${s.alone} writes sent alone (${s.written} succeeded), ${s.rechecked} batches rechecked\nanswers:\n` +
      Object.entries(s.answers)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, n]) => `  ${k.padEnd(28)} ${n}`)
        .join('\n') +
      '\n',
  );
  if (r.failure === null) {
    process.stdout.write('result: no failure\n');
    code = 0;
  } else {
    const path = r.counterexamplePath === null ? '' : `\n  only the failing batch: ${replay} --path ${r.counterexamplePath}`;
    process.stdout.write(`\nFAILED: ${r.failure}\n  replay: ${replay}${path}\n`);
  }
} finally {
  await app.close();
  await stopHarness();
}
process.exit(code);
