// The client library must run in a browser: no Node built-ins, no Buffer, no process.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('client library: browser-safe');
/** Dependencies that run in browsers as they do in Node (README, Dependencies). */
const BROWSER_PACKAGES = new Set(['hash-wasm']);
const dir = fileURLToPath(new URL('../src/client/', import.meta.url));

test('src/client imports nothing from Node or the server and uses no Node globals', async () => {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 5);
  for (const f of files) {
    const text = (await readFile(path.join(dir, f), 'utf8')).replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '');
    for (const m of text.matchAll(/from\s+'([^']+)'/g)) {
      const spec = m[1]!;
      assert.ok(
        spec.startsWith('./') || BROWSER_PACKAGES.has(spec),
        `${f} imports ${spec}: the client may import only its own modules and ${[...BROWSER_PACKAGES].join(', ')}`,
      );
    }
    assert.not.ok(/\bBuffer\b|\bprocess\.|\brequire\(/.test(text), `${f} uses a Node-only global`);
  }
});

test.run();
