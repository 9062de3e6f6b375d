// The test runner: uvu's own runner over tests/**/*.test.ts, then the shared PostgreSQL and R2
// emulator are stopped (uvu has no global teardown) and the plain "N passed, N failed" line is
// printed for CI. `npm test -- <pattern>` runs only the files whose path matches.
// `--scale` runs tests/scale/*.scale.ts instead (npm run test:scale): they need Debian's pgbouncer and
// redis-server, which `npm test` never does.
import { writeSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { register } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { quietAwsSdkNodeWarning } from '../src/config.js';
import { stopHarness } from './helpers/harness.js';
import { hookFailures } from './helpers/hook-failures.js';

quietAwsSdkNodeWarning();
// Test files' `import { suite } from 'uvu'` gets a suite whose failing hooks are reported.
register('./helpers/uvu-hooks.mjs', import.meta.url);

// Whatever ends the run — the last suite, an error nobody caught, Ctrl-C — the shared PostgreSQL
// and R2 emulator are stopped first: they are separate processes and would outlive us.
let stopping: Promise<void> | undefined;
const stopShared = () => (stopping ??= stopHarness().catch((err) => void process.stderr.write(`stopping the shared services failed: ${String(err)}\n`)));
let aborted = false;
const abort = (why: string, err?: unknown) => {
  if (aborted) return;
  aborted = true;
  writeSync(2, `\ntest run aborted: ${why}${err === undefined ? '' : `\n${err instanceof Error ? (err.stack ?? err.message) : String(err)}`}\n`);
  void stopShared().then(() => process.exit(1));
  // Stopping may itself hang on whatever stalled the run: the run ends all the same.
  setTimeout(() => process.exit(1), 20_000).unref();
};
process.once('SIGINT', () => abort('SIGINT'));
process.once('SIGTERM', () => abort('SIGTERM'));
process.on('uncaughtException', (err) => abort('an uncaught exception', err));
process.on('unhandledRejection', (err) => abort('an unhandled rejection', err));
const args = process.argv.slice(2);
const scale = args[0] === '--scale';
// --fixtures: tests/fixtures/*.fixture.ts, suites that fail on purpose (tests/runner.test.ts runs them).
const fixtures = args[0] === '--fixtures';
if (scale || fixtures) args.shift();
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), scale ? 'scale' : fixtures ? 'fixtures' : '');
const suffix = scale ? '.scale.ts' : fixtures ? '.fixture.ts' : '.test.ts';
const pattern = args[0] ? new RegExp(args[0]) : null;
const files = (await readdir(dir, { recursive: true }))
  .filter((f) => f.endsWith(suffix) && !f.includes('node_modules'))
  .filter((f) => pattern === null || pattern.test(f))
  .sort();
if (files.length === 0) {
  process.stderr.write('no test files matched\n');
  process.exit(1);
}

let total = 0;
let passed = 0;
// A test that never finishes would hold CI until its time limit (the R2 emulator's workerd once
// spun at 100 % CPU without accepting connections): when uvu prints nothing — no finished test, no
// file begun — for TEST_STALL_SECONDS (default 300, far longer than any one test takes), the run
// ends as failed, naming the file it stopped in.
const stallSeconds = Number(process.env.TEST_STALL_SECONDS ?? 300);
if (!(stallSeconds > 0)) {
  process.stderr.write(`TEST_STALL_SECONDS must be a positive number of seconds, not ${JSON.stringify(process.env.TEST_STALL_SECONDS)}\n`);
  process.exit(2);
}
let lastOutput = performance.now();
let currentFile = '(none begun)';
setInterval(() => {
  if (performance.now() - lastOutput > stallSeconds * 1000) abort(`no test has finished for ${stallSeconds} s, in ${currentFile}`);
}, 1000).unref();
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
  // eslint-disable-next-line no-control-regex
  const plain = text.replace(/\u001b\[[0-9;]*m/g, '');
  lastOutput = performance.now();
  const file = /^(\S+\.(?:test|scale|fixture)\.ts)$/m.exec(plain);
  if (file) currentFile = file[1]!;
  const t = /Total:\s+(\d+)/.exec(plain);
  const p = /Passed:\s+(\d+)/.exec(plain);
  if (t) total = Number(t[1]);
  if (p) passed = Number(p[1]);
  return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stdout.write;

const { run } = await import('uvu/run');
const started = Date.now();
try {
  await run(files.map((f) => ({ name: f, file: path.join(dir, f) })), { bail: false });
} catch (err) {
  abort('the runner failed', err);
  await new Promise(() => {}); // abort exits once the shared services are stopped
}
await stopShared();
const code = process.exitCode ?? 0;
// A failing before hook already shows as its suite's tests not passing; a failing after hook does not.
const afterFailures = hookFailures.filter((h) => h.startsWith('after')).length;
process.stdout.write = write;
write(`tests took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
if (hookFailures.length > 0) write(`hooks that failed: ${hookFailures.join('; ')}\n`);
write(`${passed} passed, ${total - passed + afterFailures} failed\n`);
process.exit(code === 0 && total === passed && afterFailures === 0 && total > 0 ? 0 : 1);
