// Run by `npm install`/`npm ci` (postinstall). postgres.js 3.4.9 crashes the whole process when a
// connection closes while a small write is queued for the next tick (porsager/postgres#1208,
// unfixed upstream): nextWrite() calls socket.write on a null socket from a setImmediate, so
// nothing can catch it. It happens whenever a transaction's backend dies (pg_terminate_backend, a
// failover, a pooler closing the connection): tests/faults.test.ts kills one mid-commit. The
// guard settles the connection's queries with CONNECTION_CLOSED (the broker answers 503) instead.
// Plain JavaScript so that it runs in a production install, where tsx is absent.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', 'postgres');
const MARK = '/* mls-blob-broker: guard, porsager/postgres#1208 */';
const ORIGINAL = `  function nextWrite(fn) {
    const x = socket.write(chunk, fn)`;
const PATCHED = `  function nextWrite(fn) {
    ${MARK}
    if (!socket) {
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options))
      return false
    }
    const x = socket.write(chunk, fn)`;

let problems = 0;
for (const file of ['src/connection.js', 'cjs/src/connection.js']) {
  const p = path.join(root, file);
  if (!existsSync(p)) continue; // postgres not installed (yet): nothing to patch
  const text = readFileSync(p, 'utf8');
  if (text.includes(MARK)) continue;
  if (!text.includes(ORIGINAL)) {
    process.stderr.write(`patch-postgres: ${file} does not have the expected nextWrite; check whether the new version still needs the guard\n`);
    problems++;
    continue;
  }
  writeFileSync(p, text.replace(ORIGINAL, PATCHED));
}
process.exit(problems === 0 ? 0 : 1);
