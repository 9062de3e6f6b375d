// One reconciliation run in a process of its own, so its peak memory is its own: routine passes of
// the reconcile that src/jobs/reconcile.ts exports until one reports complete (rows only: expired
// uploads, retention, acknowledged), then audit passes until one completes (the bucket walk: strays).
// Configured like the broker (environment through loadConfig); --now <ms> is the clock reading.
// Prints one JSON line.
import { loadConfig, quietAwsSdkNodeWarning } from '../../src/config.js';
import { createContext } from '../../src/context.js';
import { reconcile } from '../../src/jobs/reconcile.js';
import { createLogger } from '../../src/log.js';

quietAwsSdkNodeWarning();
const now = new Date(Number(process.argv[process.argv.indexOf('--now') + 1]));
const config = loadConfig();
const app = await createContext(config, { log: createLogger('silent'), migrate: false, poolSize: 3 });
const totals: Record<string, number> = {};

/** Passes of one kind until one reports complete (at most 50). */
async function run(audit: boolean): Promise<{ passes: number; complete: boolean; seconds: number }> {
  const started = performance.now();
  let passes = 0;
  let complete = false;
  while (!complete && passes < 50) {
    const report = await reconcile(app, { now, audit });
    passes++;
    complete = report.complete;
    for (const [k, v] of Object.entries(report as unknown as Record<string, unknown>)) {
      const n = (v as { count?: number } | null)?.count;
      if (typeof n === 'number') totals[k] = (totals[k] ?? 0) + n;
    }
    totals.listed = (totals.listed ?? 0) + report.listed;
  }
  return { passes, complete, seconds: (performance.now() - started) / 1000 };
}

let routine;
let audit;
try {
  routine = await run(false);
  audit = await run(true);
} finally {
  await app.close();
}
process.stdout.write(`${JSON.stringify({ routine, audit, maxRssKb: process.resourceUsage().maxRSS, totals })}\n`);
