// An error nobody catches (issue 11, item 9): a real broker process logs it with the requests in
// flight, lets them finish (the normal drain), and exits non-zero — never a silent hang.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startBroker, type BrokerProcess } from './helpers/broker-process.js';
import { testEnv } from './helpers/harness.js';

const test = suite('crashes: uncaught errors end the process after the drain');

/** src/main.ts with a fixture preloaded, on the harness's database and bucket. */
const startWith = async (fixture: string): Promise<BrokerProcess> => startBroker(await testEnv(), { nodeArgs: ['--import', fixture] });

const json = (line: string): Record<string, unknown> | null => {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
};

for (const [kind, fixture, origin] of [
  ['an exception thrown in a callback', './tests/fixtures/crash-throw.ts', 'uncaughtException'],
  ['a rejection nobody handles', './tests/fixtures/crash-reject.ts', 'unhandledRejection'],
] as const) {
  test(`${kind}: logged with the requests in flight, which are still answered, exit code 1`, async () => {
    const c = await startWith(fixture);
    const ready = await fetch(`${c.url}/readyz`);
    assert.is(ready.status, 200, 'the request in flight when the error struck finished (drain)');
    const code = await Promise.race([c.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000))]);
    assert.is(code, 1, c.lines.join('\n'));
    const fatal = c.lines.map(json).find((l) => l?.level === 60);
    assert.ok(fatal, `a fatal line:\n${c.lines.join('\n')}`);
    assert.is(fatal!.origin, origin);
    assert.is(fatal!.in_flight, 1);
    const [request] = fatal!.requests as { method: string; path: string; requestId?: string }[];
    assert.equal([request!.method, request!.path], ['GET', '/readyz']);
    assert.type(request!.requestId, 'string', 'the request id, to find its other log lines');
    assert.ok(c.lines.some((l) => json(l)?.request_id === request!.requestId && json(l)?.msg === 'request'), 'its access line');
    assert.match(String((fatal!.err as { message?: string })?.message), /crash fixture/);
    assert.ok(c.lines.some((l) => json(l)?.msg === 'stopped'), 'the normal shutdown ran to its end');
  });
}

test.run();
