// Starts scripts/bench/broker.ts (or the baseline) as a child process and reads its counters.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildStats } from './ipc-server.js';

export interface Sample {
  /** Broker CPU (user + system), µs, from process.cpuUsage() inside the broker. */
  cpuUs: number;
  /** The same from /proc/<pid>/stat (clock ticks, 10 ms resolution): a cross-check. */
  procCpuMs: number;
  bytesIn: number;
  bytesOut: number;
  requests: number;
  /** Peak resident set of the child so far, KiB. */
  maxRssKb: number;
}

export interface BrokerChild {
  url: string;
  pid: number;
  sample(): Promise<Sample>;
  stop(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const TICKS_PER_SECOND = 100; // getconf CLK_TCK on Linux

function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

export interface ChildOptions {
  /** broker.ts (default) or baseline.ts. */
  script?: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
}

export async function startBrokerChild(env: Record<string, string>, options: ChildOptions = {}): Promise<BrokerChild> {
  const args = [...(options.nodeArgs ?? []), '--import', 'tsx', path.join(here, options.script ?? 'broker.ts')];
  const child: ChildProcess = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [ready] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => Promise.reject(new Error(`the broker exited with ${code}`))),
  ])) as [{ type: string; port: number }];
  if (ready.type !== 'ready') throw new Error('unexpected first message from the broker');
  const pid = child.pid!;
  return {
    url: `http://127.0.0.1:${ready.port}`,
    pid,
    async sample() {
      const reply = once(child, 'message') as Promise<[ChildStats]>;
      child.send({ type: 'stats' });
      const [s] = await reply;
      return {
        cpuUs: s.cpuUserUs + s.cpuSystemUs,
        procCpuMs: procCpuMs(pid),
        bytesIn: s.bytesIn,
        bytesOut: s.bytesOut,
        requests: s.requests,
        maxRssKb: s.maxRssKb,
      };
    },
    async stop() {
      const exited = once(child, 'exit');
      child.send({ type: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function diff(a: Sample, b: Sample): Sample {
  return {
    cpuUs: b.cpuUs - a.cpuUs,
    procCpuMs: b.procCpuMs - a.procCpuMs,
    bytesIn: b.bytesIn - a.bytesIn,
    bytesOut: b.bytesOut - a.bytesOut,
    requests: b.requests - a.requests,
    maxRssKb: b.maxRssKb,
  };
}
