// Message ids are UUIDv7 (RFC 9562): time-ordered, so the pending index pages in arrival order,
// and unguessable (74 random bits), so a blob key reveals nothing useful.
import { randomFillSync } from 'node:crypto';

let lastMs = -1;
let counter = 0;

// Random bytes drawn 4 KiB at a time: one call into the CSPRNG per 256 ids instead of two per id.
// Every byte is used once.
const pool = Buffer.alloc(4096);
let poolAt = pool.length;
function random(n: number): Buffer {
  if (poolAt + n > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const out = Buffer.from(pool.subarray(poolAt, poolAt + n));
  poolAt += n;
  return out;
}

/**
 * Monotonic within the process (RFC 9562 6.2, method 1): ids made in the same millisecond carry a
 * 12-bit counter in rand_a, so the pending page's "oldest first" holds inside a millisecond too.
 * A clock that steps back keeps the last timestamp rather than sorting new ids before old ones.
 * 62 bits of rand_b stay random: ids remain unguessable.
 */
export function uuidv7(now: Date): string {
  let ms = Math.max(now.getTime(), lastMs);
  if (ms === lastMs) {
    counter++;
    if (counter > 0xfff) {
      ms = lastMs + 1; // 4096 ids in one millisecond: borrow the next one
      counter = 0;
    }
  } else {
    counter = random(2).readUInt16BE(0) & 0x7ff; // a random start leaves room to count up
  }
  lastMs = ms;
  const b = random(16);
  const t = BigInt(ms);
  for (let i = 0; i < 6; i++) b[i] = Number((t >> BigInt(8 * (5 - i))) & 0xffn);
  b[6] = 0x70 | (counter >> 8); // version 7, counter high bits
  b[7] = counter & 0xff;
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 9562 variant
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** `m/<yyyy>/<mm>/<dd>/<message_id>` from the reservation's UTC date: only [a-z0-9/-]. */
export function blobKeyFor(messageId: string, at: Date): string {
  return `m/${dayPrefix(at)}${messageId}`;
}

/** `<yyyy>/<mm>/<dd>/` of a UTC date. */
export function dayPrefix(at: Date): string {
  const y = at.getUTCFullYear();
  const m = String(at.getUTCMonth() + 1).padStart(2, '0');
  const d = String(at.getUTCDate()).padStart(2, '0');
  return `${y}/${m}/${d}/`;
}
