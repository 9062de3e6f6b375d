// What upload() accepts, reduced to one shape: a known size and re-readable byte ranges.
//
// A ReadableStream is read to its end into memory first. The size and SHA-256 must be known before
// the reservation (the server signs the size into every URL), and a part that failed must be sent
// again, which a stream cannot do. For data too large to hold in memory, pass a Blob: a browser
// File, or in Node `await fs.openAsBlob(path)`; it is only ever read in slices (digests.ts).
import type { Body } from './types.js';

export interface Source {
  size: number;
  /** A fetch body for [start, end): a view or a Blob slice, never a copy made here. */
  body(start: number, end: number): Uint8Array | Blob;
  read(start: number, end: number): Promise<Uint8Array>;
}

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
