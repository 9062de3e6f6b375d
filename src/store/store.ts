// The only module that talks S3. Presigning uses one S3RequestPresigner built at start on a
// hand-built request: getSignedUrl re-resolves endpoints and clones the middleware stack on
// every call (~0.9 ms); this path costs ~0.06 ms (measured here; README, "Architecture", storage facts).
import type * as S3 from '@aws-sdk/client-s3';
import type { CORSRule, LifecycleRule } from '@aws-sdk/client-s3';
import type * as Presigner from '@aws-sdk/s3-request-presigner';
import type * as Protocols from '@smithy/core/protocols';
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { requireCjs } from '../cjs.js';
import type { StoreConfig } from '../config.js';

// Required, not imported: src/cjs.ts.
const {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutBucketCorsCommand,
  PutBucketLifecycleConfigurationCommand,
  S3Client,
  S3ServiceException,
} = requireCjs('@aws-sdk/client-s3') as typeof S3;
const { S3RequestPresigner } = requireCjs('@aws-sdk/s3-request-presigner') as typeof Presigner;
const { HttpRequest } = requireCjs('@smithy/core/protocols') as typeof Protocols;

export interface PresignedRequest {
  url: string;
  /** Headers the client must send exactly as given (they are part of the signature). */
  headers: Record<string, string>;
  expiresAt: Date;
}

export interface HeadResult {
  size: number;
  /** Without quotes; hex MD5 for single PUTs, `<hex>-<n>` for multipart. */
  etag: string;
  lastModified: Date | null;
}

export interface ListedObject {
  key: string;
  size: number;
  lastModified: Date;
}

export interface ListPage {
  objects: ListedObject[];
  /** Pass back to list the next page; null when the listing is done. */
  next: string | null;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
}

/** The store rejected what it was asked to do (bad part ETag, unknown upload id, …). */
export class StoreRejected extends Error {
  constructor(readonly storeCode: string, message: string) {
    super(message);
    this.name = 'StoreRejected';
  }
}

/** The store could not be reached or answered 5xx. */
export class StoreUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailable';
  }
}

/** The store does not implement the operation (the local emulator lacks bucket configuration). */
export class StoreNotImplemented extends Error {
  constructor(readonly operation: string) {
    super(`the store does not implement ${operation}`);
    this.name = 'StoreNotImplemented';
  }
}

/** node:crypto behind the SDK's hash interface (what the presigner needs for SigV4). */
class Sha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    const key = secret === undefined || typeof secret === 'string' ? secret : toBytes(secret);
    this.hash = key === undefined ? createHash('sha256') : createHmac('sha256', key);
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(typeof data === 'string' ? data : toBytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.hash.digest());
  }
  reset(): void {
    throw new Error('not resettable');
  }
}

const toBytes = (d: ArrayBuffer | ArrayBufferView): Uint8Array =>
  d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

export const DELETE_BATCH = 1000;

/** What the store reports to metrics: every presigned URL, every request to the bucket. */
export interface StoreObserver {
  presigned(kind: 'put' | 'part' | 'get'): void;
  /** `code` is null for a success, else the S3 error code (or the network error's name). */
  called(operation: string, seconds: number, code: string | null): void;
}

export class BlobStore {
  readonly client: S3.S3Client;
  readonly bucket: string;
  private readonly presigner: Presigner.S3RequestPresigner;
  private readonly base: { protocol: string; hostname: string; port: number | undefined; pathPrefix: string };
  private readonly region: string;
  /** Kept-alive sockets for HEAD (see head()). */
  private readonly headAgent: http.Agent;

  constructor(
    private readonly config: StoreConfig & { endpoint: string },
    private readonly observer: StoreObserver | null = null,
  ) {
    this.bucket = config.bucket;
    this.region = config.region;
    const credentials = { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey };
    this.client = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      forcePathStyle: config.forcePathStyle,
      credentials,
      // Otherwise every presigned PUT carries an empty-body CRC32 that real stores reject (SDK ≥ 3.729.0 adds CRC32 checksums by default).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
    });
    this.presigner = new S3RequestPresigner({ credentials, region: config.region, sha256: Sha256 });
    if (observer !== null) {
      // Outside the SDK's retries: one count per operation the broker asked for, as it ended.
      this.client.middlewareStack.add(
        (next, context) => async (args) => {
          const started = process.hrtime.bigint();
          const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
          const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
          try {
            const out = await next(args);
            observer.called(operation, seconds(), null);
            return out;
          } catch (err) {
            observer.called(operation, seconds(), codeOf(err) ?? 'Unknown');
            throw err;
          }
        },
        { step: 'initialize', name: 'brokerStoreMetrics', priority: 'high' },
      );
    }
    const u = new URL(config.endpoint);
    this.headAgent = u.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 50 }) : new http.Agent({ keepAlive: true, maxSockets: 50 });
    const pathPrefix = u.pathname.replace(/\/+$/, '');
    if (config.forcePathStyle) {
      this.base = { protocol: u.protocol, hostname: u.hostname, port: portOf(u), pathPrefix: `${pathPrefix}/${config.bucket}` };
    } else {
      this.base = { protocol: u.protocol, hostname: `${config.bucket}.${u.hostname}`, port: portOf(u), pathPrefix };
    }
  }

  private request(method: string, key: string, query: Record<string, string>, headers: Record<string, string>): Protocols.HttpRequest {
    return new HttpRequest({
      method,
      protocol: this.base.protocol,
      hostname: this.base.hostname,
      port: this.base.port,
      path: `${this.base.pathPrefix}/${encodeKey(key)}`,
      query,
      headers: { ...headers, host: this.base.port === undefined ? this.base.hostname : `${this.base.hostname}:${this.base.port}` },
    });
  }

  private async presign(req: Protocols.HttpRequest, now: Date, expiresIn: number, signed: string[]): Promise<PresignedRequest> {
    const clientHeaders = { ...req.headers };
    delete clientHeaders.host;
    const signedReq = await this.presigner.presign(req, {
      expiresIn,
      signingDate: now,
      signingRegion: this.region,
      signableHeaders: new Set(signed),
      // Keep signed conditional headers as headers: hoisted into the query they would not be enforced.
      unhoistableHeaders: new Set(signed.filter((h) => h.startsWith('x-amz-'))),
    });
    return { url: formatUrl(signedReq as Protocols.HttpRequest), headers: clientHeaders, expiresAt: new Date(now.getTime() + expiresIn * 1000) };
  }

  /** A single PUT bound to one size, one MD5, one content type, and to a key that does not exist yet. */
  presignPut(args: { key: string; size: number; md5: string; contentType: string; now: Date; expiresIn: number }) {
    const headers = {
      'content-length': String(args.size),
      'content-md5': args.md5,
      'content-type': args.contentType,
      'if-none-match': '*',
    };
    const req = this.request('PUT', args.key, { 'x-id': 'PutObject' }, headers);
    this.observer?.presigned('put');
    return this.presign(req, args.now, args.expiresIn, Object.keys(headers));
  }

  /**
   * One part of a multipart upload, bound to its exact size and, when the client declared it, its
   * MD5 (the store answers 400 BadDigest to any other bytes).
   */
  presignPart(args: { key: string; uploadId: string; partNumber: number; size: number; md5?: string | null; now: Date; expiresIn: number }) {
    const headers: Record<string, string> = { 'content-length': String(args.size) };
    if (args.md5 != null) headers['content-md5'] = args.md5;
    const req = this.request('PUT', args.key, { partNumber: String(args.partNumber), uploadId: args.uploadId, 'x-id': 'UploadPart' }, headers);
    this.observer?.presigned('part');
    return this.presign(req, args.now, args.expiresIn, Object.keys(headers));
  }

  /**
   * The answer is forced to an opaque attachment whatever the object was stored with: a download
   * link opened in a browser must never render (the PUT cannot stop a client adding unsigned
   * headers such as Content-Disposition).
   */
  presignGet(args: { key: string; now: Date; expiresIn: number }) {
    const req = this.request(
      'GET',
      args.key,
      { 'x-id': 'GetObject', 'response-content-type': 'application/octet-stream', 'response-content-disposition': 'attachment' },
      {},
    );
    this.observer?.presigned('get');
    return this.presign(req, args.now, args.expiresIn, []);
  }

  /**
   * null when the object does not exist. Every commit makes one, so it does not go through the SDK,
   * whose middleware stack cost about 1 ms of CPU per HEAD, more than the rest of the commit: the
   * request is signed in its query by the presigner's fast path and sent on kept-alive sockets. Like
   * the SDK: up to 3 attempts on a network error, a 5xx or a 429 (exponential backoff with jitter),
   * and one metrics record per call. Unlike it: each attempt gives up after HEAD_TIMEOUT_MS.
   */
  async head(key: string): Promise<HeadResult | null> {
    const started = process.hrtime.bigint();
    let code: string | null = null;
    try {
      for (let attempt = 1; ; attempt++) {
        let status: number;
        let headers: http.IncomingHttpHeaders;
        try {
          ({ status, headers } = await this.sendHead(key));
        } catch (err) {
          code = (err as { code?: string }).code ?? (err as Error).name ?? 'NetworkError';
          if (attempt < HEAD_ATTEMPTS) {
            await backoff(attempt);
            continue;
          }
          throw new StoreUnavailable(`store request failed: ${code}`, { cause: err });
        }
        if (status === 200) {
          code = null;
          const modified = headers['last-modified'];
          return { size: Number(headers['content-length'] ?? 0), etag: unquote(String(headers.etag ?? '')), lastModified: modified ? new Date(modified) : null };
        }
        code = STATUS_CODES[status] ?? `Http${status}`;
        if (status === 404) return null;
        if ((status >= 500 || status === 429) && attempt < HEAD_ATTEMPTS) {
          await backoff(attempt);
          continue;
        }
        if (status === 501) throw new StoreNotImplemented('HeadObject');
        if (status >= 400 && status < 500) throw new StoreRejected(code, `HeadObject answered ${status}`);
        throw new StoreUnavailable(`store request failed: ${code}`);
      }
    } finally {
      this.observer?.called('HeadObject', Number(process.hrtime.bigint() - started) / 1e9, code);
    }
  }

  private async sendHead(key: string): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
    const signed = await this.presign(this.request('HEAD', key, {}, {}), new Date(), 60, []);
    const url = new URL(signed.url);
    const agent = this.headAgent;
    const get = url.protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = get(url, { method: 'HEAD', agent, timeout: HEAD_TIMEOUT_MS }, (res) => {
        res.resume();
        res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
        res.once('error', reject);
      });
      req.once('timeout', () => req.destroy(Object.assign(new Error(`no answer in ${HEAD_TIMEOUT_MS} ms`), { code: 'TimeoutError' })));
      req.once('error', reject);
      req.end();
    });
  }

  /** Deleting an absent object succeeds: another pass may have got there first. */
  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (isNotFound(err)) return;
      throw translate(err);
    }
  }

  /** Deletes in batches of at most 1000; returns the keys that could not be deleted. */
  async deleteMany(keys: readonly string[]): Promise<{ deleted: number; failed: { key: string; code: string }[] }> {
    let deleted = 0;
    const failed: { key: string; code: string }[] = [];
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      try {
        const r = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
        );
        for (const e of r.Errors ?? []) {
          if (e.Code === 'NoSuchKey') continue;
          failed.push({ key: e.Key ?? '', code: e.Code ?? 'Unknown' });
        }
        deleted += batch.length - (r.Errors?.filter((e) => e.Code !== 'NoSuchKey').length ?? 0);
      } catch (err) {
        throw translate(err);
      }
    }
    return { deleted, failed };
  }

  async list(args: { prefix: string; next?: string | null; startAfter?: string | null; maxKeys?: number }): Promise<ListPage> {
    try {
      const r = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: args.prefix,
          ContinuationToken: args.next ?? undefined,
          StartAfter: args.next ? undefined : (args.startAfter ?? undefined),
          MaxKeys: args.maxKeys ?? 1000,
        }),
      );
      const objects = (r.Contents ?? []).map((o) => ({
        key: o.Key ?? '',
        size: Number(o.Size ?? 0),
        lastModified: o.LastModified ?? new Date(0),
      }));
      return { objects, next: r.IsTruncated ? (r.NextContinuationToken ?? null) : null };
    } catch (err) {
      throw translate(err);
    }
  }

  async createMultipart(key: string, contentType: string): Promise<string> {
    try {
      const r = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: contentType }));
      if (!r.UploadId) throw new StoreUnavailable('the store returned no multipart upload id');
      return r.UploadId;
    } catch (err) {
      throw translate(err);
    }
  }

  async completeMultipart(key: string, uploadId: string, parts: readonly CompletedPart[]): Promise<void> {
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: quote(p.etag) })) },
        }),
      );
    } catch (err) {
      throw translate(err);
    }
  }

  /** Aborting an upload that is already gone succeeds. */
  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      if (isNotFound(err) || codeOf(err) === 'NoSuchUpload') return;
      throw translate(err);
    }
  }

  /** A cheap request that proves the bucket answers with our credentials. */
  async ping(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      throw translate(err);
    }
  }

  async putCors(rules: CORSRule[]): Promise<void> {
    try {
      await this.client.send(new PutBucketCorsCommand({ Bucket: this.bucket, CORSConfiguration: { CORSRules: rules } }));
    } catch (err) {
      throw translate(err, 'PutBucketCors');
    }
  }

  async putLifecycle(rules: LifecycleRule[]): Promise<void> {
    try {
      await this.client.send(
        new PutBucketLifecycleConfigurationCommand({ Bucket: this.bucket, LifecycleConfiguration: { Rules: rules } }),
      );
    } catch (err) {
      throw translate(err, 'PutBucketLifecycleConfiguration');
    }
  }

  close(): void {
    this.client.destroy();
    this.headAgent.destroy();
  }
}

function portOf(u: URL): number | undefined {
  return u.port === '' ? undefined : Number(u.port);
}

/** Blob keys are [a-z0-9/-] by construction; encode anyway so a future key cannot break a URL. */
function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

function formatUrl(req: Protocols.HttpRequest): string {
  const port = req.port === undefined ? '' : `:${req.port}`;
  const query = Object.entries(req.query)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  return `${req.protocol}//${req.hostname}${port}${req.path}${query ? `?${query}` : ''}`;
}

const HEAD_ATTEMPTS = 3;
const HEAD_TIMEOUT_MS = 10_000;
/** The S3 error names the SDK gives a body-less answer (HEAD has no error document). */
const STATUS_CODES: Record<number, string> = { 400: 'BadRequest', 403: 'Forbidden', 404: 'NotFound', 429: 'SlowDown', 500: 'InternalError', 503: 'ServiceUnavailable' };
/** 100 ms, then 200 ms, each with up to 100 % jitter (the SDK's standard retry is of this shape). */
const backoff = (attempt: number) => new Promise((r) => setTimeout(r, 100 * 2 ** (attempt - 1) * (1 + Math.random())));

const unquote = (etag: string) => etag.replace(/^"|"$/g, '');
const quote = (etag: string) => (etag.startsWith('"') ? etag : `"${etag}"`);

function codeOf(err: unknown): string | undefined {
  if (err instanceof S3ServiceException) return err.name;
  return (err as { name?: string; Code?: string })?.Code ?? (err as { name?: string })?.name;
}

function isNotFound(err: unknown): boolean {
  const code = codeOf(err);
  return code === 'NotFound' || code === 'NoSuchKey' || (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 404;
}

/** Maps SDK errors to the three kinds callers act on. */
function translate(err: unknown, operation?: string): Error {
  if (err instanceof StoreRejected || err instanceof StoreUnavailable || err instanceof StoreNotImplemented) return err;
  const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  const code = codeOf(err) ?? 'Unknown';
  if (status === 501 || code === 'NotImplemented') return new StoreNotImplemented(operation ?? code);
  if (status !== undefined && status >= 400 && status < 500) {
    return new StoreRejected(code, (err as Error).message || code);
  }
  return new StoreUnavailable(`store request failed: ${code}`, { cause: err });
}
