// The repository's layout (README, Layout): what stands at the top level, and the layers of src/
// (HTTP sits on top of the context, the services and the clients, never below them, so a CLI or a
// job builds the context without Koa's layer).
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('layout');
const root = fileURLToPath(new URL('../', import.meta.url));
const src = path.join(root, 'src');
/** The top level as the README's Layout lists it, plus what tools keep there. */
const TOP_LEVEL = ['.ci', '.env.example', '.gitignore', 'README.md', 'package-lock.json', 'package.json', 'scripts', 'sql', 'src', 'tests', 'tsconfig.json'];

test('the top level holds only what the README lists: configuration for one folder lives in it', () => {
  const tracked = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' });
  const top = [...new Set(tracked.split('\n').filter(Boolean).map((f) => f.split('/')[0]!))].sort();
  assert.equal(top, TOP_LEVEL);
});
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
