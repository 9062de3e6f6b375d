// The keys behind JWT_JWKS_URL. Fetching them is kept apart from verifying a token: a JWKS that
// answers 503, redirects, times out or serves something that is not a key set is an outage of
// ours (503 AuthUnavailable, the client keeps its token), never a bad token (401, which makes
// clients throw good tokens away). jose's createRemoteJWKSet reports such failures as generic
// jose errors, indistinguishable from a malformed token, and drops its keys when a refetch fails.
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import { createLocalJWKSet } from 'jose/jwks/local';

/** Fetching the key set failed; nothing is known about the token. */
export class JwksUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JwksUnavailable';
  }
}

export interface JwksOptions {
  /** One fetch, at most (default 3 s). */
  timeoutMs?: number;
  /** A key set older than this is fetched again (default 10 min). */
  refreshAfterMs?: number;
  /** At least this long between fetches caused by an unknown kid or a failing refetch (default 30 s). */
  cooldownMs?: number;
  /** While refetching fails, the last good set is used until it is this much past refreshAfterMs (default 1 h). */
  maxStaleMs?: number;
  /** Largest key set read (default 256 KiB). */
  maxBytes?: number;
  now?: () => number;
  /** A refetch failed and the last good set, `ageMs` old, is used meanwhile. */
  onStale?: (err: JwksUnavailable, ageMs: number) => void;
}

export function remoteKeySet(url: string, o: JwksOptions = {}): JWTVerifyGetKey {
  const timeoutMs = o.timeoutMs ?? 3000;
  const refreshAfterMs = o.refreshAfterMs ?? 10 * 60_000;
  const cooldownMs = o.cooldownMs ?? 30_000;
  const maxStaleMs = o.maxStaleMs ?? 60 * 60_000;
  const maxBytes = o.maxBytes ?? 256 * 1024;
  const now = o.now ?? Date.now;
  let good: { getKey: JWTVerifyGetKey; at: number } | null = null;
  let lastFetch = -Infinity;
  let inflight: Promise<void> | null = null;

  async function fetchSet(): Promise<void> {
    lastFetch = now();
    let text: string;
    try {
      // A redirect is not followed: the key set's address is configuration, not the network's say.
      const res = await fetch(url, { redirect: 'manual', headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new JwksUnavailable(`the JWKS answered ${res.status}`);
      }
      text = await res.text();
    } catch (err) {
      throw err instanceof JwksUnavailable ? err : new JwksUnavailable(`the JWKS could not be fetched: ${(err as Error).message}`, { cause: err });
    }
    if (text.length > maxBytes) throw new JwksUnavailable(`the JWKS is larger than ${maxBytes} bytes`);
    let set: JSONWebKeySet;
    try {
      set = JSON.parse(text) as JSONWebKeySet;
    } catch {
      throw new JwksUnavailable('the JWKS is not JSON');
    }
    try {
      good = { getKey: createLocalJWKSet(set), at: now() };
    } catch (err) {
      throw new JwksUnavailable('the JWKS is not a JSON Web Key Set', { cause: err });
    }
  }
  const refresh = () => (inflight ??= fetchSet().finally(() => (inflight = null)));

  return async function getKey(header, token) {
    if (good === null) {
      await refresh();
    } else if (now() - good.at > refreshAfterMs) {
      const age = now() - good.at;
      if (now() - lastFetch >= cooldownMs) {
        try {
          await refresh();
        } catch (err) {
          if (age > refreshAfterMs + maxStaleMs) throw err;
          o.onStale?.(err as JwksUnavailable, age);
        }
      } else if (age > refreshAfterMs + maxStaleMs) {
        throw new JwksUnavailable('the JWKS could not be refreshed and the last key set is too old');
      }
    }
    try {
      return await good!.getKey(header, token);
    } catch (err) {
      // An unknown kid may be a key rotated in since the last fetch: fetch once more, unless we
      // just did (so a stream of made-up kids cannot make us hammer the JWKS).
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || now() - lastFetch < cooldownMs) throw err;
      await refresh();
      return good!.getKey(header, token);
    }
  };
}
