// Stage 1 of reading the configuration (src/config.ts holds the stages): typed readers over an
// environment object. A malformed value is recorded as a problem and its default is used instead,
// so every problem of a deployment is reported in one round. Reads only the object it is given.

export type Env = Record<string, string | undefined>;

/** Stage 1, read: one typed value per variable; a malformed value is a problem and its default is used. */
export function envReader(env: Env, problems: string[]) {
  const raw = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const str = (name: string, fallback: string): string => raw(name) ?? fallback;
  const opt = (name: string): string | null => raw(name) ?? null;
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const v = raw(name);
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v)) {
      problems.push(`${name} must be a whole number, got "${v}"`);
      return fallback;
    }
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      problems.push(`${name} must be between ${min} and ${max}, got ${v}`);
      return fallback;
    }
    return n;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const v = raw(name)?.toLowerCase();
    if (v === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    problems.push(`${name} must be true or false, got "${raw(name)}"`);
    return fallback;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const v = raw(name);
    if (v === undefined) return fallback;
    if ((allowed as readonly string[]).includes(v)) return v as T;
    problems.push(`${name} must be one of ${allowed.join(', ')}, got "${v}"`);
    return fallback;
  };
  const list = (name: string): string[] =>
    (raw(name) ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const url = (name: string): string | null => {
    const v = opt(name);
    if (v === null) return null;
    try {
      const u = new URL(v);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('protocol');
      return v.replace(/\/+$/, '');
    } catch {
      problems.push(`${name} must be an http(s) URL, got "${v}"`);
      return null;
    }
  };
  /** A problem found after reading (a rule on one or more values). */
  const problem = (text: string): void => {
    problems.push(text);
  };
  return { raw, str, opt, int, bool, oneOf, list, url, problem };
}

export type EnvReader = ReturnType<typeof envReader>;
