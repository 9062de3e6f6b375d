// The digests an upload declares, in one pass over the data: the SHA-256 of the whole ciphertext
// (recipients verify it) and the MD5 of each part (each part URL signs it, so the store refuses a
// part that changed on the way; for a single PUT the one "part" is the whole).
//
// Memory: data up to WHOLE_HASH_MAX_BYTES is read once and hashed with WebCrypto (native, one-shot).
// Anything larger is read in slices of HASH_SLICE_BYTES and hashed incrementally (hash-wasm:
// WebCrypto has no streaming digest and no MD5), so a 2 GiB File costs a slice of memory, not 2 GiB.
// In a browser, hash-wasm instantiates WebAssembly: a page with a Content-Security-Policy needs
// 'wasm-unsafe-eval' in script-src for uploads above WHOLE_HASH_MAX_BYTES.
import { createMD5, createSHA256 } from 'hash-wasm';
import { sha256Base64, toBase64 } from './encoding.js';
import { Md5 } from './md5.js';
import type { Source } from './source.js';

const MIB = 1024 * 1024;
/** Up to this size the data is hashed from one buffer; above it, slice by slice. */
export const WHOLE_HASH_MAX_BYTES = 16 * MIB;
export const HASH_SLICE_BYTES = 8 * MIB;

export interface Digests {
  /** base64 SHA-256 of the whole data (the caller's own, when it passed one). */
  sha256: string;
  /** base64 MD5 of each part of `partSize` bytes (the last may be shorter), in order. */
  partMd5s: string[];
}

/**
 * Hashes `source` once: its SHA-256 (unless `knownSha256` is given) and the MD5 of each part of
 * `partSize` bytes (pass the whole size for a single PUT).
 */
export async function digestSource(source: Source, partSize: number, options: { knownSha256?: string; signal?: AbortSignal } = {}): Promise<Digests> {
  const { knownSha256, signal } = options;
  // An empty source has no parts (the broker refuses it); never loop on a zero part size.
  partSize = Math.max(1, partSize);
  if (source.size <= WHOLE_HASH_MAX_BYTES) {
    const bytes = await source.read(0, source.size);
    const partMd5s: string[] = [];
    for (let at = 0; at < source.size; at += partSize) {
      const h = new Md5();
      h.update(bytes.subarray(at, Math.min(source.size, at + partSize)));
      partMd5s.push(toBase64(h.digest()));
    }
    return { sha256: knownSha256 ?? (await sha256Base64(bytes)), partMd5s };
  }
  const sha = knownSha256 === undefined ? await createSHA256() : null;
  sha?.init();
  const md5 = await createMD5();
  const partMd5s: string[] = [];
  for (let partStart = 0; partStart < source.size; partStart += partSize) {
    const partEnd = Math.min(source.size, partStart + partSize);
    md5.init();
    for (let at = partStart; at < partEnd; at += HASH_SLICE_BYTES) {
      if (signal?.aborted) throw signal.reason;
      const slice = await source.read(at, Math.min(partEnd, at + HASH_SLICE_BYTES));
      sha?.update(slice);
      md5.update(slice);
    }
    partMd5s.push(toBase64(md5.digest('binary')));
  }
  return { sha256: knownSha256 ?? toBase64(sha!.digest('binary')), partMd5s };
}
