// Shared start-up for the command-line scripts: config problems and unreachable dependencies end
// in one clear line and a non-zero exit, never a stack trace.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, loadDotEnv, quietAwsSdkNodeWarning, type Config } from '../src/config.js';

export function cliConfig(options: { auth?: boolean } = {}): Readonly<Config> {
  loadDotEnv();
  quietAwsSdkNodeWarning();
  try {
    return loadConfig(undefined, undefined, options);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    throw err;
  }
}

export function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

export type ArgSpec = Record<string, { type: 'boolean' | 'string'; short?: string }>;

/**
 * node:util parseArgs, strict: an unknown option, a missing value or an unexpected positional is
 * an error (exit 2, with the usage); `--help` / `-h` prints the usage and exits 0.
 */
export function cliArgs(usage: string, options: ArgSpec, positionals = 0, argv = process.argv.slice(2)) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: positionals > 0 });
  } catch (err) {
    fail(`${(err as Error).message}\n\n${usage.trimEnd()}`, 2);
  }
  if (parsed.values.help === true) {
    process.stdout.write(`${usage.trimEnd()}\n`);
    process.exit(0);
  }
  if (parsed.positionals.length > positionals) fail(`unexpected argument ${parsed.positionals[positionals]}\n\n${usage.trimEnd()}`, 2);
  const values = parsed.values as Record<string, string | boolean | undefined>;
  return {
    flag: (name: string) => values[name] === true,
    value: (name: string) => (typeof values[name] === 'string' ? (values[name] as string) : undefined),
    positionals: parsed.positionals,
  };
}
