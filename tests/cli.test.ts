// The command-line tools parse their arguments strictly (node:util parseArgs) and explain themselves.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('command-line arguments');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function run(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', path.join(root, 'scripts', `${script}.ts`), ...args], { cwd: root, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

for (const script of ['reconcile', 'migrate', 'setup-bucket', 'fuzz']) {
  test(`npm run ${script} -- --help prints its usage and exits 0`, async () => {
    const r = await run(script, ['--help']);
    assert.is(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith(`Usage: npm run ${script}`), r.stdout);
    assert.ok(r.stdout.includes('--help'));
  });

  test(`npm run ${script} refuses an unknown option with its usage, exit 2`, async () => {
    const r = await run(script, ['--no-such-option']);
    assert.is(r.code, 2);
    assert.ok(r.stderr.includes("'--no-such-option'"), r.stderr);
    assert.ok(r.stderr.includes(`Usage: npm run ${script}`), r.stderr);
  });
}

test('npm run reconcile refuses --now without a value and a stray argument', async () => {
  const missing = await run('reconcile', ['--now']);
  assert.is(missing.code, 2);
  assert.ok(missing.stderr.includes('--now'), missing.stderr);
  const stray = await run('reconcile', ['--dry-run', 'extra']);
  assert.is(stray.code, 2);
  assert.ok(stray.stderr.includes('extra'), stray.stderr);
  const flagWithValue = await run('reconcile', ['--dry-run=yes']);
  assert.is(flagWithValue.code, 2, 'a boolean option takes no value');
});

test.run();
