// The embedded parts on their own, for the cold-start comparison: PostgreSQL (initialised on first
// use) and the R2 emulator, started exactly as `npm start` starts them; prints "ready" and waits
// for SIGTERM. Usage: node --import tsx scripts/bench/embedded-start.ts <dir>
import path from 'node:path';
import { startEmbeddedPostgres } from '../../src/dev/embedded-postgres.js';
import { startR2Emulator } from '../../src/dev/r2-emulator.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: embedded-start.ts <dir>');
// Side by side, as the broker starts them (src/dev/embedded.ts) and as two independent services are
// started anywhere: the broker is measured against the parts' own start, not against one after the other.
const [pg, r2] = await Promise.all([
  startEmbeddedPostgres(path.join(dir, 'postgres')),
  startR2Emulator({ persistDir: path.join(dir, 'r2'), buckets: ['catbird-messages'], accessKeyId: 'bench', secretAccessKey: 'bench-secret' }),
]);
process.stdout.write('ready\n');
const stop = async () => {
  await r2.stop();
  await pg.stop();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
