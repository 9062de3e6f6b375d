// Message ids are UUIDv7 (RFC 9562): time-ordered, so the pending index pages in arrival order,
// and unguessable (74 random bits), so a blob key reveals nothing useful.
import { randomBytes } from 'node:crypto';

export function uuidv7(now: Date): string {
  const b = randomBytes(16);
  const ms = BigInt(now.getTime());
  for (let i = 0; i < 6; i++) b[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  b[6] = (b[6]! & 0x0f) | 0x70; // version 7
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
