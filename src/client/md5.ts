// Incremental MD5 (RFC 1321) for the browser: WebCrypto has no MD5, yet a single presigned PUT
// signs `Content-MD5`, so the client must compute it. MD5 is used here only as the store's
// integrity check on a single PUT, never for security; SHA-256 (crypto.subtle) is the digest
// recipients verify.

/** Per-round left-rotation amounts. */
const S = new Uint8Array([
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
  5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
]);

/** K[i] = floor(abs(sin(i + 1)) * 2^32). */
const K = new Int32Array(64);
for (let i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 0x100000000) | 0;

/** Which message word each of the 64 steps reads. */
const G = new Uint8Array(64);
for (let i = 0; i < 64; i++) {
  G[i] = i < 16 ? i : i < 32 ? (5 * i + 1) % 16 : i < 48 ? (3 * i + 5) % 16 : (7 * i) % 16;
}

export class Md5 {
  private a = 0x67452301;
  private b = 0xefcdab89 | 0;
  private c = 0x98badcfe | 0;
  private d = 0x10325476;
  /** Bytes of the current, not yet full, 64-byte block. */
  private readonly block = new Uint8Array(64);
  private blockLength = 0;
  /** Total bytes hashed; a double is exact up to 2^53, far beyond any upload. */
  private length = 0;
  private readonly words = new Int32Array(16);
  private finished = false;

  update(data: Uint8Array): this {
    if (this.finished) throw new Error('Md5: update after digest');
    this.length += data.length;
    let offset = 0;
    if (this.blockLength > 0) {
      const take = Math.min(64 - this.blockLength, data.length);
      this.block.set(data.subarray(0, take), this.blockLength);
      this.blockLength += take;
      offset = take;
      if (this.blockLength < 64) return this;
      this.compress(this.block, 0);
      this.blockLength = 0;
    }
    // Whole blocks straight from the input: no copy.
    for (; offset + 64 <= data.length; offset += 64) this.compress(data, offset);
    if (offset < data.length) {
      this.block.set(data.subarray(offset), 0);
      this.blockLength = data.length - offset;
    }
    return this;
  }

  /** The 16-byte digest; the hash cannot be updated afterwards. */
  digest(): Uint8Array {
    if (this.finished) throw new Error('Md5: digest called twice');
    const bits = this.length * 8;
    // Padding: 0x80, zeros up to 56 mod 64, then the bit length as a 64-bit little-endian integer.
    const padLength = this.blockLength < 56 ? 56 - this.blockLength : 120 - this.blockLength;
    const tail = new Uint8Array(padLength + 8);
    tail[0] = 0x80;
    const low = bits >>> 0;
    const high = Math.floor(bits / 0x100000000) >>> 0;
    for (let i = 0; i < 4; i++) {
      tail[padLength + i] = (low >>> (8 * i)) & 0xff;
      tail[padLength + 4 + i] = (high >>> (8 * i)) & 0xff;
    }
    const length = this.length;
    this.update(tail);
    this.length = length;
    this.finished = true;
    const out = new Uint8Array(16);
    const state = [this.a, this.b, this.c, this.d];
    for (let i = 0; i < 4; i++) {
      const v = state[i]!;
      out[i * 4] = v & 0xff;
      out[i * 4 + 1] = (v >>> 8) & 0xff;
      out[i * 4 + 2] = (v >>> 16) & 0xff;
      out[i * 4 + 3] = (v >>> 24) & 0xff;
    }
    return out;
  }

  private compress(src: Uint8Array, offset: number): void {
    const w = this.words;
    for (let i = 0; i < 16; i++) {
      const j = offset + i * 4;
      w[i] = src[j]! | (src[j + 1]! << 8) | (src[j + 2]! << 16) | (src[j + 3]! << 24);
    }
    let a = this.a;
    let b = this.b;
    let c = this.c;
    let d = this.d;
    for (let i = 0; i < 64; i++) {
      let f: number;
      if (i < 16) f = (b & c) | (~b & d);
      else if (i < 32) f = (d & b) | (~d & c);
      else if (i < 48) f = b ^ c ^ d;
      else f = c ^ (b | ~d);
      const t = (a + f + K[i]! + w[G[i]!]!) | 0;
      const s = S[i]!;
      a = d;
      d = c;
      c = b;
      b = (b + ((t << s) | (t >>> (32 - s)))) | 0;
    }
    this.a = (this.a + a) | 0;
    this.b = (this.b + b) | 0;
    this.c = (this.c + c) | 0;
    this.d = (this.d + d) | 0;
  }
}

/** MD5 of one buffer. */
export function md5(data: Uint8Array): Uint8Array {
  return new Md5().update(data).digest();
}
