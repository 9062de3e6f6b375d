// Who used the machine's CPU during a run: PostgreSQL (its postmaster and every process under it),
// the R2 emulator (workerd, a child of this process) and the load generator (this process). Read
// from /proc in clock ticks (10 ms); a run's figure is the difference of two samples. A process
// that exits between samples takes its ticks along, except PostgreSQL's backends, whose ticks the
// postmaster collects when it reaps them (cutime/cstime), so they are counted all the same.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const TICKS_PER_SECOND = 100; // getconf CLK_TCK on Linux

export interface CpuShares {
  /** Milliseconds of CPU (user + system) since some origin; subtract two samples. */
  postgresMs: number;
  emulatorMs: number;
  loadGeneratorMs: number;
}

export interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime, and the reaped children's cutime + cstime, in ms. */
  ownMs: number;
  childrenMs: number;
}

/** One process's line of /proc/<pid>/stat, or null when it is gone. */
export function readStat(pid: number): ProcStat | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    // Fields after the command name start at field 3 (state); ppid is 4, utime..cstime 14..17.
    const f = stat.slice(close + 2).split(' ');
    const ms = (i: number) => (Number(f[i]) * 1000) / TICKS_PER_SECOND;
    return { pid, ppid: Number(f[1]), comm, ownMs: ms(11) + ms(12), childrenMs: ms(13) + ms(14) };
  } catch {
    return null; // gone between the listing and the read
  }
}

function allProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/** The postmaster's pid (the first line of postmaster.pid in the cluster's data directory), or null. */
export function postmasterPid(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** A sampler of CPU shares; `postmaster` is PostgreSQL's root process (-1: not on this machine). */
export function cpuSampler(postmaster: number): () => CpuShares {
  return () => {
    const procs = allProcesses();
    let postgresMs = 0;
    let emulatorMs = 0;
    for (const p of procs) {
      // The postmaster's reaped children are its backends; its own children's live ticks are theirs.
      if (p.pid === postmaster) postgresMs += p.ownMs + p.childrenMs;
      else if (p.ppid === postmaster) postgresMs += p.ownMs;
      else if (p.ppid === process.pid && p.comm.startsWith('workerd')) emulatorMs += p.ownMs;
    }
    const self = process.cpuUsage();
    return { postgresMs: postmaster === -1 ? NaN : postgresMs, emulatorMs, loadGeneratorMs: (self.user + self.system) / 1000 };
  };
}

export function cpuDiff(a: CpuShares, b: CpuShares): CpuShares {
  return {
    postgresMs: b.postgresMs - a.postgresMs,
    emulatorMs: b.emulatorMs - a.emulatorMs,
    loadGeneratorMs: b.loadGeneratorMs - a.loadGeneratorMs,
  };
}
