// Readiness: whether the database and the bucket both answer, each within a time limit.
import type { AppContext } from '../context.js';
import { ping } from '../db/sql.js';

const PROBE_TIMEOUT_MS = 2000;

/** null when the part answered, else why it did not (for the log, never for the client). */
export interface Readiness {
  database: string | null;
  storage: string | null;
}

async function probe(fn: () => Promise<unknown>, timeoutMs: number): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return null;
  } catch (err) {
    return (err as Error).message || String(err);
  } finally {
    clearTimeout(timer);
  }
}

export async function checkReadiness(app: AppContext): Promise<Readiness> {
  const [database, storage] = await Promise.all([
    probe(() => ping(app.sql), PROBE_TIMEOUT_MS),
    probe(() => app.store.ping(), PROBE_TIMEOUT_MS),
  ]);
  return { database, storage };
}
