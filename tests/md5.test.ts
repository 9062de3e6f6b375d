// The client's own MD5 (browsers have none in WebCrypto) must agree with node:crypto byte for byte:
// at every padding boundary, for random lengths, and however the input is split into updates.
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Md5, md5 } from '../src/client/md5.js';
import { toBase64 } from '../src/client/encoding.js';

const test = suite('client: incremental MD5');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const nodeMd5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

test('the RFC 1321 test suite', () => {
  const vectors: [string, string][] = [
    ['', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['a', '0cc175b9c0f1b6a831c399e269772661'],
    ['abc', '900150983cd24fb0d6963f7d28e17f72'],
    ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
    ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 'd174ab98d277d9f5a5611c2c9f419d9f'],
    ['12345678901234567890123456789012345678901234567890123456789012345678901234567890', '57edf4a22be3c955ac49da2e2107b67a'],
  ];
  for (const [input, expected] of vectors) assert.is(hex(md5(new TextEncoder().encode(input))), expected, JSON.stringify(input));
});

test('every length around the padding boundaries agrees with node:crypto', () => {
  const lengths = [0, 1, 2, 3, 4, 54, 55, 56, 57, 63, 64, 65, 119, 120, 121, 127, 128, 129, 191, 192, 193, 1000, 4096, 65_537];
  for (const n of lengths) {
    const b = randomBytes(n);
    assert.is(hex(md5(b)), nodeMd5(b), `length ${n}`);
  }
});

test('300 random lengths up to 5000 bytes agree with node:crypto', () => {
  for (let i = 0; i < 300; i++) {
    const b = randomBytes(randomInt(0, 5000));
    assert.is(hex(md5(b)), nodeMd5(b), `length ${b.length}`);
  }
});

test('any split into chunked updates gives the same digest as one update', () => {
  for (let i = 0; i < 200; i++) {
    const b = randomBytes(randomInt(0, 3000));
    const h = new Md5();
    let at = 0;
    while (at < b.length) {
      // Chunks of 0..130 bytes: empty updates, sub-block, exact-block and multi-block ones.
      const n = Math.min(b.length - at, randomInt(0, 131));
      h.update(b.subarray(at, at + n));
      at += n;
    }
    assert.is(hex(h.digest()), nodeMd5(b), `length ${b.length}`);
  }
});

test('byte-by-byte updates across a block boundary agree', () => {
  const b = randomBytes(200);
  const h = new Md5();
  for (let i = 0; i < b.length; i++) h.update(b.subarray(i, i + 1));
  assert.is(hex(h.digest()), nodeMd5(b));
});

test('a view into a larger buffer hashes only its own bytes', () => {
  const big = randomBytes(1000);
  const view = new Uint8Array(big.buffer, big.byteOffset + 13, 500);
  assert.is(hex(md5(view)), nodeMd5(Buffer.from(view)));
});

test('a multi-megabyte buffer in uneven 1 MiB-ish chunks agrees', () => {
  const b = randomBytes(3 * 1024 * 1024 + 17);
  const h = new Md5();
  for (let at = 0; at < b.length; at += 1_048_583) h.update(b.subarray(at, at + 1_048_583));
  assert.is(hex(h.digest()), nodeMd5(b));
});

test('the base64 form is what Content-MD5 expects', () => {
  for (const n of [0, 1, 2, 3, 100]) {
    const b = randomBytes(n);
    assert.is(toBase64(md5(b)), createHash('md5').update(b).digest('base64'));
  }
});

test('base64 agrees with Buffer for every remainder length', () => {
  for (let n = 0; n < 70; n++) {
    const b = randomBytes(n);
    assert.is(toBase64(b), b.toString('base64'), `length ${n}`);
  }
});

test('updating or digesting after digest throws', () => {
  const h = new Md5().update(new Uint8Array([1, 2, 3]));
  h.digest();
  assert.throws(() => h.update(new Uint8Array([4])));
  assert.throws(() => h.digest());
});

test.run();
