// npm run reconcile -- [--audit] [--dry-run] [--json] [--now <RFC 3339>]: one pass and its report
// (--audit: the incremental bucket walk for strays and missing objects instead of the routine pass). With the
// embedded defaults it joins a running `npm start`'s database and bucket (DATA_DIR/embedded.json).
import { createContext, type AppContext } from '../src/context.js';
import { isConnectionError, ping } from '../src/db/sql.js';
import { reconcile } from '../src/jobs/reconcile.js';
import { formatReport, type Progress } from '../src/jobs/reconcile-report.js';
import { createLogger } from '../src/log.js';
import { StoreRejected, StoreUnavailable } from '../src/store/store.js';
import { cliArgs, cliConfig, fail } from './cli.js';

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

const USAGE = `Usage: npm run reconcile -- [--audit] [--dry-run] [--json] [--now <RFC 3339 time>]

One reconciliation pass, and its report: the routine pass (from the rows; never lists the bucket)
or, with --audit, the incremental bucket walk (strays and missing objects).
  --audit     the bucket audit, continuing from its stored position
  --dry-run   report what the pass would do; change nothing
  --json      print the report as JSON
  --now <t>   pretend the clock reads t (e.g. 2026-03-01T00:00:00Z); a future time needs --dry-run
  -h, --help  this text

With the development defaults it joins a running npm start's database and bucket.
Exit 0 after a pass (also when another pass holds the lease), non-zero with one line otherwise.`;
const args = cliArgs(USAGE, { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, audit: { type: 'boolean' }, now: { type: 'string' } });
const flags = { has: (name: 'dry-run' | 'json' | 'audit') => args.flag(name) };
let now: Date | undefined;
const nowArg = args.value('now');
if (nowArg !== undefined) {
  now = new Date(nowArg);
  if (!RFC3339.test(nowArg) || Number.isNaN(now.getTime())) fail(`--now must be an RFC 3339 time such as 2026-01-31T12:00:00Z, got "${nowArg}"`, 2);
  // A pass from the future would expire uploads inside their window and delete messages inside
  // retention: only a dry run may look ahead. A past --now is always more conservative.
  if (now.getTime() > Date.now() + 60_000 && !flags.has('dry-run')) {
    fail('--now in the future would delete what is still live; add --dry-run to see what such a pass would do', 2);
  }
}
const config = cliConfig();
// The report is this command's output; the pass's own log line would only repeat it.
const log = createLogger('silent');

let app: AppContext | undefined;
const stop = async (code: number, message?: string): Promise<never> => {
  await app?.close().catch(() => {});
  if (message !== undefined) fail(message, code);
  process.exit(code);
};

try {
  // An embedded development database is migrated like the server would; a real one never is
  // from here (npm run migrate does that on purpose).
  app = await createContext(config, { log, share: false, poolSize: 3, migrate: config.databaseUrl === null });
} catch (err) {
  await stop(1, `cannot start: ${oneLine(err)}`);
}
try {
  await ping(app!.sql);
} catch (err) {
  await stop(1, `cannot reach the database: ${oneLine(err)}`);
}
try {
  await app!.store.ping();
} catch (err) {
  await stop(1, `cannot reach the bucket ${config.store.bucket}: ${oneLine(err)}`);
}

const tty = process.stderr.isTTY === true;
const onProgress = tty
  ? (p: Progress) => process.stderr.write(`\r\x1b[Klisting ${p.prefix ?? ''} … ${p.listed} objects`)
  : undefined;
try {
  const report = await reconcile(app!, { now, dryRun: flags.has('dry-run'), audit: flags.has('audit'), onProgress });
  if (tty) process.stderr.write('\r\x1b[K');
  process.stdout.write(flags.has('json') ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
  if (report.errors.length > 0) {
    await stop(1, `reconcile finished with ${report.errors.length} error(s); first: ${report.errors[0]!.category}: ${report.errors[0]!.message}`);
  }
} catch (err) {
  if (tty) process.stderr.write('\r\x1b[K');
  const what = isConnectionError(err) ? 'the database went away' : err instanceof StoreUnavailable || err instanceof StoreRejected ? 'the bucket failed' : 'failed';
  await stop(1, `reconcile ${what}: ${oneLine(err)}`);
}
await stop(0);

function oneLine(err: unknown): string {
  const e = err as { message?: string; code?: string };
  return (e?.message || e?.code || String(err)).split('\n')[0]!;
}
