// uvu's `suite`, with hooks that say when they fail. uvu runs a suite's before hooks inside a
// try/finally that returns, so a failing `before` vanishes: its tests are simply not counted as
// passed, with no word of why. Test files import 'uvu' as usual; tests/run.ts points them here.
import { writeSync } from 'node:fs';
import { suite as uvuSuite, type Callback, type Test } from 'uvu';
import { hookFailures } from './hook-failures.js';

function report(kind: string, name: string, err: unknown): void {
  const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  hookFailures.push(`${kind} of "${name}"`);
  // Synchronously: the runner may exit soon after, and a piped stderr is written asynchronously.
  writeSync(2, `\n  HOOK FAILED  ${kind} of suite "${name}":\n    ${text.replace(/\n/g, '\n    ')}\n`);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function suite<T = Record<string, any>>(name = '', state?: T): Test<T> {
  const test = uvuSuite<T>(name, state);
  const before = test.before;
  const after = test.after;
  let broken = false;
  const wrappedBefore = (fn: Callback<T>) =>
    before(async (s) => {
      try {
        await fn(s);
      } catch (err) {
        broken = true;
        report('before', name, err);
        throw err; // uvu then skips the suite's tests
      }
    });
  // After a failed before, an after hook usually fails too (nothing to close): not worth a second
  // report, and a throw from it would abort the whole run, leaving the shared services running.
  const wrappedAfter = (fn: Callback<T>) =>
    after(async (s) => {
      try {
        await fn(s);
      } catch (err) {
        if (!broken) report('after', name, err);
      }
    });
  test.before = Object.assign(wrappedBefore, { each: before.each });
  test.after = Object.assign(wrappedAfter, { each: after.each });
  return test;
}

export { exec, test } from 'uvu';
