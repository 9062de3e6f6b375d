// The layers of src/ (README, Layout): HTTP sits on top of the context, the services and the
// clients, never below them, so the context can be built (by a CLI, a job) without Koa's layer.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('layers');
const src = fileURLToPath(new URL('../src/', import.meta.url));
/** What may import src/http: the HTTP layer itself, the Koa app that mounts it and the entry point. */
const ABOVE_HTTP = (file: string): boolean => file.startsWith('http/') || file === 'app.ts' || file === 'main.ts';

test('nothing in src/ below the HTTP layer imports from src/http', async () => {
  const files = (await readdir(src, { recursive: true })).map((f) => f.split(path.sep).join('/')).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length > 20);
  const offenders: string[] = [];
  for (const file of files.filter((f) => !ABOVE_HTTP(f))) {
    const text = await readFile(path.join(src, file), 'utf8');
    for (const m of text.matchAll(/^import[^;]*?from\s+'(\.[^']+)'/gms)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]!));
      if (target.startsWith('http/')) offenders.push(`${file} imports ${m[1]}`);
    }
  }
  assert.equal(offenders, []);
});

test.run();
