// The broker as a child process of the benchmark, so that its CPU time is its own: the load
// generator, PostgreSQL and the R2 emulator all run elsewhere.
import { once } from 'node:events';
import { createApp } from '../../src/app.js';
import { loadConfig, quietAwsSdkNodeWarning } from '../../src/config.js';
import { createContext } from '../../src/context.js';
import { createLogger } from '../../src/log.js';
import { serveOverIpc } from './ipc-server.js';

quietAwsSdkNodeWarning();
const config = loadConfig();
const app = await createContext(config, { log: createLogger(config.logLevel), migrate: false });
const server = createApp(app).listen(0, '127.0.0.1');
await once(server, 'listening');
serveOverIpc(server, () => app.close());
