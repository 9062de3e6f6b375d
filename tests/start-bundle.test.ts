// `npm start` runs the broker from one esbuild bundle of src/ (scripts/bundle.mjs, scripts/start.mjs):
// the real script starts, serves the /dev/ page and stops; and the bundle, on a project of its own,
// keeps each module's import.meta.url, maps stack traces to the TypeScript, is rebuilt when a source
// changes (and only then), and a source that does not build fails the start with its file and line.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { descendants, isAlive, spawnUntil } from './helpers/processes.js';

const test = suite('npm start from a bundle of the sources');
const root = fileURLToPath(new URL('../', import.meta.url));
const bundle = pathToFileURL(path.join(root, 'scripts', 'bundle.mjs')).href;

test('package.json\'s start script is scripts/start.mjs, without a TypeScript loader', () => {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.is(pkg.scripts.start, 'node scripts/start.mjs');
});

test('npm start: ready, the /dev/ page and its script served, SIGTERM stops it and everything under it', async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'broker-npm-start-'));
  try {
    const { child, found: url, exited, lines } = await spawnUntil('npm', ['start', '--silent'], {
      cwd: root,
      env: { DATA_DIR: dataDir, PORT: '0', RECONCILE_CRON: 'off' },
      ready: (line) => /listening on (http:\/\/[0-9.]+:\d+)/.exec(line)?.[1],
      detached: true,
      timeoutMs: 120_000,
    });
    try {
      assert.is((await fetch(`${url}/readyz`)).status, 200);
      const page = await fetch(`${url}/dev/`);
      assert.is(page.status, 200);
      const script = await fetch(`${url}/dev/page.js`);
      assert.is(script.status, 200, 'the page script is built from src/dev/page, found from its module\'s own URL');
      assert.ok((await script.text()).length > 1000);
    } finally {
      const tree = descendants(child.pid!);
      process.kill(-child.pid!, 'SIGTERM');
      const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('no exit in 10 s'), 10_000))]);
      // npm itself ends by the signal at once; the broker under it goes on stopping PostgreSQL and the
      // emulator (within its 5 s), then says so.
      for (const deadline = Date.now() + 10_000; tree.some(isAlive) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      assert.is.not(code, 'no exit in 10 s');
      assert.equal(tree.filter(isAlive), [], 'no broker, postgres or workerd process is left behind');
      assert.ok(lines.some((l) => l.includes('"msg":"stopped"')), lines.slice(-5).join('\n'));
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

/** A project of its own: src/main.ts and src/lib/where.ts, this checkout's node_modules and tsconfig. */
async function project(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bundle-project-'));
  await mkdir(path.join(dir, 'src', 'lib'), { recursive: true });
  await symlink(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  await writeFile(path.join(dir, 'tsconfig.json'), readFileSync(path.join(root, 'tsconfig.json')));
  await writeFile(path.join(dir, 'src', 'main.ts'), "export { where, boom } from './lib/where.js';\n");
  await writeFile(path.join(dir, 'src', 'lib', 'where.ts'), WHERE);
  return dir;
}
const WHERE = `export const where: string = import.meta.url;
export function boom(): never {
  throw new Error('boom');
}
`;

/** Runs the bundle of `dir` in a process of its own (as start.mjs does) and prints what it found. */
function runBundle(dir: string, cacheDir: string): { file: string; built: boolean; where: string; stack: string } {
  const script = `
    import { bundledEntry } from ${JSON.stringify(bundle)};
    import { pathToFileURL } from 'node:url';
    const entry = await bundledEntry(${JSON.stringify(dir)}, 'src/main.ts', ${JSON.stringify(cacheDir)});
    process.setSourceMapsEnabled(true);
    const m = await import(pathToFileURL(entry.file).href);
    let stack = '';
    try { m.boom(); } catch (err) { stack = err.stack; }
    process.stdout.write(JSON.stringify({ ...entry, where: m.where, stack }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as { file: string; built: boolean; where: string; stack: string };
}

/** The message `fn` throws with ('' when it does not throw). */
function failure(fn: () => unknown): string {
  try {
    fn();
    return '';
  } catch (e) {
    return (e as Error).message;
  }
}

test('a module in the bundle keeps its own import.meta.url, and its stack trace names the .ts file and line', async () => {
  const dir = await project();
  try {
    const r = runBundle(dir, path.join(dir, 'cache'));
    assert.is(r.where, pathToFileURL(path.join(dir, 'src', 'lib', 'where.ts')).href);
    assert.ok(r.stack.includes(`${path.join(dir, 'src', 'lib', 'where.ts')}:3:`), r.stack);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('built once, then reused; a changed source builds a new bundle; one that does not build fails with its file and line', async () => {
  const dir = await project();
  const cache = path.join(dir, 'cache');
  try {
    const first = runBundle(dir, cache);
    assert.ok(first.built);
    const again = runBundle(dir, cache);
    assert.equal([again.file, again.built], [first.file, false]);
    await writeFile(path.join(dir, 'src', 'lib', 'where.ts'), WHERE.replace("'boom'", "'boom, changed'"));
    const changed = runBundle(dir, cache);
    assert.ok(changed.built && changed.file !== first.file, 'a new bundle for the changed source');
    assert.ok(changed.stack.includes('boom, changed'));
    assert.ok(existsSync(first.file), 'the other version\'s bundle stays a while: a start of it may be loading it');
    await writeFile(path.join(dir, 'src', 'lib', 'where.ts'), 'export const where: string = ;\n');
    assert.match(failure(() => runBundle(dir, cache)), /src\/lib\/where\.ts:1:/);
    // A cache that cannot be written is not a build error: it says so, with the path.
    await writeFile(path.join(dir, 'src', 'lib', 'where.ts'), WHERE);
    await writeFile(path.join(dir, 'not-a-dir'), '');
    assert.match(failure(() => runBundle(dir, path.join(dir, 'not-a-dir'))), /(EEXIST|ENOTDIR).*not-a-dir/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
