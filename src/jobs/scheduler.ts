// Runs reconcile on RECONCILE_CRON. Every broker instance may schedule it: the lease inside
// the pass lets one run and the others skip, and noOverlap keeps one instance from stacking passes.
import cron, { type ScheduledTask } from 'node-cron';
import type { AppContext } from '../context.js';
import { reconcile } from './reconcile.js';

export interface Scheduler {
  /** Stops scheduling, asks a running pass to stop between batches, and waits for it. */
  stop(): Promise<void>;
}

export function startScheduler(app: AppContext): Scheduler {
  const stopping = new AbortController();
  const running = new Set<Promise<void>>();
  const tasks: ScheduledTask[] = [];

  const schedule = (name: 'reconcile' | 'audit', expression: string | null) => {
    if (expression === null) return;
    if (!cron.validate(expression)) throw new Error(`the ${name} schedule "${expression}" is not a valid cron expression`);
    const run = (): Promise<void> => {
      const pass: Promise<void> = reconcile(app, { signal: stopping.signal, audit: name === 'audit' })
        .then(() => {}) // the pass logs its own report line
        .catch((err) => app.log.error({ err }, `${name} pass failed`))
        .finally(() => running.delete(pass));
      running.add(pass);
      return pass;
    };
    tasks.push(
      cron.schedule(expression, run, {
        name,
        noOverlap: true,
        // node-cron's own messages (a missed or overlapping tick) go through our logger.
        logger: {
          info: (m) => app.log.debug({ cron: m }),
          warn: (m) => app.log.warn({ cron: m }),
          error: (m, err) => app.log.error({ err: err ?? m }, 'scheduler error'),
          debug: (m) => app.log.trace({ cron: String(m) }),
        },
      }),
    );
    app.log.info({ cron: expression }, name === 'audit' ? 'bucket audit scheduled' : 'reconciliation scheduled');
  };
  // Routine passes from the rows; the bucket audit, which lists, on its own (daily) schedule. Both
  // take the same lease: one pass of either kind at a time across every instance.
  schedule('reconcile', app.config.reconcileCron);
  schedule('audit', app.config.reconcileAuditCron);

  return {
    async stop() {
      stopping.abort();
      for (const t of tasks) await t.destroy();
      await Promise.all([...running]);
    },
  };
}
