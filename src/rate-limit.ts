// Per-DID request rate. Without REDIS_URL each broker instance limits on its own, with a token
// bucket in its memory: N instances behind a load balancer allow up to N times the rate. With
// REDIS_URL (Redis or Valkey) the count lives there and holds across instances (rate-limiter-
// flexible); while Redis cannot be reached, its in-memory insurance limiter takes over per
// instance — counted in /metrics and logged once per outage — so requests are never refused for
// Redis being down. The pending-upload cap, which bounds what a DID can hold open, is exact across
// instances either way because it lives in PostgreSQL.
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Clock } from './clock.js';
import { rateLimited } from './errors.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';

export interface RequestLimiter {
  /** Takes one request for `key` or throws 429 RateLimited with the seconds until the next one. */
  take(key: string): Promise<void>;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets kept at most; idle callers are forgotten first (their bucket would be full anyway). */
const MAX_TRACKED = 100_000;

/** Bursts of a quarter of the minute's rate, at least 10. */
export const burstOf = (perMinute: number): number => Math.max(10, Math.ceil(perMinute / 4));

/** A token bucket per key in this process's memory: one instance's view. */
export class RateLimiter implements RequestLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly burst: number;

  /** `perMinute` requests a minute on average, bursts of up to `perMinute / 4` (at least 10). */
  constructor(
    private readonly clock: Clock,
    perMinute: number,
  ) {
    this.perMs = perMinute / 60_000;
    this.burst = burstOf(perMinute);
  }

  async take(key: string): Promise<void> {
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

/**
 * The limit shared through Redis: windows of 15 s holding a quarter of the minute's rate (the same
 * average and burst as the token bucket, counted atomically in Redis). Each window's count is one
 * INCR with an expiry: O(1) per request, one key per active DID.
 */
export function sharedLimiter(redis: Redis, perMinute: number, log: Logger, metrics: Metrics): RequestLimiter {
  const points = burstOf(perMinute);
  const duration = Math.max(1, Math.round((points / perMinute) * 60));
  // Judges requests while Redis is unreachable; every request it judges is counted.
  class Insurance extends RateLimiterMemory {
    override consume(key: string | number, pointsToConsume?: number, options?: object) {
      metrics.rateLimitInsurance.inc();
      return super.consume(key, pointsToConsume, options);
    }
  }
  const limiter = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: 'broker:rl',
    points,
    duration,
    // Without this, commands wait in the client's queue while Redis is down instead of failing
    // over to the insurance limiter.
    rejectIfRedisNotReady: true,
    insuranceLimiter: new Insurance({ points, duration }),
  });
  let down = false;
  redis.on('error', (err) => {
    if (down) return;
    down = true;
    log.warn({ err }, 'Redis unreachable: request rate limits are per instance until it is back');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    log.info('Redis reachable again: request rate limits are shared across instances');
  });
  return {
    async take(key) {
      try {
        await limiter.consume(key);
      } catch (res) {
        if (res instanceof RateLimiterRes) {
          throw rateLimited('Too many requests; slow down.', Math.max(1, Math.ceil(res.msBeforeNext / 1000)));
        }
        throw res;
      }
    },
  };
}
