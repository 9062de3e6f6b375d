// Shared start-up for the command-line scripts: config problems and unreachable dependencies end
// in one clear line and a non-zero exit, never a stack trace.
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

/** Reads `--name value` and `--flag` arguments; anything unknown is an error. */
export function parseArgs(argv: string[], spec: { flags: string[]; values: string[]; positionals?: number }) {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const [name, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
      if (spec.flags.includes(name) && inline === undefined) flags.add(name);
      else if (spec.values.includes(name)) {
        const v = inline ?? argv[++i];
        if (v === undefined) fail(`--${name} needs a value`, 2);
        values.set(name, v);
      } else fail(`unknown option ${a}`, 2);
    } else positionals.push(a);
  }
  if (positionals.length > (spec.positionals ?? 0)) fail(`unexpected argument ${positionals[spec.positionals ?? 0]}`, 2);
  return { flags, values, positionals };
}
