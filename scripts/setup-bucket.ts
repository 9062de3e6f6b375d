// npm run setup-bucket: apply the CORS and lifecycle rules of src/store/bucket-rules.ts.
import { resolveDevServices } from '../src/dev/embedded.js';
import { createLogger } from '../src/log.js';
import { corsRules, lifecycleRules } from '../src/store/bucket-rules.js';
import { BlobStore, StoreNotImplemented, StoreRejected } from '../src/store/store.js';
import { cliArgs, cliConfig, fail } from './cli.js';

cliArgs(
  `Usage: npm run setup-bucket

Applies to R2_BUCKET the CORS rules for CORS_ORIGINS (skipped when empty) and the lifecycle
backstops (objects under m/ expire after the retention; incomplete multipart uploads are aborted).
  -h, --help  this text`,
  {},
);
const config = cliConfig();
// Only the bucket is needed: a placeholder database URL keeps an embedded PostgreSQL from starting.
const dev = await resolveDevServices({ ...config, databaseUrl: config.databaseUrl ?? 'postgres://unused' }, createLogger('warn'), {
  share: false,
});
const store = new BlobStore({ ...config.store, endpoint: dev.storeEndpoint });
const where = `bucket ${config.store.bucket} at ${dev.storeEndpoint}`;

async function finish(code: number, message?: string): Promise<never> {
  store.close();
  await dev.stop();
  if (message !== undefined) fail(message, code);
  process.exit(code);
}

async function apply(what: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
    process.stdout.write(`${what}: applied\n`);
  } catch (err) {
    if (err instanceof StoreNotImplemented) {
      await finish(1, `${where} does not implement ${err.operation} (the local R2 emulator has no bucket configuration); ${what} not applied`);
    }
    const reason = err instanceof StoreRejected ? `${err.storeCode}: ${err.message}` : (err as Error).message;
    await finish(1, `cannot apply ${what} to ${where}: ${reason}`);
  }
}

const cors = corsRules(config);
if (cors.length === 0) {
  process.stdout.write('CORS: skipped, CORS_ORIGINS is empty (browsers cannot upload straight to the bucket)\n');
} else {
  await apply(`CORS for ${config.corsOrigins.join(', ')}`, () => store.putCors(cors));
}
const lifecycle = lifecycleRules(config);
await apply(
  `lifecycle (expire m/ after ${lifecycle[0]!.Expiration!.Days} days, abort incomplete multipart uploads after 1 day)`,
  () => store.putLifecycle(lifecycle),
);
await finish(0);
