// scripts/bench/RESULTS.md from one run's figures. Hand-written notes (before/after, profiles,
// reading guide) live in scripts/bench/NOTES.md and are appended unchanged.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ColdStart } from './cold-start.js';
import { SAME_RATE_SHARE, type Run, type ScenarioResult, type Stat } from './ratios.js';
import type { ReconcileResult } from './reconcile-scale.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface Report {
  settings: { quick: boolean; connections: number; poolSize: number; seconds: number; warmupSeconds: number; rounds: number; smallRows: number; largeRows: number };
  results: ScenarioResult[];
  explain: string;
  seedSeconds: number;
  reconcile: ReconcileResult[];
  cold: ColdStart | null;
  uploads: string;
  failures: string[];
  total: number;
}

function machine(): string {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  const mem = Math.round(os.totalmem() / 1024 ** 3);
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' / ');
  return `nproc ${os.availableParallelism()} · ${model} · ${mem} GiB RAM · Node ${process.version} · ${os.type()} ${os.release()} · load average at the end ${load}`;
}

const x_ = (s: Stat) => `×${s.median.toFixed(2)} (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const us = (ms: number) => (Number.isNaN(ms) ? '–' : `${(ms * 1000).toFixed(0)} µs`);
/** Medians over the rounds of where one broker request's CPU went, machine-wide. */
const cpu = (b: Run[]) =>
  [b.map((q) => q.cpuMsPerRequest), b.map((q) => q.postgresMsPerRequest), b.map((q) => q.emulatorMsPerRequest), b.map((q) => q.loadGeneratorMsPerRequest)]
    .map((xs) => us(median(xs)))
    .join(' · ');

export function report(r: Report): string {
  const s = r.settings;
  const reserve = r.results.find((x) => x.name.startsWith('reserve `'));
  const solo = r.results.find((x) => x.name.startsWith('reserve, one sender'));
  const pend = r.results.filter((x) => x.name.startsWith('pending'));
  const lines = [
    '# Benchmark results',
    '',
    `Command: \`npm run bench${s.quick ? ' -- --quick' : ''}\` · run ${new Date().toISOString()} · took ${r.total.toFixed(0)} s`,
    '',
    `Machine: ${machine()}`,
    '',
    'How to read this file, what limits each figure, and the before/after history: the notes at the end.',
    '',
    '## Hot routes against the baseline (same run)',
    '',
    `${s.connections} keep-alive connections (the one-sender scenario: 20), closed loop, ${s.warmupSeconds} s warm-up of each side, then`,
    `${s.rounds} rounds in which the baseline and the broker each run ${s.seconds} s with the same requests. Each ratio is`,
    'broker ÷ baseline within one round; shown as median (min–max) over the rounds. Throughput: higher is',
    'better; latency ratios: lower is better. CPU per request, machine-wide (medians over the rounds): the broker',
    'process, PostgreSQL (postmaster and every process under it, background work included), the R2 emulator',
    '(workerd) and the load generator; for the baseline, its process + the load generator.',
    `The broker runs with \`DATABASE_POOL_SIZE=${s.poolSize}\` (\`--pool N\` changes it; why ${s.poolSize}: \`scripts/bench/scenarios.ts\`, BENCH_POOL_SIZE).`,
    '',
    '| scenario | throughput | p50 | p99 | broker req/s | broker p50 / p99 | baseline req/s | baseline p99 | CPU / req: broker · PostgreSQL · emulator · load generator | baseline CPU / req | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...r.results.map((x) => {
      const b = x.rounds.map((r) => r.broker);
      const base = x.rounds.map((r) => r.baseline);
      return (
        `| ${x.name} | ${x_(x.throughput)} | ${x_(x.p50)} | ${x_(x.p99)} | ${median(b.map((q) => q.perSecond)).toFixed(0)} | ` +
        `${median(b.map((q) => q.p50ms)).toFixed(1)} / ${median(b.map((q) => q.p99ms)).toFixed(1)} ms | ${median(base.map((q) => q.perSecond)).toFixed(0)} | ` +
        `${median(base.map((q) => q.p99ms)).toFixed(1)} ms | ${cpu(b)} | ${us(median(base.map((q) => q.cpuMsPerRequest)))} + ${us(median(base.map((q) => q.loadGeneratorMsPerRequest)))} | ${b.reduce((a, q) => a + q.errors, 0)} |`
      );
    }),
    '',
  ];
  if (r.results.length > 0) {
    lines.push(
      '### Latency at the same offered load',
      '',
      `In the closed loop above each side's latency is mostly its own queue (${s.connections} connections ÷ its throughput), so the`,
      `latency ratios restate the throughput ratio. Here both sides were sent the same ${(SAME_RATE_SHARE * 100).toFixed(0)} % of the broker's median`,
      `throughput, on schedule (open loop, ${s.seconds} s each, latency from the scheduled time), so the ratio compares service.`,
      '',
      '| scenario | rate | broker p50 / p99 | baseline p50 / p99 | p99 ratio | errors |',
      '|---|---:|---:|---:|---:|---:|',
      ...r.results.map(
        (x) =>
          `| ${x.name} | ${x.sameRate.rate.toFixed(0)}/s | ${x.sameRate.broker.p50ms.toFixed(1)} / ${x.sameRate.broker.p99ms.toFixed(1)} ms | ` +
          `${x.sameRate.baseline.p50ms.toFixed(1)} / ${x.sameRate.baseline.p99ms.toFixed(1)} ms | ×${(x.sameRate.broker.p99ms / x.sameRate.baseline.p99ms).toFixed(2)} | ${x.sameRate.broker.errors} |`,
      ),
      '',
    );
  }
  if (reserve && solo) {
    const per = (x: ScenarioResult) => median(x.rounds.map((q) => q.broker.perSecond));
    lines.push(`One sender against 200 senders (broker throughput, medians): ×${(per(solo) / per(reserve)).toFixed(2)} (goal ≥ 0.25).`, '');
  }
  if (pend.length === 2) {
    const p99 = (x: ScenarioResult) => median(x.rounds.map((q) => q.broker.p99ms));
    lines.push(
      `Pending page p99 at ${s.largeRows.toLocaleString('en')} recipient rows against ${s.smallRows.toLocaleString('en')}: ×${(p99(pend[1]!) / p99(pend[0]!)).toFixed(2)} (goal ≤ 1.5).`,
      `Loading the extra rows with SQL took ${r.seedSeconds.toFixed(0)} s. The plan of the first page at the larger size:`,
      '',
      '```',
      r.explain,
      '```',
      '',
    );
  }
  if (r.reconcile.length > 0) {
    lines.push(
      '## Reconciliation at scale',
      '',
      'Objects: 80 % committed messages, 10 % expired uploads (object and pending row past its deadline), 10 % strays',
      '(object, no row). In a child process, routine passes (rows only: the expired uploads and their objects) run until one',
      'reports complete, then audit passes (the bucket walk: the strays) until one completes; peak RSS is that process\'s.',
      '',
      '| objects | load (SQL + PUTs, untimed) | routine passes, s | audit passes, s | objects/s (routine + audit) | peak RSS | what it did |',
      '|---:|---:|---:|---:|---:|---:|---|',
      ...r.reconcile.map(
        (q) =>
          `| ${q.objects.toLocaleString('en')} | ${q.loadSeconds.toFixed(0)} s | ${q.passes}, ${q.seconds.toFixed(1)} | ${q.auditPasses}, ${q.auditSeconds.toFixed(1)} | ${q.objectsPerSecond.toFixed(0)} | ${q.maxRssMb.toFixed(0)} MiB | ${Object.entries(q.totals).map(([k, v]) => `${k} ${v}`).join(', ')} |`,
      ),
      '',
    );
    if (r.reconcile.length === 2) {
      const [a, b] = r.reconcile as [ReconcileResult, ReconcileResult];
      lines.push(`Peak RSS at ${b.objects.toLocaleString('en')} against ${a.objects.toLocaleString('en')}: ×${(b.maxRssMb / a.maxRssMb).toFixed(2)} (goal ≤ 1.2).`, '');
    }
  }
  if (r.cold) {
    const c = r.cold;
    lines.push(
      '## Cold start',
      '',
      '`npm start` with a fresh `DATA_DIR` (embedded PostgreSQL: initdb; R2 emulator; migrations) until `/readyz` answers 200,',
      'then a restart on the same `DATA_DIR`; against the embedded parts started on their own the same way',
      '(`scripts/bench/embedded-start.ts`, `node --import tsx`), alternating.',
      '',
      '| | npm start → /readyz 200 | embedded parts alone | ratio (goal ≤ 1.5) |',
      '|---|---:|---:|---:|',
      `| first start | ${c.brokerFirst.toFixed(2)} s | ${c.partsFirst.toFixed(2)} s | ×${(c.brokerFirst / c.partsFirst).toFixed(2)} |`,
      `| restart | ${c.brokerRestart.toFixed(2)} s | ${c.partsRestart.toFixed(2)} s | ×${(c.brokerRestart / c.partsRestart).toFixed(2)} |`,
      '',
      `\`npm start\` runs one bundle of \`src/\` (\`scripts/bundle.mjs\`), cached; both starts above found it current. The first start after a`,
      `change to \`src/\` builds it first: ${c.bundleSeconds.toFixed(2)} s more in this run.`,
      '',
    );
  }
  if (r.failures.length > 0) lines.push('## Sections that failed in this run', '', ...r.failures.map((f) => `- ${f}`), '');
  lines.push(r.uploads, '');
  const notes = path.join(here, 'NOTES.md');
  if (existsSync(notes)) lines.push(readFileSync(notes, 'utf8'));
  return lines.join('\n');
}
