// The test runner: uvu's own runner over tests/**/*.test.ts, then the shared PostgreSQL and R2
// emulator are stopped (uvu has no global teardown) and the plain "N passed, N failed" line is
// printed for CI. `npm test -- <pattern>` runs only the files whose path matches.
// `--scale` runs tests/scale/*.scale.ts instead (npm run test:scale): they need Debian's pgbouncer and
// redis-server, which `npm test` never does.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { quietAwsSdkNodeWarning } from '../src/config.js';
import { stopHarness } from './helpers/harness.js';

quietAwsSdkNodeWarning();
const args = process.argv.slice(2);
const scale = args[0] === '--scale';
if (scale) args.shift();
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), scale ? 'scale' : '');
const suffix = scale ? '.scale.ts' : '.test.ts';
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
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
  // eslint-disable-next-line no-control-regex
  const plain = text.replace(/\u001b\[[0-9;]*m/g, '');
  const t = /Total:\s+(\d+)/.exec(plain);
  const p = /Passed:\s+(\d+)/.exec(plain);
  if (t) total = Number(t[1]);
  if (p) passed = Number(p[1]);
  return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stdout.write;

const { run } = await import('uvu/run');
const started = Date.now();
await run(files.map((f) => ({ name: f, file: path.join(dir, f) })), { bail: false });
const code = process.exitCode ?? 0;
await stopHarness();
process.stdout.write = write;
write(`tests took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
write(`${passed} passed, ${total - passed} failed\n`);
process.exit(code === 0 && total === passed && total > 0 ? 0 : 1);
