// Presign cost per URL: the broker's reused S3RequestPresigner (BlobStore) against the SDK's
// getSignedUrl, in one run, on the same client configuration.
import { PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { BlobStore } from '../../src/store/store.js';

export interface PresignResult {
  kind: string;
  n: number;
  reusedUs: number;
  getSignedUrlUs: number;
  ratio: number;
}

async function perCall(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  return Number(process.hrtime.bigint() - t) / 1000 / n;
}

/** Alternates the two ways over three rounds and keeps each one's best round: GC and JIT noise out. */
async function compare(n: number, a: (i: number) => Promise<unknown>, b: (i: number) => Promise<unknown>): Promise<[number, number]> {
  for (let i = 0; i < 200; i++) await Promise.all([a(i), b(i)]); // warm-up: JIT and lazy SDK loading
  let bestA = Number.POSITIVE_INFINITY;
  let bestB = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    bestA = Math.min(bestA, await perCall(Math.ceil(n / 3), a));
    bestB = Math.min(bestB, await perCall(Math.ceil(n / 3), b));
  }
  return [bestA, bestB];
}

export async function benchPresign(store: BlobStore, n: number): Promise<PresignResult[]> {
  const key = 'm/2026/11/28/01a2203c-aeb8-7e6f-9cb4-bd195757e2e2';
  const uploadId = 'bench-upload-id';
  const now = new Date();
  const md5 = '1B2M2Y8AsgTpgAmY7PhCfg==';
  const [partReused, partSdk] = await compare(
    n,
    (i) => store.presignPart({ key, uploadId, partNumber: (i % 100) + 1, size: 16 << 20, now, expiresIn: 300 }),
    (i) =>
    getSignedUrl(store.client, new UploadPartCommand({ Bucket: store.bucket, Key: key, UploadId: uploadId, PartNumber: (i % 100) + 1, ContentLength: 16 << 20 }), {
      expiresIn: 300,
      signingDate: now,
    }),
  );
  const [putReused, putSdk] = await compare(
    n,
    () => store.presignPut({ key, size: 1024, md5, contentType: 'application/octet-stream', now, expiresIn: 300 }),
    () =>
    getSignedUrl(
      store.client,
      new PutObjectCommand({ Bucket: store.bucket, Key: key, ContentLength: 1024, ContentMD5: md5, ContentType: 'application/octet-stream', IfNoneMatch: '*' }),
      { expiresIn: 300, signingDate: now, signableHeaders: new Set(['content-type', 'content-md5', 'if-none-match']) },
    ),
  );
  return [
    { kind: 'multipart part URL', n, reusedUs: partReused, getSignedUrlUs: partSdk, ratio: partSdk / partReused },
    { kind: 'single PUT URL', n, reusedUs: putReused, getSignedUrlUs: putSdk, ratio: putSdk / putReused },
  ];
}
