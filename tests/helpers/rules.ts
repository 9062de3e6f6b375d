// The suites of the flow's rules: each runs on a broker of its own (with its own environment),
// where alice, bob and carol are the members of CONVO and mallory is a stranger.
import { suite } from 'uvu';
import { startTestApp, type TestApp } from './harness.js';
import { setMembers } from './flow.js';
import { did } from './tokens.js';

export const alice = did('alice');
export const bob = did('bob');
export const carol = did('carol');
export const mallory = did('mallory');
export const CONVO = 'convo-rules';

export function withApp(name: string, env: Record<string, string> = {}) {
  const s = suite<{ app: TestApp }>(name, {} as { app: TestApp });
  s.before(async (ctx) => {
    ctx.app = await startTestApp({ env });
    await setMembers(ctx.app, CONVO, [alice, bob, carol]);
  });
  s.after((ctx) => ctx.app.close());
  return s;
}
