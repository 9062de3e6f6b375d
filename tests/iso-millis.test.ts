// isoMillis (src/clock.ts) spells a time exactly as Date.prototype.toISOString does: the pending page
// spells every created_at with it, and a client compares those with the message's own answer.
import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isoMillis } from '../src/clock.js';

const test = suite('isoMillis');
const MAX = 8.64e15; // the Date range, either side of the epoch

test('any time in the Date range, alone or after another (the day cache), as toISOString spells it', () => {
  fc.assert(
    fc.property(fc.integer({ min: -MAX, max: MAX }), fc.integer({ min: -MAX, max: MAX }), (a, b) => {
      assert.is(isoMillis(a), new Date(a).toISOString());
      assert.is(isoMillis(b), new Date(b).toISOString());
    }),
    { numRuns: 20_000 },
  );
});

test('runs of times on one day, as a page has them (cache hits), and the day boundaries', () => {
  fc.assert(
    fc.property(fc.integer({ min: -MAX + 86_400_000, max: MAX - 86_400_000 }), fc.array(fc.integer({ min: -86_400_000, max: 86_400_000 }), { maxLength: 50 }), (start, steps) => {
      for (const step of steps) assert.is(isoMillis(start + step), new Date(start + step).toISOString());
    }),
    { numRuns: 2_000 },
  );
  for (const t of [0, -1, 1, 86_399_999, 86_400_000, -86_400_000, -86_400_001, Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), MAX, -MAX]) {
    assert.is(isoMillis(t), new Date(t).toISOString(), String(t));
  }
});

test('fractions and times outside the range behave as toISOString', () => {
  assert.is(isoMillis(1.7), new Date(1.7).toISOString());
  assert.is(isoMillis(1796224250714.9), new Date(1796224250714.9).toISOString());
  assert.throws(() => isoMillis(MAX + 1), RangeError);
  // Right after the last valid time, whose day the cache then holds.
  assert.is(isoMillis(MAX), new Date(MAX).toISOString());
  assert.throws(() => isoMillis(MAX + 1), RangeError);
  assert.throws(() => isoMillis(Number.NaN), RangeError);
});

test.run();
