// Starts scripts/bench/broker.ts (or the baseline) as a child process and reads its counters.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildStats } from './ipc-server.js';
import { readStat } from './machine-cpu.js';

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
/** The process's own CPU from /proc (10 ms ticks): a cross-check of what it reports itself. */
const procCpuMs = (pid: number): number => readStat(pid)?.ownMs ?? Number.NaN;

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
