// A small typed client for the REST API, for pipelines, the CLI verbs and
// tests. It imports only types from the service, so it runs anywhere fetch
// does. Errors come back as ApiError with the service's code and field; the
// event stream reconnects with Last-Event-ID until the job has finished.
import type { ArtifactDto, DatasetDto, EventDto, JobDto, JobState, ModelDto, RoundDto } from '../service/index.js';
import type { RunSpecInput } from '../engine/spec.js';
import { parseSse } from './sse.js';

export type { ArtifactDto, DatasetDto, EventDto, JobDto, JobState, ModelDto, RoundDto };

export interface ClientOptions {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  apiKey?: string;
  /** Per-request timeout for plain calls (default 60 s); streams are not limited. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export class ApiError extends Error {
  override name = 'ApiError';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly requestId?: string,
    /** Every problem the server found in the request (`errors`), the first being this one; empty when it sent none. */
    readonly errors: readonly { field: string; message: string }[] = [],
  ) {
    super(message);
  }
}

/** Pages a list follows at most before giving up (200 items each: 200,000 items). */
const MAX_PAGES = 1000;

/** A job request: the run spec, whose model may be an uploaded model's id and dataset a registered one's. */
export type SubmitJobRequest = RunSpecInput;

/** One page of a list: follow `nextCursor` (null on the last page) with `cursor`. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface PageQuery {
  cursor?: string;
  limit?: number;
}

export interface ModelFile {
  name: string;
  bytes: Uint8Array;
}

export interface DownloadOptions {
  range?: { start: number; end?: number };
  ifNoneMatch?: string;
}

export interface Download {
  status: 200 | 206 | 304;
  bytes: Uint8Array;
  /** sha256 of the whole artifact, from X-Content-SHA256. */
  sha256: string | null;
  etag: string | null;
  contentType: string | null;
  contentRange: string | null;
  /** The artifact's file name, from Content-Disposition. */
  filename: string | null;
}

export interface WatchOptions {
  /** Resume after this event id. */
  afterId?: number;
  signal?: AbortSignal;
  /** Reconnects after a dropped stream (default 5). */
  reconnects?: number;
}

const TERMINAL = new Set<string>(['succeeded', 'failed', 'cancelled']);

/** Web APIs take only ArrayBuffer-backed views; copy the rare shared one. */
function plain(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', plain(bytes));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

export class TicketsmithClient {
  readonly baseUrl: string;
  private readonly apiKey?: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: ClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.apiKey = opts.apiKey;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.fetchImpl = opts.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}), ...extra };
  }

  private async raw(method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal; stream?: boolean } = {}): Promise<Response> {
    const signal = init.stream ? init.signal : init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(this.timeoutMs)]) : AbortSignal.timeout(this.timeoutMs);
    const res = await this.fetchImpl(this.baseUrl + path, { method, body: init.body, headers: this.headers(init.headers), signal });
    if (res.status >= 400) throw await toApiError(res);
    return res;
  }

  private async json<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ data: T; res: Response }> {
    const res = await this.raw(method, path, {
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    });
    return { data: (await res.json()) as T, res };
  }

  async health(): Promise<boolean> {
    try {
      return (await this.raw('GET', '/healthz')).ok;
    } catch {
      return false;
    }
  }

  /** Uploads model.json and its weight files, or one .zip/.tar.gz archive. */
  async uploadModel(input: { files: ModelFile[] } | { archive: Uint8Array; filename?: string }, opts: { name?: string } = {}): Promise<ModelDto> {
    const form = new FormData();
    if (opts.name !== undefined) form.append('name', opts.name);
    if ('archive' in input) form.append('archive', new Blob([plain(input.archive)]), input.filename ?? 'model.zip');
    else for (const f of input.files) form.append('files', new Blob([plain(f.bytes)]), f.name);
    const res = await this.raw('POST', '/v1/models', { body: form });
    return (await res.json()) as ModelDto;
  }

  async getModel(id: string): Promise<ModelDto> {
    return (await this.json<ModelDto>('GET', `/v1/models/${enc(id)}`)).data;
  }

  /** One page of the tenant's uploaded models, newest first. */
  async listModels(q: PageQuery = {}): Promise<Page<ModelDto>> {
    return this.listPage<ModelDto>('/v1/models', { ...q });
  }

  /** One page of a list: `{ items, nextCursor }` (every REST list answers so). */
  async listPage<T>(path: string, q: { cursor?: string; limit?: number } & Record<string, string | number | undefined> = {}): Promise<Page<T>> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') params.set(k, String(v));
    const qs = params.toString();
    const { data } = await this.json<{ items: T[]; nextCursor?: string | null; next_cursor?: string | null }>('GET', `${path}${qs ? `?${qs}` : ''}`);
    // next_cursor: what servers before nextCursor sent (jobs only).
    return { items: data.items, nextCursor: data.nextCursor ?? data.next_cursor ?? null };
  }

  /** Every item of a list, following nextCursor (at most MAX_PAGES pages of 200). */
  private async allPages<T>(path: string, q: Record<string, string | undefined> = {}): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < MAX_PAGES; i++) {
      const page = await this.listPage<T>(path, { ...q, cursor, limit: 200 });
      out.push(...page.items);
      if (page.nextCursor === null) return out;
      cursor = page.nextCursor;
    }
    throw new ApiError(0, 'INTERNAL', `${path}: more than ${MAX_PAGES} pages`);
  }

  /** Deletes an uploaded model (409 FAILED_PRECONDITION while a queued or running job uses it). */
  async deleteModel(id: string): Promise<void> {
    await this.raw('DELETE', `/v1/models/${enc(id)}`);
  }

  async listDatasets(q: PageQuery = {}): Promise<Page<DatasetDto>> {
    return this.listPage<DatasetDto>('/v1/datasets', { ...q });
  }

  async getDataset(id: string): Promise<DatasetDto> {
    return (await this.json<DatasetDto>('GET', `/v1/datasets/${enc(id)}`)).data;
  }

  async registerDataset(reference: string): Promise<DatasetDto> {
    return (await this.json<DatasetDto>('POST', '/v1/datasets', { reference })).data;
  }

  /**
   * Uploads a dataset: its files (the four IDX files, x_train.npy..., CIFAR-10
   * batches or one .npz; names may keep a folder), or one .zip/.tar.gz/.tar
   * archive of them or of an image folder. The same files again return the same dataset.
   */
  async uploadDataset(input: { files: ModelFile[] } | { archive: Uint8Array; filename?: string }): Promise<DatasetDto> {
    let body: FormData | Uint8Array<ArrayBuffer>;
    const headers: Record<string, string> = {};
    if ('archive' in input) {
      body = plain(input.archive);
      headers['content-type'] = /\.(tar\.gz|tgz)$/i.test(input.filename ?? '') || (input.archive[0] === 0x1f && input.archive[1] === 0x8b) ? 'application/gzip' : /\.tar$/i.test(input.filename ?? '') ? 'application/x-tar' : 'application/zip';
    } else {
      body = new FormData();
      for (const f of input.files) body.append('files', new Blob([plain(f.bytes)]), f.name);
    }
    const res = await this.raw('POST', '/v1/datasets', { body, headers });
    return (await res.json()) as DatasetDto;
  }

  /** Deletes a registered dataset (409 FAILED_PRECONDITION while a queued or running job uses it). */
  async deleteDataset(id: string): Promise<void> {
    await this.raw('DELETE', `/v1/datasets/${enc(id)}`);
  }

  async submitJob(spec: SubmitJobRequest, opts: { idempotencyKey?: string } = {}): Promise<{ job: JobDto; created: boolean }> {
    const { data, res } = await this.json<JobDto>('POST', '/v1/jobs', spec, opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {});
    return { job: data, created: res.status === 201 };
  }

  async getJob(id: string): Promise<JobDto> {
    return (await this.json<JobDto>('GET', `/v1/jobs/${enc(id)}`)).data;
  }

  async listJobs(q: { status?: JobState } & PageQuery = {}): Promise<Page<JobDto>> {
    return this.listPage<JobDto>('/v1/jobs', { status: q.status, cursor: q.cursor, limit: q.limit });
  }

  /** Every committed round of a job, in order (all pages). */
  async listRounds(jobId: string): Promise<RoundDto[]> {
    return this.allPages<RoundDto>(`/v1/jobs/${enc(jobId)}/rounds`);
  }

  async cancelJob(jobId: string): Promise<JobDto> {
    return (await this.json<JobDto>('POST', `/v1/jobs/${enc(jobId)}/cancel`)).data;
  }

  /** Deletes a finished job with its rounds, events and artifacts (409 FAILED_PRECONDITION while queued or running). */
  async deleteJob(jobId: string): Promise<void> {
    await this.raw('DELETE', `/v1/jobs/${enc(jobId)}`);
  }

  /** Every artifact of a job (of one kind, when given), oldest first (all pages). */
  async listArtifacts(jobId: string, opts: { kind?: string } = {}): Promise<ArtifactDto[]> {
    return this.allPages<ArtifactDto>(`/v1/jobs/${enc(jobId)}/artifacts`, { kind: opts.kind });
  }

  /** An artifact's bytes, or a byte range of them; `ifNoneMatch` may answer 304 with no bytes. */
  async download(artifactId: string, opts: DownloadOptions = {}): Promise<Download> {
    return this.fetchDownload(`/v1/artifacts/${enc(artifactId)}`, opts);
  }

  /** A succeeded job's ticket.zip (409 FAILED_PRECONDITION before), as `download` sends an artifact. */
  async downloadTicketZip(jobId: string, opts: DownloadOptions = {}): Promise<Download> {
    return this.fetchDownload(`/v1/jobs/${enc(jobId)}/ticket.zip`, opts);
  }

  /** The whole ticket.zip, checked against the sha256 the server reports. */
  async downloadTicketZipVerified(jobId: string): Promise<{ bytes: Uint8Array; sha256: string }> {
    const d = await this.downloadTicketZip(jobId);
    const sha256 = await sha256Hex(d.bytes);
    if (d.sha256 !== sha256) throw new ApiError(0, 'DATA_LOSS', `job ${jobId}: ticket.zip sha256 ${sha256} does not match ${d.sha256}`);
    return { bytes: d.bytes, sha256 };
  }

  private async fetchDownload(path: string, opts: DownloadOptions): Promise<Download> {
    const headers: Record<string, string> = {};
    if (opts.range) headers.range = `bytes=${opts.range.start}-${opts.range.end ?? ''}`;
    if (opts.ifNoneMatch) headers['if-none-match'] = opts.ifNoneMatch;
    const res = await this.raw('GET', path, { headers });
    return {
      status: res.status as Download['status'],
      bytes: new Uint8Array(await res.arrayBuffer()),
      sha256: res.headers.get('x-content-sha256'),
      etag: res.headers.get('etag'),
      contentType: res.headers.get('content-type'),
      contentRange: res.headers.get('content-range'),
      filename: filenameOf(res.headers.get('content-disposition')),
    };
  }

  /** The whole artifact, checked against the sha256 the server reports (and the listing's, when given). */
  async downloadVerified(artifactId: string, expectedSha256?: string): Promise<{ bytes: Uint8Array; sha256: string; filename: string | null }> {
    const d = await this.download(artifactId);
    const sha256 = await sha256Hex(d.bytes);
    if (d.sha256 !== sha256 || (expectedSha256 !== undefined && expectedSha256 !== sha256)) {
      throw new ApiError(0, 'DATA_LOSS', `artifact ${artifactId}: sha256 ${sha256} does not match ${expectedSha256 ?? d.sha256}`);
    }
    return { bytes: d.bytes, sha256, filename: d.filename };
  }

  /**
   * A job's events as they happen (Server-Sent Events), ending once the job
   * has finished. A dropped connection is resumed after the last event seen.
   */
  async *watchJob(jobId: string, opts: WatchOptions = {}): AsyncGenerator<EventDto> {
    let last = opts.afterId;
    let retryMs = 1000;
    let reconnects = opts.reconnects ?? 5;
    for (;;) {
      let ended = false;
      try {
        const res = await this.raw('GET', `/v1/jobs/${enc(jobId)}/events`, {
          headers: { accept: 'text/event-stream', ...(last !== undefined ? { 'last-event-id': String(last) } : {}) },
          signal: opts.signal,
          stream: true,
        });
        if (!res.body) throw new ApiError(res.status, 'INTERNAL', 'event stream without a body');
        for await (const m of parseSse(res.body, (ms) => (retryMs = ms))) {
          if (m.event === 'end') {
            ended = true;
            break;
          }
          if (m.event === 'error') {
            const e = (JSON.parse(m.data) as { error: { code: string; message: string; field?: string } }).error;
            throw new ApiError(500, e.code, e.message, e.field);
          }
          const event = JSON.parse(m.data) as EventDto;
          last = event.id;
          yield event;
        }
      } catch (e) {
        if (e instanceof ApiError || opts.signal?.aborted || reconnects <= 0) throw e;
      }
      if (ended || opts.signal?.aborted) return;
      // The stream closed early (a restart, a proxy): resume after what we saw.
      if (reconnects-- <= 0) throw new ApiError(0, 'UNAVAILABLE', `event stream of job ${jobId} kept dropping`);
      await new Promise((r) => setTimeout(r, retryMs));
    }
  }

  /** Follows the job to its end (by its events) and returns its final state. */
  async waitForJob(jobId: string, opts: WatchOptions & { onEvent?: (e: EventDto) => void } = {}): Promise<JobDto> {
    for await (const e of this.watchJob(jobId, opts)) opts.onEvent?.(e);
    const job = await this.getJob(jobId);
    if (!TERMINAL.has(job.status)) throw new ApiError(0, 'UNAVAILABLE', `event stream of job ${jobId} ended while it is ${job.status}`);
    return job;
  }
}

const enc = encodeURIComponent;

function filenameOf(disposition: string | null): string | null {
  if (!disposition) return null;
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  if (star) {
    try {
      return decodeURIComponent(star[1]!.trim());
    } catch {
      // fall through to the plain parameter
    }
  }
  return /filename="([^"]*)"/i.exec(disposition)?.[1] ?? null;
}

async function toApiError(res: Response): Promise<ApiError> {
  const requestId = res.headers.get('x-request-id') ?? undefined;
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const e = (body as { error?: { code?: unknown; message?: unknown; field?: unknown } } | null)?.error;
  if (e && typeof e.code === 'string') {
    const list: unknown = (body as { errors?: unknown }).errors;
    const errors = Array.isArray(list) ? list.filter((i): i is { field: string; message: string } => typeof i?.field === 'string' && typeof i?.message === 'string') : [];
    return new ApiError(res.status, e.code, typeof e.message === 'string' ? e.message : e.code, typeof e.field === 'string' ? e.field : undefined, requestId, errors);
  }
  return new ApiError(res.status, res.status === 404 ? 'NOT_FOUND' : 'INTERNAL', `HTTP ${res.status} ${res.statusText}`, undefined, requestId);
}
