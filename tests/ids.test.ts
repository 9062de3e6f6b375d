import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { blobKeyFor, uuidv7 } from '../src/ids.js';

const test = suite('ids');
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('ids made in one millisecond sort in the order they were made', () => {
  const at = new Date('2026-11-28T10:00:00.000Z');
  const ids = Array.from({ length: 5000 }, () => uuidv7(at));
  for (const id of ids) assert.match(id, UUID_V7);
  assert.equal([...ids].sort(), ids);
  assert.is(new Set(ids).size, ids.length);
});

test('a clock stepping back never sorts a new id before an old one', () => {
  const a = uuidv7(new Date('2026-11-28T10:00:05.000Z'));
  const b = uuidv7(new Date('2026-11-28T10:00:01.000Z'));
  assert.ok(b > a);
});

test('the id carries its time and the blob key its UTC date', () => {
  const at = new Date('2030-01-02T03:04:05.678Z');
  const id = uuidv7(at);
  assert.is(parseInt(id.replace(/-/g, '').slice(0, 12), 16), at.getTime());
  assert.is(blobKeyFor(id, at), `m/2030/01/02/${id}`);
  assert.match(blobKeyFor(id, at), /^[a-z0-9/-]+$/);
});

test('the random part never repeats, across many refills of the random pool', () => {
  // 62 random bits of rand_b per id; ids from distinct milliseconds must not share them either.
  const randB = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const id = uuidv7(new Date(Date.UTC(2026, 0, 1) + i * 7)).replace(/-/g, '');
    randB.add(id.slice(16));
  }
  assert.is(randB.size, 20_000);
});

test.run();
