// The embedded parts on their own, for the cold-start comparison: PostgreSQL (initialised on first
// use) and the R2 emulator, started exactly as `npm start` starts them; prints "ready" and waits
// for SIGTERM. Usage: node --import tsx scripts/bench/embedded-start.ts <dir>
import path from 'node:path';
import { startEmbeddedPostgres } from '../../src/dev/embedded-postgres.js';
import { startR2Emulator } from '../../src/dev/r2-emulator.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: embedded-start.ts <dir>');
const pg = await startEmbeddedPostgres(path.join(dir, 'postgres'));
const r2 = await startR2Emulator({ persistDir: path.join(dir, 'r2'), buckets: ['catbird-messages'], accessKeyId: 'bench', secretAccessKey: 'bench-secret' });
process.stdout.write('ready\n');
const stop = async () => {
  await r2.stop();
  await pg.stop();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
