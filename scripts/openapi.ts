// npm run openapi -- [--out <file>]: the OpenAPI 3.1 document /openapi.json serves, for this
// configuration (limits such as MAX_RECIPIENTS are part of the schemas), written to a file.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { openApiDocument } from '../src/app.js';
import { cliArgs, cliConfig } from './cli.js';

const args = cliArgs(
  `Usage: npm run openapi -- [--out <file>]

Writes the OpenAPI 3.1 document that /openapi.json serves, for the current configuration.
  --out <file>  where to write it (default dist/openapi.json); - for stdout
  -h, --help    this text`,
  { out: { type: 'string' } },
);
const config = cliConfig({ auth: false });
const text = `${JSON.stringify(openApiDocument(config), null, 2)}\n`;
const out = args.value('out') ?? 'dist/openapi.json';
if (out === '-') {
  process.stdout.write(text);
} else {
  await mkdir(path.dirname(path.resolve(out)), { recursive: true });
  await writeFile(out, text);
  process.stdout.write(`wrote ${out}\n`);
}
