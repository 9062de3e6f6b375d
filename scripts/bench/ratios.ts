// A scenario measured as ratios to the baseline in the same run: after a warm-up of both, the
// baseline and the broker take turns over several rounds with the same requests, and each round
// gives one ratio per figure (throughput, p50, p99). Ratios within a round share the machine's
// state at that moment, which is what makes them comparable on a busy machine.
import type { BrokerChild } from './child.js';
import { diff } from './child.js';
import { runLoad, type LoadResult, type Req } from './http-load.js';
import { cpuDiff, type CpuShares } from './machine-cpu.js';

export type Target = 'broker' | 'baseline';

export interface Scenario {
  name: string;
  connections: number;
  seconds: number;
  /** Requests per run at most (count-bounded scenarios: the items prepared for the run). */
  maxRequests: number;
  expect: number;
  /** The requests of one run; called before every run, so each may hand out fresh items. */
  prepare(target: Target, run: number): Promise<(i: number) => Req>;
}

export interface Run extends LoadResult {
  /** CPU of the serving process per request, ms. */
  cpuMsPerRequest: number;
  /** CPU per request of the rest of the machine's work for the run, ms (NaN without a sampler). */
  postgresMsPerRequest: number;
  emulatorMsPerRequest: number;
  loadGeneratorMsPerRequest: number;
}

export interface Stat {
  min: number;
  median: number;
  max: number;
}

export interface ScenarioResult {
  name: string;
  connections: number;
  rounds: { baseline: Run; broker: Run }[];
  throughput: Stat;
  p50: Stat;
  p99: Stat;
  /**
   * Latency at the same offered load: both sides sent `rate` requests a second on schedule (open
   * loop), `rate` being a share of the broker's median closed-loop throughput.
   */
  sameRate: { rate: number; baseline: Run; broker: Run };
}

/** The open-loop rate, as a share of the broker's closed-loop throughput: busy, not saturated. */
export const SAME_RATE_SHARE = 0.7;

export function stat(xs: number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0] ?? NaN, median: s[Math.floor(s.length / 2)] ?? NaN, max: s[s.length - 1] ?? NaN };
}

/** The baseline answers with the status the broker is expected to give, so both count alike. */
function forBaseline(make: (i: number) => Req, expect: number): (i: number) => Req {
  return (i) => {
    const r = make(i);
    return { ...r, headers: { ...r.headers, 'x-bench-status': String(expect) } };
  };
}

const NO_SHARES: CpuShares = { postgresMs: NaN, emulatorMs: NaN, loadGeneratorMs: NaN };

async function measure(
  s: Scenario,
  child: BrokerChild,
  target: Target,
  run: number,
  seconds: number,
  shares: () => CpuShares = () => NO_SHARES,
  rate?: number,
): Promise<Run> {
  const make = await s.prepare(target, run);
  const sharesBefore = shares();
  const before = await child.sample();
  const r = await runLoad({
    url: child.url,
    connections: s.connections,
    seconds,
    maxRequests: s.maxRequests,
    request: target === 'baseline' ? forBaseline(make, s.expect) : make,
    expect: s.expect,
    ...(rate === undefined ? {} : { rate }),
  });
  const used = diff(before, await child.sample());
  const others = cpuDiff(sharesBefore, shares());
  const per = (ms: number) => ms / Math.max(1, r.requests);
  return {
    ...r,
    cpuMsPerRequest: per(used.cpuUs / 1000),
    postgresMsPerRequest: per(others.postgresMs),
    emulatorMsPerRequest: per(others.emulatorMs),
    loadGeneratorMsPerRequest: per(others.loadGeneratorMs),
  };
}

export async function runScenario(
  s: Scenario,
  children: { broker: BrokerChild; baseline: BrokerChild },
  o: { rounds: number; warmupSeconds: number; log: (line: string) => void; shares?: () => CpuShares },
): Promise<ScenarioResult> {
  let run = 0;
  await measure(s, children.baseline, 'baseline', run++, o.warmupSeconds);
  const warm = await measure(s, children.broker, 'broker', run++, o.warmupSeconds);
  if (warm.errors > 0) o.log(`  warm-up: ${warm.errors} errors, first: ${warm.firstError}`);
  const rounds: { baseline: Run; broker: Run }[] = [];
  for (let i = 0; i < o.rounds; i++) {
    const baseline = await measure(s, children.baseline, 'baseline', run++, s.seconds, o.shares);
    const broker = await measure(s, children.broker, 'broker', run++, s.seconds, o.shares);
    rounds.push({ baseline, broker });
    o.log(
      `  round ${i + 1}: baseline ${baseline.perSecond.toFixed(0)}/s p99 ${baseline.p99ms.toFixed(1)} ms · broker ${broker.perSecond.toFixed(0)}/s ` +
        `p50 ${broker.p50ms.toFixed(1)} ms p99 ${broker.p99ms.toFixed(1)} ms · ×${(broker.perSecond / baseline.perSecond).toFixed(2)}` +
        ` · CPU/request ${(baseline.cpuMsPerRequest * 1000).toFixed(0)} µs baseline, ${(broker.cpuMsPerRequest * 1000).toFixed(0)} µs broker` +
        ` (with it: PostgreSQL ${(broker.postgresMsPerRequest * 1000).toFixed(0)} µs, emulator ${(broker.emulatorMsPerRequest * 1000).toFixed(0)} µs,` +
        ` load generator ${(broker.loadGeneratorMsPerRequest * 1000).toFixed(0)} µs; baseline's load generator ${(baseline.loadGeneratorMsPerRequest * 1000).toFixed(0)} µs)` +
        (broker.errors > 0 ? ` · ${broker.errors} errors, first: ${broker.firstError}` : ''),
    );
  }
  // In a closed loop each side's latency is mostly its own queue (connections ÷ throughput), so the
  // rounds' latency ratios restate the throughput ratio; at one offered rate they compare service.
  const rate = SAME_RATE_SHARE * stat(rounds.map((r) => r.broker.perSecond)).median;
  const sameRate = {
    rate,
    baseline: await measure(s, children.baseline, 'baseline', run++, s.seconds, o.shares, rate),
    broker: await measure(s, children.broker, 'broker', run++, s.seconds, o.shares, rate),
  };
  o.log(
    `  at ${rate.toFixed(0)}/s for both (open loop): baseline p50 ${sameRate.baseline.p50ms.toFixed(1)} p99 ${sameRate.baseline.p99ms.toFixed(1)} ms · ` +
      `broker p50 ${sameRate.broker.p50ms.toFixed(1)} p99 ${sameRate.broker.p99ms.toFixed(1)} ms · p99 ×${(sameRate.broker.p99ms / sameRate.baseline.p99ms).toFixed(2)}` +
      (sameRate.broker.errors > 0 ? ` · ${sameRate.broker.errors} errors, first: ${sameRate.broker.firstError}` : ''),
  );
  return {
    name: s.name,
    connections: s.connections,
    sameRate,
    rounds,
    throughput: stat(rounds.map((r) => r.broker.perSecond / r.baseline.perSecond)),
    p50: stat(rounds.map((r) => r.broker.p50ms / r.baseline.p50ms)),
    p99: stat(rounds.map((r) => r.broker.p99ms / r.baseline.p99ms)),
  };
}
