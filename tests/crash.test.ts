// An error nobody catches (issue 11, item 9): a real broker process logs it with the requests in
// flight, lets them finish (the normal drain), and exits non-zero — never a silent hang.
import { spawn } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testEnv } from './helpers/harness.js';

const test = suite('crashes: uncaught errors end the process after the drain');

interface Child {
  url: string;
  lines: string[];
  exited: Promise<number | null>;
}

/** src/main.ts with a fixture preloaded, on the harness's database and bucket. */
async function startWith(fixture: string): Promise<Child> {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...(await testEnv({ PORT: '0', LOG_LEVEL: 'info' })) };
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', fixture, 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening in 60 s:\n${lines.join('\n')}`)), 60_000);
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      let i;
      while ((i = buffered.indexOf('\n')) >= 0) {
        lines.push(buffered.slice(0, i));
        buffered = buffered.slice(i + 1);
        const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(lines[lines.length - 1]!);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before listening:\n${lines.join('\n')}`));
    });
  });
  return { url, lines, exited };
}

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
