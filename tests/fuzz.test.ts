// The fuzz in `npm test` (tests/RELIABILITY.md, "Fuzzing"): requests generated from the routes' own
// schemas, a fresh seed each run, printed with the replay command when a case fails. `npm run fuzz`
// runs more.
import { randomInt } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BATCH, FUZZ_ENV, runFuzz } from './helpers/fuzz-run.js';
import { startTestApp, type TestApp } from './helpers/harness.js';

/** Enough to reach every route with valid and hostile input in well under a minute here. */
const CASES = 2000;

const test = suite('fuzz: requests generated from the route schemas');
let app: TestApp;

test.before(async () => {
  app = await startTestApp({ env: FUZZ_ENV });
});
test.after(() => app.close());

test(`${CASES} cases: no 5xx, every error a small JSON body with a known code, no refused request changes a row or an object`, async () => {
  const seed = randomInt(2 ** 31);
  const r = await runFuzz(app, { runs: CASES, seed });
  if (r.failure !== null) {
    const path = r.counterexamplePath === null ? '' : ` (only the failing batch: add --path ${r.counterexamplePath})`;
    assert.unreachable(`fuzz failed with seed ${seed}: ${r.failure}\n  replay: npm run fuzz -- --runs ${CASES} --seed ${seed}${path}`);
  }
  assert.is(r.stats.cases, Math.ceil(CASES / BATCH) * BATCH);
  // The generator reaches the handlers: some writes passed every check and succeeded.
  assert.ok(r.stats.written > 0, JSON.stringify(r.stats));
});

test.run();
