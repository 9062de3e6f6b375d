// Module hooks registered by tests/run.ts: a test file's `import { suite } from 'uvu'` gets
// tests/helpers/uvu-suite.ts, which reports failing before/after hooks (uvu itself swallows them:
// its runner returns from a `finally`). Plain JavaScript: hooks load before tsx could compile them.
const WRAPPER = new URL('./uvu-suite.ts', import.meta.url).href;
const TESTS = new URL('../', import.meta.url).href;

export async function resolve(specifier, context, next) {
  const parent = context.parentURL ?? '';
  if (specifier === 'uvu' && parent.startsWith(TESTS) && parent !== WRAPPER && !parent.includes('/node_modules/')) {
    return next(WRAPPER, context);
  }
  return next(specifier, context);
}
