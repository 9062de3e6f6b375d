// One upload: hash, reserve, PUT (single or parts in parallel), complete, commit — resumable from
// a saved UploadState at every step.
import { BrokerClientError, BrokerError, NetworkError, ResumeError, StoreError } from './errors.js';
import { backoff, retryable, sleep, storeError, storePut, type Transport } from './http.js';
import { digestSource } from './digests.js';
import { putWithProgress, type BodyProgress } from './progress.js';
import type { Source } from './source.js';
import type { Progress, UploadOptions, UploadState } from './types.js';
import type { CommitRequest, CommittedMessage, CompleteRequest, FreshUrls, Limits, Reservation, ReserveRequest, UploadInfo, UrlsRequest } from './wire.js';

export interface UploadEnv {
  transport: Transport;
  concurrency: number;
  limits(signal?: AbortSignal): Promise<Limits>;
  onProgress?: (p: Progress, messageId: string) => void;
  /** How a PUT reports bytes while it sends them (progress.ts). */
  bodyProgress: BodyProgress;
}

interface UrlEntry {
  url: string;
  headers: Record<string, string>;
  /** Local Date.now() when received: elapsed local time needs no agreement between clocks. */
  obtainedAt: number;
}

/** Commit answers 409 UploadIncomplete while the store has not yet settled the object: retry briefly. */
const COMMIT_INCOMPLETE_RETRIES = 4;

export class Upload {
  private state!: UploadState;
  private readonly urls = new Map<number, UrlEntry>();
  private single: UrlEntry | null = null;
  private refreshing: Promise<void> | null = null;
  /** URLs older than this (local ms) are refreshed before use instead of failing at the store. */
  private urlLifeMs = Number.POSITIVE_INFINITY;
  /** Bytes sent so far by each PUT in flight (key: part number, 0 for a single PUT). */
  private readonly inFlight = new Map<number, number>();
  /** Progress never goes back (a retried PUT starts its bytes again): the most reported so far, -1 before the first. */
  private reportedSent = -1;
  /** Multipart: the MD5 of each part (index n-1), sent with every part URL request so the URL signs it. */
  private partMd5s: string[] | null = null;

  constructor(
    private readonly env: UploadEnv,
    private readonly convoId: string,
    private readonly source: Source,
    private readonly options: UploadOptions,
  ) {}

  async run(): Promise<CommittedMessage> {
    const signal = this.options.signal;
    let alreadyCommitted = false;
    try {
      const limits = await this.env.limits(signal);
      const ttl = limits.upload_url_ttl_seconds * 1000;
      this.urlLifeMs = ttl - Math.min(15_000, ttl / 4);
      if (this.options.resume) alreadyCommitted = await this.resume(this.options.resume);
      else await this.reserve(limits);
      this.reportProgress();
      if (!this.state.uploaded && !alreadyCommitted) {
        if (this.state.method === 'PUT') await this.putSingle();
        else {
          await this.putParts();
          await this.complete();
        }
        this.state.uploaded = true;
        this.save();
        this.reportProgress();
      }
      return await this.commit();
    } catch (err) {
      if (err instanceof BrokerClientError && this.state) err.uploadState = copy(this.state);
      throw err;
    }
  }

  private async reserve(limits: Limits): Promise<void> {
    const { source, options } = this;
    const signal = options.signal;
    const isMultipart = source.size > limits.multipart_threshold_bytes;
    // One pass over the data before reserving: the SHA-256 and the MD5 of each part (all known up
    // front, so the reservation's part URLs already sign them).
    const { sha256, partMd5s } = await digestSource(source, isMultipart ? limits.part_size_bytes : source.size, {
      knownSha256: options.sha256,
      signal,
    });
    this.partMd5s = isMultipart ? partMd5s : null;
    const { body: r } = await this.env.transport.api<Reservation>('POST', '/api/v1/uploads', {
      body: {
        convo_id: this.convoId,
        size: source.size,
        md5: isMultipart ? undefined : partMd5s[0],
        sha256,
        content_type: options.contentType,
        part_md5s: this.partMd5s ?? undefined,
      } satisfies ReserveRequest,
      signal,
    });
    const multipart = r.upload.method === 'MULTIPART' ? r.upload : null;
    this.state = {
      version: 1,
      message_id: r.message_id,
      convo_id: this.convoId,
      size: source.size,
      sha256,
      method: r.upload.method,
      part_size: multipart?.part_size ?? null,
      part_count: multipart?.part_count ?? null,
      parts: [],
      uploaded: false,
      commit_deadline: r.commit_deadline,
    };
    this.takeUrls(r.upload);
    this.save();
  }

  /** Checks a saved state against the data and the server; true when the upload is already committed. */
  private async resume(saved: UploadState): Promise<boolean> {
    const { source, options } = this;
    if (saved?.version !== 1 || typeof saved.message_id !== 'string' || !Array.isArray(saved.parts)) {
      throw new ResumeError('resume is not an UploadState saved by this client');
    }
    if (saved.convo_id !== this.convoId) throw new ResumeError(`the saved upload belongs to conversation ${saved.convo_id}`);
    if (saved.size !== source.size) throw new ResumeError(`the saved upload is ${saved.size} bytes, the data ${source.size}`);
    const multipart = saved.method === 'MULTIPART';
    if (multipart && !(typeof saved.part_size === 'number' && saved.part_size >= 1)) throw new ResumeError('the saved multipart upload has no part size');
    const { sha256, partMd5s } = await digestSource(source, multipart ? saved.part_size! : source.size, {
      knownSha256: options.sha256,
      signal: options.signal,
    });
    this.partMd5s = multipart ? partMd5s : null;
    if (sha256 !== saved.sha256) throw new ResumeError('the data differs from the data of the saved upload (SHA-256)');
    this.state = copy(saved);
    const { body: info } = await this.env.transport.api<UploadInfo>('GET', `/api/v1/uploads/${enc(saved.message_id)}`, { signal: options.signal });
    if (info.state === 'committed') return true;
    if (info.state !== 'pending') throw new ResumeError(`the upload can no longer continue: it is ${info.state}`);
    return false;
  }

  private takeUrls(upload: Reservation['upload']): void {
    const now = Date.now();
    if (upload.method === 'PUT') this.single = { url: upload.url, headers: upload.headers, obtainedAt: now };
    else for (const p of upload.parts) this.urls.set(p.part_number, { url: p.url, headers: p.headers, obtainedAt: now });
  }

  private fresh(e: UrlEntry | null | undefined): e is UrlEntry {
    return e !== null && e !== undefined && Date.now() - e.obtainedAt < this.urlLifeMs;
  }

  private async freshUrls(partNumbers: number[] | undefined, signal?: AbortSignal): Promise<void> {
    const { body } = await this.env.transport.api<FreshUrls>('POST', `/api/v1/uploads/${enc(this.state.message_id)}/urls`, {
      body: (partNumbers
        ? { part_numbers: partNumbers, part_md5s: this.partMd5s ? partNumbers.map((n) => this.partMd5s![n - 1]!) : undefined }
        : {}) satisfies UrlsRequest,
      signal,
    });
    this.takeUrls(body.upload);
  }

  private async putSingle(): Promise<void> {
    const { signal } = this.options;
    const body = this.source.body(0, this.source.size);
    for (let attempt = 0; ; ) {
      if (!this.fresh(this.single)) await this.freshUrls(undefined, signal);
      const entry = this.single!;
      const answer = await this.put(entry.url, entry.headers, body, signal, attempt, () => (this.single = null), 0);
      if (answer === 'retry') {
        attempt++;
        continue;
      }
      // 412: the key exists, so an earlier attempt whose answer was lost did land; commit checks its MD5.
      if ((answer.status >= 200 && answer.status < 300) || answer.status === 412) return;
      throw storeError(answer, 'single PUT');
    }
  }

  /**
   * One PUT and what to do about its failure: 'retry' after dropping the URL (a 403 or a lost
   * answer may be an expired signature; a store refusing a body early can look like a network
   * error), or the answer to act on.
   */
  private async put(
    url: string,
    headers: Record<string, string>,
    body: Uint8Array | Blob,
    signal: AbortSignal | undefined,
    attempt: number,
    dropUrl: () => void,
    key: number,
  ): Promise<'retry' | Awaited<ReturnType<typeof storePut>>> {
    const policy = this.env.transport.policy;
    let answer: Awaited<ReturnType<typeof storePut>>;
    try {
      answer = await this.send(url, headers, body, signal, key);
    } catch (err) {
      if (!(err instanceof NetworkError) || attempt >= policy.retries) throw err;
      dropUrl();
      await sleep(backoff(policy, attempt), signal);
      return 'retry';
    }
    if (answer.status === 403 && attempt < policy.retries) {
      // Most likely expired: a new URL fixes it at once; a real signature mismatch runs out of attempts.
      dropUrl();
      if (attempt > 0) await sleep(backoff(policy, attempt), signal);
      return 'retry';
    }
    // BadDigest: the bytes changed on the way (the signed MD5 is of the data itself); a resend reads them again.
    if ((retryable(answer.status) || answer.code === 'BadDigest') && attempt < policy.retries) {
      await sleep(backoff(policy, attempt), signal);
      return 'retry';
    }
    return answer;
  }

  private async putParts(): Promise<void> {
    const done = new Set(this.state.parts.map((p) => p.part_number));
    const queue: number[] = [];
    for (let n = 1; n <= this.state.part_count!; n++) if (!done.has(n)) queue.push(n);
    // The first failure stops the other workers; the caller's signal stops everything.
    const inner = new AbortController();
    const outer = this.options.signal;
    const onAbort = () => inner.abort(outer!.reason);
    if (outer?.aborted) throw outer.reason;
    outer?.addEventListener('abort', onAbort, { once: true });
    let failure: { error: unknown } | null = null;
    const worker = async () => {
      for (let n = queue.shift(); n !== undefined && failure === null; n = queue.shift()) {
        try {
          await this.putPart(n, inner.signal);
        } catch (error) {
          if (failure === null) {
            failure = { error };
            inner.abort(error);
          }
        }
      }
    };
    try {
      const workers = Math.max(1, Math.min(this.env.concurrency, queue.length));
      await Promise.all(Array.from({ length: workers }, worker));
    } finally {
      outer?.removeEventListener('abort', onAbort);
    }
    if (failure !== null) throw (failure as { error: unknown }).error;
  }

  private partRange(n: number): [number, number] {
    const start = (n - 1) * this.state.part_size!;
    return [start, Math.min(this.state.size, start + this.state.part_size!)];
  }

  private async putPart(n: number, signal: AbortSignal): Promise<void> {
    const [start, end] = this.partRange(n);
    const body = this.source.body(start, end);
    for (let attempt = 0; ; ) {
      const entry = await this.partUrl(n, signal);
      const answer = await this.put(entry.url, entry.headers, body, signal, attempt, () => this.urls.delete(n), n);
      if (answer === 'retry') {
        attempt++;
        continue;
      }
      if (answer.status < 200 || answer.status >= 300) throw storeError(answer, `part ${n}`);
      if (!answer.etag) {
        throw new StoreError(answer.status, 'MissingETag', `part ${n}: the store sent no ETag header (a browser needs ETag in the bucket's CORS ExposeHeaders)`);
      }
      this.state.parts = this.state.parts.filter((p) => p.part_number !== n);
      this.state.parts.push({ part_number: n, etag: answer.etag.replace(/^"|"$/g, '') });
      this.save();
      this.reportProgress();
      return;
    }
  }

  /** A usable URL for part n; missing or stale ones are fetched up to 100 at a time, one request at a time. */
  private async partUrl(n: number, signal: AbortSignal): Promise<UrlEntry> {
    let e = this.urls.get(n);
    if (this.fresh(e)) return e;
    if (this.refreshing) {
      await this.refreshing.catch(() => {});
      e = this.urls.get(n);
      if (this.fresh(e)) return e;
    }
    const done = new Set(this.state.parts.map((p) => p.part_number));
    const wanted = [n];
    for (let m = n + 1; m <= this.state.part_count! && wanted.length < 100; m++) {
      if (!done.has(m) && !this.fresh(this.urls.get(m))) wanted.push(m);
    }
    const p = this.freshUrls(wanted, signal);
    this.refreshing = p;
    try {
      await p;
    } finally {
      if (this.refreshing === p) this.refreshing = null;
    }
    e = this.urls.get(n);
    if (!e) throw new BrokerClientError(`the broker returned no URL for part ${n}`);
    return e;
  }

  private async complete(): Promise<void> {
    const parts = [...this.state.parts].sort((a, b) => a.part_number - b.part_number);
    await this.env.transport.api('POST', `/api/v1/uploads/${enc(this.state.message_id)}/complete`, {
      body: { parts } satisfies CompleteRequest,
      signal: this.options.signal,
    });
  }

  private async commit(): Promise<CommittedMessage> {
    const { recipients, metadata, signal } = this.options;
    const policy = this.env.transport.policy;
    for (let attempt = 0; ; attempt++) {
      try {
        const { body } = await this.env.transport.api<CommittedMessage>('POST', '/api/v1/messages', {
          body: { message_id: this.state.message_id, recipients, metadata } satisfies CommitRequest,
          signal,
        });
        return body;
      } catch (err) {
        if (err instanceof BrokerError && err.code === 'UploadIncomplete' && attempt < COMMIT_INCOMPLETE_RETRIES) {
          await sleep(backoff({ ...policy, baseDelayMs: Math.max(250, policy.baseDelayMs) }, attempt), signal);
          continue;
        }
        throw err;
      }
    }
  }

  /** One PUT; with a progress listener, its bytes are reported while they go out. */
  private async send(url: string, headers: Record<string, string>, body: Uint8Array | Blob, signal: AbortSignal | undefined, key: number) {
    const { fetch } = this.env.transport;
    if (!this.options.onProgress && !this.env.onProgress) return storePut(fetch, url, headers, body, signal);
    const size = body instanceof Uint8Array ? body.length : body.size;
    const onSent = (bytes: number) => {
      // All sent is not yet stored: the answer, then the part's or upload's own report, says so.
      if (bytes >= size) return;
      this.inFlight.set(key, bytes);
      this.reportProgress();
    };
    try {
      return await putWithProgress(this.env.bodyProgress, fetch, url, headers, body, onSent, signal);
    } finally {
      this.inFlight.delete(key);
    }
  }

  private save(): void {
    this.options.onState?.(copy(this.state));
  }

  private reportProgress(): void {
    const total = this.state.size;
    let sent = 0;
    if (this.state.uploaded) sent = total;
    else if (this.state.method === 'MULTIPART') {
      for (const p of this.state.parts) {
        const [s, e] = this.partRange(p.part_number);
        sent += e - s;
      }
    }
    if (!this.state.uploaded) for (const bytes of this.inFlight.values()) sent += bytes;
    sent = Math.max(sent, this.reportedSent);
    // Reports come often while bytes move: repeat none.
    if (this.reportedSent >= 0 && sent === this.reportedSent) return;
    this.reportedSent = sent;
    const progress = { sent, total };
    this.options.onProgress?.(progress);
    this.env.onProgress?.(progress, this.state.message_id);
  }
}

const copy = (s: UploadState): UploadState => JSON.parse(JSON.stringify(s)) as UploadState;
const enc = encodeURIComponent;
