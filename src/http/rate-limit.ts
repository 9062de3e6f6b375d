// Per-DID request rate: a token bucket per caller, in this process's memory. Each broker instance
// limits on its own (N instances allow up to N times the rate); the pending-upload cap, which
// bounds what a DID can hold open, is exact across instances because it lives in PostgreSQL.
import type { Clock } from '../clock.js';
import { rateLimited } from '../errors.js';

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets kept at most; idle callers are forgotten first (their bucket would be full anyway). */
const MAX_TRACKED = 100_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly burst: number;

  /** `perMinute` requests a minute on average, bursts of up to `perMinute / 4` (at least 10). */
  constructor(private readonly clock: Clock, perMinute: number) {
    this.perMs = perMinute / 60_000;
    this.burst = Math.max(10, Math.ceil(perMinute / 4));
  }

  /** Takes one token for `key` or throws 429 RateLimited with the seconds until the next one. */
  take(key: string): void {
    const now = this.clock.now().getTime();
    const b = this.buckets.get(key);
    let tokens = this.burst;
    if (b !== undefined) {
      tokens = Math.min(this.burst, b.tokens + Math.max(0, now - b.at) * this.perMs);
      this.buckets.delete(key); // re-inserted below: Map order is least recently used first
    } else if (this.buckets.size >= MAX_TRACKED) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    if (tokens < 1) {
      this.buckets.set(key, { tokens, at: now });
      const wait = Math.max(1, Math.ceil((1 - tokens) / this.perMs / 1000));
      throw rateLimited('Too many requests; slow down.', wait);
    }
    this.buckets.set(key, { tokens: tokens - 1, at: now });
  }
}
