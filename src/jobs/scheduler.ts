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
  const expression = app.config.reconcileCron;
  if (expression === null) return { stop: async () => {} };
  if (!cron.validate(expression)) throw new Error(`RECONCILE_CRON "${expression}" is not a valid cron expression`);
  const stopping = new AbortController();
  let running: Promise<void> | null = null;

  const run = (): Promise<void> => {
    running = reconcile(app, { signal: stopping.signal })
      .then(() => {}) // the pass logs its own report line
      .catch((err) => app.log.error({ err }, 'reconcile pass failed'))
      .finally(() => {
        running = null;
      });
    return running;
  };
  const task: ScheduledTask = cron.schedule(expression, run, {
    name: 'reconcile',
    noOverlap: true,
    // node-cron's own messages (a missed or overlapping tick) go through our logger.
    logger: {
      info: (m) => app.log.debug({ cron: m }),
      warn: (m) => app.log.warn({ cron: m }),
      error: (m, err) => app.log.error({ err: err ?? m }, 'scheduler error'),
      debug: (m) => app.log.trace({ cron: String(m) }),
    },
  });
  app.log.info({ cron: expression }, 'reconciliation scheduled');

  return {
    async stop() {
      stopping.abort();
      await task.destroy();
      if (running) await running;
    },
  };
}
