// The child side of scripts/bench/child.ts: a server in a process of its own reports when it
// listens, answers {type:'stats'} with its CPU time, socket bytes and request count, and stops on
// {type:'stop'}. Shared by the broker and the baseline so both are measured the same way.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ChildStats {
  type: 'stats';
  bytesIn: number;
  bytesOut: number;
  requests: number;
  cpuUserUs: number;
  cpuSystemUs: number;
  maxRssKb: number;
}

export function serveOverIpc(server: Server, close: () => Promise<void>): void {
  let closedIn = 0;
  let closedOut = 0;
  let requests = 0;
  const live = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    live.add(s);
    s.once('close', () => {
      closedIn += s.bytesRead;
      closedOut += s.bytesWritten;
      live.delete(s);
    });
  });
  server.on('request', () => requests++);
  const addr = server.address();
  process.send!({ type: 'ready', port: typeof addr === 'object' && addr ? addr.port : 0 });
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stats') {
      let bytesIn = closedIn;
      let bytesOut = closedOut;
      for (const s of live) {
        bytesIn += s.bytesRead;
        bytesOut += s.bytesWritten;
      }
      const cpu = process.cpuUsage();
      const maxRssKb = process.resourceUsage().maxRSS;
      const stats: ChildStats = { type: 'stats', bytesIn, bytesOut, requests, cpuUserUs: cpu.user, cpuSystemUs: cpu.system, maxRssKb };
      process.send!(stats);
    } else if (m.type === 'stop') {
      server.closeAllConnections();
      server.close();
      void close().finally(() => process.exit(0));
    }
  });
}
