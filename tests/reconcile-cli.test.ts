// npm run reconcile as a child process: --dry-run, --json, --now, and its exit codes.
import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSql, type Sql } from '../src/db/sql.js';
import { blobKeyFor } from '../src/ids.js';
import type { ReconcileReport } from '../src/jobs/reconcile-report.js';
import { testEnv } from './helpers/harness.js';
import { runScript } from './helpers/processes.js';
import { HOUR, SENDER } from './helpers/reconcile.js';

const cli = suite('npm run reconcile');
let env: Record<string, string>;
let cliSql: Sql;

const runCli = (args: string[], extra: Record<string, string> = {}) => runScript('scripts/reconcile.ts', args, { ...env, ...extra });

cli.before(async () => {
  env = await testEnv();
  cliSql = createSql(env.DATABASE_URL!, { max: 1 });
});
cli.after(async () => {
  await cliSql?.end({ timeout: 1 });
});

cli('--dry-run --json reports an expired upload and changes nothing; without --dry-run it expires it', async () => {
  const id = randomUUID();
  const at = new Date(Date.now() - 3 * HOUR);
  await cliSql`
    insert into uploads (message_id, sender_did, convo_id, blob_key, size, md5, content_type, state, created_at, commit_deadline,
                         urls_valid_until)
    values (${id}, ${SENDER}, 'c1', ${blobKeyFor(id, at)}, 12, 'AAAAAAAAAAAAAAAAAAAAAA==', 'application/octet-stream', 'pending',
            ${at}, ${new Date(at.getTime() + HOUR)}, ${new Date(at.getTime() + 300_000)})`;
  const dry = await runCli(['--dry-run', '--json']);
  assert.is(dry.code, 0, dry.stderr);
  const report = JSON.parse(dry.stdout) as ReconcileReport;
  assert.ok(report.dryRun);
  assert.equal(report.expiredUploads, { count: 1, bytes: 12 });
  const state = async () => (await cliSql<{ state: string }[]>`select state from uploads where message_id = ${id}`)[0]?.state;
  assert.is(await state(), 'pending');

  const real = await runCli([]);
  assert.is(real.code, 0, real.stderr);
  assert.match(real.stdout, /expired uploads\s+1 marked expired/);
  assert.is(await state(), 'expired');
});

cli('--now pretends the clock reads that time; a bad value is refused in one line', async () => {
  const r = await runCli(['--json', '--dry-run', '--now', '2031-02-03T04:05:06Z']);
  assert.is(r.code, 0, r.stderr);
  assert.is((JSON.parse(r.stdout) as ReconcileReport).now, '2031-02-03T04:05:06.000Z');
  const bad = await runCli(['--now', 'tomorrow']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--now must be an RFC 3339 time/);
  const ahead = await runCli(['--now', '2031-02-03T04:05:06Z']);
  assert.is(ahead.code, 2, 'a pass from the future is refused unless it is a dry run');
  assert.match(ahead.stderr, /--dry-run/);
  const past = await runCli(['--json', '--now', '2020-01-01T00:00:00Z']);
  assert.is(past.code, 0, past.stderr);
});

cli('an unreachable database or bucket is one clear line and a non-zero exit, no stack trace', async () => {
  const db = await runCli([], { DATABASE_URL: 'postgres://nobody@127.0.0.1:9/none' });
  assert.is.not(db.code, 0);
  assert.match(db.stderr, /^cannot reach the database: /);
  assert.is(db.stderr.trim().split('\n').length, 1, db.stderr);
  const bucket = await runCli([], { R2_ENDPOINT: 'http://127.0.0.1:9' });
  assert.is.not(bucket.code, 0);
  assert.match(bucket.stderr, /^cannot reach the bucket /);
  assert.is(bucket.stderr.trim().split('\n').length, 1, bucket.stderr);
  assert.not.match(db.stderr + bucket.stderr, /\n\s+at /);
});

cli('--audit on a terminal shows listing progress on stderr; piped, it does not', async () => {
  // `script` (util-linux) gives the child a pseudo-terminal, as an operator's shell would.
  const { spawn } = await import('node:child_process');
  const child = spawn('script', ['-q', '-e', '-c', `${process.execPath} --import tsx scripts/reconcile.ts --audit --dry-run`, '/dev/null'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise((r) => child.once('exit', r));
  assert.is(code, 0, out);
  assert.match(out, /listing m\/\d{4}\/\d{2}\/\d{2}\/ … \d+ objects/);
  assert.match(out, /reconcile audit dry run at/);
  const piped = await runCli(['--audit', '--dry-run']);
  assert.is(piped.code, 0);
  assert.not.match(piped.stderr + piped.stdout, /listing m\//);
});

cli.run();
