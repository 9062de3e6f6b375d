// The embedded parts on their own, for the cold-start comparison: PostgreSQL (initialised on first
// use) and the R2 emulator, started exactly as `npm start` starts them; prints "ready" and waits
// for SIGTERM. Usage: node --import tsx scripts/bench/embedded-start.ts <dir>
import path from 'node:path';
import { startEmbeddedPostgres } from '../../src/dev/embedded-postgres.js';
import { startR2EmulatorThread } from '../../src/dev/r2-emulator-thread.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: embedded-start.ts <dir>');
// Side by side, as the broker starts them (src/dev/embedded.ts) and as two independent services are
// started anywhere: the broker is measured against the parts' own start, not against one after the other.
// The emulator from its thread, as the broker starts it: the thread also loads miniflare without the
// TypeScript loader, which makes the parts' start shorter too (scripts/bench/NOTES.md, "Round 5").
const [pg, r2] = await Promise.all([
  startEmbeddedPostgres(path.join(dir, 'postgres')),
  startR2EmulatorThread({ persistDir: path.join(dir, 'r2'), buckets: ['catbird-messages'], accessKeyId: 'bench', secretAccessKey: 'bench-secret' }),
]);
process.stdout.write('ready\n');
const stop = async () => {
  await r2.stop();
  await pg.stop();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
