// The broker as a child process of the benchmark, so that its CPU time is its own: the uploading
// client, PostgreSQL and the R2 emulator all run elsewhere. It counts the bytes on its HTTP
// sockets and answers {type:'stats'} over IPC.
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { createApp } from '../../src/app.js';
import { loadConfig, quietAwsSdkNodeWarning } from '../../src/config.js';
import { createContext } from '../../src/context.js';
import { createLogger } from '../../src/log.js';

export interface BrokerStats {
  type: 'stats';
  bytesIn: number;
  bytesOut: number;
  requests: number;
  cpuUserUs: number;
  cpuSystemUs: number;
}

quietAwsSdkNodeWarning();
const config = loadConfig();
const app = await createContext(config, { log: createLogger(config.logLevel), migrate: false, poolSize: 10 });
const server = createApp(app).listen(0, '127.0.0.1');
await once(server, 'listening');

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
    const stats: BrokerStats = { type: 'stats', bytesIn, bytesOut, requests, cpuUserUs: cpu.user, cpuSystemUs: cpu.system };
    process.send!(stats);
  } else if (m.type === 'stop') {
    server.closeAllConnections();
    server.close();
    void app.close().finally(() => process.exit(0));
  }
});
