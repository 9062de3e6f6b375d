// npm start: the broker (src/main.ts) from one bundle of its sources (scripts/bundle.mjs), built on
// the first start after a change and cached; stack traces name the TypeScript files (source maps).
// `node --import tsx src/main.ts` starts the same broker from the sources themselves.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundledEntry } from './bundle.mjs';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
let entry;
try {
  entry = await bundledEntry(root, 'src/main.ts');
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  // esbuild's own report names the file and line of what does not build; anything else is the cache.
  process.stderr.write(
    err && typeof err === 'object' && Array.isArray(err.errors)
      ? `npm start: the broker's sources do not build:\n${message}\n`
      : `npm start: the bundle cannot be written under node_modules/.cache (${message});\n` +
          'start the broker from its sources instead: node --import tsx src/main.ts\n',
  );
  process.exit(1);
}
process.setSourceMapsEnabled(true);
await import(pathToFileURL(entry.file).href);
