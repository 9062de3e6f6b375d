// What upload() accepts, reduced to one shape: a known size and re-readable byte ranges.
//
// A ReadableStream is read to its end into memory first. The size and SHA-256 must be known before
// the reservation (the server signs the size into every URL), and a part that failed must be sent
// again, which a stream cannot do. For data too large to hold in memory, pass a Blob: a browser
// File, or in Node `await fs.openAsBlob(path)`; it is only ever read in slices (except to hash it,
// see sha256Of).
import { sha256Base64, toBase64 } from './encoding.js';
import { Md5 } from './md5.js';
import type { Body } from './types.js';

export interface Source {
  size: number;
  /** A fetch body for [start, end): a view or a Blob slice, never a copy made here. */
  body(start: number, end: number): Uint8Array | Blob;
  read(start: number, end: number): Promise<Uint8Array>;
}

const HASH_SLICE = 8 * 1024 * 1024;

export async function toSource(data: Body, signal?: AbortSignal): Promise<Source> {
  if (data instanceof Uint8Array) {
    return { size: data.length, body: (s, e) => data.subarray(s, e), read: async (s, e) => data.subarray(s, e) };
  }
  if (typeof Blob !== 'undefined' && data instanceof Blob) {
    return {
      size: data.size,
      body: (s, e) => data.slice(s, e),
      read: async (s, e) => new Uint8Array(await data.slice(s, e).arrayBuffer()),
    };
  }
  if (isReadableStream(data)) return toSource(await readAll(data, signal));
  throw new TypeError('upload data must be a Uint8Array, a Blob or a ReadableStream<Uint8Array>');
}

function isReadableStream(v: unknown): v is ReadableStream<Uint8Array> {
  return typeof (v as ReadableStream | null)?.getReader === 'function';
}

async function readAll(stream: ReadableStream<Uint8Array>, signal?: AbortSignal): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      const { done, value } = await reader.read();
      if (done) break;
      if (!(value instanceof Uint8Array)) throw new TypeError('the upload stream must yield Uint8Array chunks');
      chunks.push(value);
      size += value.length;
    }
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/**
 * Base64 SHA-256 of the whole source. WebCrypto's digest is one-shot, so a Blob is read whole
 * here (memory = its size, released before the upload starts). Callers that cannot afford that
 * pass `sha256` in the upload options, computed however their platform streams it.
 */
export async function sha256Of(source: Source): Promise<string> {
  return sha256Base64(await source.read(0, source.size));
}

/** Base64 MD5, for the single PUT's signed Content-MD5; a Blob is read in 8 MiB slices. */
export async function md5Of(source: Source, signal?: AbortSignal): Promise<string> {
  const h = new Md5();
  for (let at = 0; at < source.size; at += HASH_SLICE) {
    if (signal?.aborted) throw signal.reason;
    h.update(await source.read(at, Math.min(source.size, at + HASH_SLICE)));
  }
  return toBase64(h.digest());
}
