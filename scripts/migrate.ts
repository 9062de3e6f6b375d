// npm run migrate: apply sql/ to DATABASE_URL (or the embedded development database).
import { createSql } from '../src/db/sql.js';
import { MigrationError, migrate } from '../src/db/migrate.js';
import { resolveDevServices } from '../src/dev/embedded.js';
import { createLogger } from '../src/log.js';
import { cliArgs, cliConfig, fail } from './cli.js';

cliArgs(
  `Usage: npm run migrate

Applies the pending migrations of sql/ to DATABASE_URL (or the embedded development database),
in one transaction under an advisory lock. The broker also applies them at start.
  -h, --help  this text`,
  {},
);
const config = cliConfig({ auth: false });
const log = createLogger('warn');
const dev = await resolveDevServices({ ...config, store: { ...config.store, endpoint: config.store.endpoint ?? 'http://unused' } }, log, {
  share: false,
});
const sql = createSql(config.databaseDirectUrl ?? dev.databaseUrl, {
  max: 1,
  applicationName: 'mls-blob-broker-migrate',
  prepare: config.databaseDirectUrl !== null || config.databasePrepare,
});
try {
  const { applied } = await migrate(sql);
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'the database is up to date\n');
} catch (err) {
  const message = err instanceof MigrationError ? err.message : `cannot migrate: ${(err as Error).message || (err as { code?: string }).code}`;
  await sql.end({ timeout: 1 }).catch(() => {});
  await dev.stop();
  fail(message);
}
await sql.end({ timeout: 2 });
await dev.stop();
