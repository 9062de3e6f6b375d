// The broker's client: upload large ciphertexts straight to the bucket, list, download and
// acknowledge messages. Runs in browsers and Node alike: it uses only fetch, Blob, streams,
// WebCrypto and timers.
import { sha256Base64, toBase64 } from './encoding.js';
import { BrokerError, IntegrityError, NetworkError, StoreError } from './errors.js';
import { backoff, retryable, sleep, storeGet, Transport } from './http.js';
import { md5 } from './md5.js';
import { detectBodyProgress, type BodyProgress } from './progress.js';
import { toSource } from './source.js';
import { Upload } from './upload.js';
import type { Body, BrokerClientOptions, UploadOptions } from './types.js';
import type {
  AckRequest,
  AckResult,
  CommittedMessage,
  FreshUrls,
  Limits,
  MessageInfo,
  PendingPage,
  PendingQuery,
  UploadInfo,
  UrlsRequest,
} from './wire.js';

/** POST /messages/ack takes at most 500 ids (README, "API reference"). */
const ACK_BATCH = 500;

export interface FetchedMessage {
  message: MessageInfo;
  data: Uint8Array;
  /**
   * What the bytes were checked against: the declared SHA-256, else the MD5 of a single PUT, else
   * only the size (a multipart upload whose sender declared no SHA-256; MLS still authenticates
   * the ciphertext when it is decrypted).
   */
  verified: 'sha256' | 'md5' | 'size';
}

export class BrokerClient {
  private readonly transport: Transport;
  private readonly concurrency: number;
  private readonly onProgress: BrokerClientOptions['onProgress'];
  private limitsCache: Promise<Limits> | null = null;
  private readonly bodyProgress: BodyProgress;

  constructor(options: BrokerClientOptions) {
    const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.transport = new Transport(options.baseUrl, options.token, doFetch, {
      retries: options.retries ?? 5,
      baseDelayMs: options.baseDelayMs ?? 200,
      maxDelayMs: options.maxDelayMs ?? 10_000,
    });
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
    this.onProgress = options.onProgress;
    this.bodyProgress = detectBodyProgress(options.fetch !== undefined);
  }

  /**
   * Uploads and commits one ciphertext; returns the committed message. A ReadableStream is read
   * into memory first (the size and SHA-256 must be known before reserving); pass a Blob for data
   * that should not be held in memory. Errors carry `uploadState` to resume with.
   */
  async upload(convoId: string, data: Body, options: UploadOptions = {}): Promise<CommittedMessage> {
    const source = await toSource(data, options.signal);
    const env = {
      transport: this.transport,
      concurrency: this.concurrency,
      limits: (signal?: AbortSignal) => this.limits(signal),
      onProgress: this.onProgress,
      bodyProgress: this.bodyProgress,
    };
    return new Upload(env, convoId, source, options).run();
  }

  /** GET /api/v1/limits, fetched once per client (the caller's pending count is not refreshed). */
  limits(signal?: AbortSignal): Promise<Limits> {
    this.limitsCache ??= this.transport.api<Limits>('GET', '/api/v1/limits', { signal }).then((r) => r.body);
    this.limitsCache.catch(() => (this.limitsCache = null));
    return this.limitsCache;
  }

  async pending(options: { limit?: number; cursor?: string | null; convoId?: string; signal?: AbortSignal } = {}): Promise<PendingPage> {
    const { body } = await this.transport.api<PendingPage>('GET', '/api/v1/messages/pending', {
      query: { limit: options.limit, cursor: options.cursor ?? undefined, convo_id: options.convoId } satisfies PendingQuery,
      signal: options.signal,
    });
    return body;
  }

  async getMessage(id: string, signal?: AbortSignal): Promise<MessageInfo> {
    return (await this.transport.api<MessageInfo>('GET', `/api/v1/messages/${enc(id)}`, { signal })).body;
  }

  /**
   * Downloads a message's bytes through its presigned URL and checks them against the sender's
   * declaration (size, then SHA-256, or MD5 when no SHA-256 was declared). Throws IntegrityError
   * on any difference. Does not acknowledge.
   */
  async fetchMessage(id: string, options: { signal?: AbortSignal } = {}): Promise<FetchedMessage> {
    const { signal } = options;
    const policy = this.transport.policy;
    let message = await this.getMessage(id, signal);
    for (let attempt = 0; ; attempt++) {
      let answer: Awaited<ReturnType<typeof storeGet>>;
      try {
        // Never read more than the declared size (+1 to notice): a wrong object cannot fill memory.
        answer = await storeGet(this.transport.fetch, message.download.url, signal, message.size + 1);
      } catch (err) {
        if (!(err instanceof NetworkError) || attempt >= policy.retries) throw err;
        await sleep(backoff(policy, attempt), signal);
        continue;
      }
      if (answer.status === 200) {
        const verified = await verify(message, answer.bytes);
        return { message, data: answer.bytes, verified };
      }
      if (attempt >= policy.retries || !(answer.status === 403 || retryable(answer.status))) {
        throw new StoreError(answer.status, answer.code ?? `Http${answer.status}`, `download of ${id}: the store answered ${answer.status}`);
      }
      await sleep(backoff(policy, attempt), signal);
      // A 403 is most likely an expired URL: ask for a new one.
      if (answer.status === 403) message = await this.getMessage(id, signal);
    }
  }

  /** Acknowledges delivery of one message (204) or many (batched by 500). */
  async ack(ids: string | readonly string[], signal?: AbortSignal): Promise<AckResult> {
    if (typeof ids === 'string') {
      try {
        await this.transport.api('POST', `/api/v1/messages/${enc(ids)}/ack`, { signal });
        return { acked: [ids], not_found: [] };
      } catch (err) {
        if (err instanceof BrokerError && err.status === 404) return { acked: [], not_found: [ids] };
        throw err;
      }
    }
    const out: AckResult = { acked: [], not_found: [] };
    for (let i = 0; i < ids.length; i += ACK_BATCH) {
      const { body } = await this.transport.api<AckResult>('POST', '/api/v1/messages/ack', {
        body: { message_ids: ids.slice(i, i + ACK_BATCH) } satisfies AckRequest,
        signal,
      });
      out.acked.push(...body.acked);
      out.not_found.push(...body.not_found);
    }
    return out;
  }

  /** DELETE /api/v1/uploads/:id: removes the object or the multipart upload. */
  async abortUpload(messageId: string, signal?: AbortSignal): Promise<void> {
    await this.transport.api('DELETE', `/api/v1/uploads/${enc(messageId)}`, { signal });
  }

  async getUpload(messageId: string, signal?: AbortSignal): Promise<UploadInfo> {
    return (await this.transport.api<UploadInfo>('GET', `/api/v1/uploads/${enc(messageId)}`, { signal })).body;
  }

  /** Fresh presigned URLs for a pending upload (all of a single PUT, or the given parts). */
  async uploadUrls(messageId: string, partNumbers?: number[], signal?: AbortSignal): Promise<FreshUrls> {
    const body: UrlsRequest = partNumbers ? { part_numbers: partNumbers } : {};
    return (await this.transport.api<FreshUrls>('POST', `/api/v1/uploads/${enc(messageId)}/urls`, { body, signal })).body;
  }
}

async function verify(message: MessageInfo, bytes: Uint8Array): Promise<FetchedMessage['verified']> {
  const id = message.message_id;
  if (bytes.length !== message.size) throw new IntegrityError(id, 'size', String(message.size), String(bytes.length));
  if (message.sha256) {
    const actual = await sha256Base64(bytes);
    if (actual !== message.sha256) throw new IntegrityError(id, 'sha256', message.sha256, actual);
    return 'sha256';
  }
  if (message.md5) {
    const actual = toBase64(md5(bytes));
    if (actual !== message.md5) throw new IntegrityError(id, 'md5', message.md5, actual);
    return 'md5';
  }
  return 'size';
}

const enc = encodeURIComponent;
