// tests/run.ts itself: a failing before hook is reported with its error, a run that stops moving
// ends with the file it stopped in, and the shared PostgreSQL and R2 emulator are stopped however
// the run ends.
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('the test runner');

/** Live processes whose environment holds `marker` (the run's TMPDIR: inherited by every child). */
async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = await readFile(`/proc/${entry}/environ`, 'utf8');
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      if (env.split('\0').includes(marker) && !/\) Z /.test(stat)) found.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

test('a failing before hook is printed with its error, counted as failed, and the shared services are stopped', async () => {
  const tmp = await mkdtemp(path.join(tmpdir(), 'runner-'));
  await chmod(tmp, 0o1777); // as /tmp: the embedded PostgreSQL runs as its own user
  const marker = `TMPDIR=${tmp}`;
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', 'tests/run.ts', '--fixtures', 'failing-hooks'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', TMPDIR: tmp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    const left = await processesWith(marker);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    assert.is(code, 1, out);
    assert.match(out, /HOOK FAILED {2}before of suite "a suite whose before hook fails"/);
    assert.ok(/before hook failed on purpose \(fixture\)/.test(out), out);
    assert.match(out, /\n0 passed, 1 failed\n/);
    assert.equal(left, [], `the shared PostgreSQL and emulator outlived the run:\n${out}`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

test('a run in which no test finishes for TEST_STALL_SECONDS ends, naming its file, and stops the shared services', async () => {
  const tmp = await mkdtemp(path.join(tmpdir(), 'runner-'));
  await chmod(tmp, 0o1777);
  const marker = `TMPDIR=${tmp}`;
  try {
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', 'tests/run.ts', '--fixtures', 'stall'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', TMPDIR: tmp, TEST_STALL_SECONDS: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    clearTimeout(killer);
    const left = await processesWith(marker);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    assert.is(code, 1, out);
    assert.match(out, /test run aborted: no test has finished for 2 s, in stall\.fixture\.ts/);
    assert.ok(performance.now() - started < 45_000, `took ${((performance.now() - started) / 1000).toFixed(0)} s`);
    assert.equal(left, [], `the shared PostgreSQL and emulator outlived the run:\n${out}`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

test('TEST_STALL_SECONDS that is not a positive number is refused before anything starts', () => {
  for (const bad of ['abc', '0', '-5']) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'tests/run.ts', '--fixtures', 'stall'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', TEST_STALL_SECONDS: bad },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.is(r.status, 2, `${bad}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /TEST_STALL_SECONDS must be a positive number of seconds/);
  }
});

test.run();
