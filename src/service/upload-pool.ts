// A small, bounded pool of worker threads that turn a model upload into its
// checked files and architecture summary (unpack the archive, read
// model.json, build the model in TF.js: checkModelUpload in models.ts). That
// work is CPU-bound and synchronous in places (inflate, untar, TF.js weight
// decoding), so on the main thread one large upload would stall every other
// request; here it runs beside the event loop. Uploads beyond the pool's size
// wait their turn. Dataset uploads (checkDatasetUpload in dataset-uploads.ts)
// take the same threads. A ServiceError thrown in a thread comes back as the same
// ServiceError (code, message, field); anything else as a plain Error, which
// the doors report as INTERNAL without its text.
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { ModelLimits } from '../engine/models/budget.js';
import { childLogger } from '../runtime/logger.js';
import type { NamedFile } from './archive.js';
import { isErrorCode, ServiceError } from './errors.js';

const log = childLogger({ module: 'upload-pool' });

export type UploadInput = { files: NamedFile[] } | { archive: Uint8Array };

export interface CheckedUpload {
  /** model.json and the weight files it names, relative to model.json. */
  files: NamedFile[];
  architecture: Record<string, unknown>;
  /** 'tfjs-layers', or the framework an imported model came from ('onnx', 'keras', 'h5'). */
  format?: string;
}

/** Caps on one dataset upload (dataset-uploads.ts, from the service config; plain data: they cross to the thread). */
export interface DatasetUploadCaps {
  /** The request body, and the unpacked files together (TICKETSMITH_MAX_UPLOAD_BYTES). */
  maxBytes: number;
  /** Most files (TICKETSMITH_MAX_UPLOAD_FILES). */
  maxFiles: number;
  /** One data file, unpacked (TICKETSMITH_MAX_DATASET_BYTES). */
  maxFileBytes: number;
  /** Expansion of a compressed member or file (TICKETSMITH_MAX_DATASET_RATIO). */
  maxRatio: number;
  probeSeconds: number;
}

/** What an upload thread hands back: the files to store and the summary for Dataset.shapes. */
export interface CheckedDataset {
  files: NamedFile[];
  format: string;
  shapes: Record<string, unknown>;
  sha256: string | null;
}

/** A model upload, or (with `dataset`) a dataset upload under those caps. */
export type ToUploadWorker = { id: number; upload: UploadInput; maxBytes: number; limits: ModelLimits; dataset?: DatasetUploadCaps };
export type FromUploadWorker =
  | { id: number; ok: true; result: CheckedUpload | CheckedDataset; threadId: number }
  | { id: number; ok: false; error: { name: string; message: string; code?: string; field?: string }; threadId: number; retire?: boolean };

interface Task {
  msg: ToUploadWorker;
  resolve(r: CheckedUpload | CheckedDataset): void;
  reject(e: unknown): void;
}

interface Slot {
  worker: Worker;
  task: Task | null;
}

/**
 * ArrayBuffers that can move to the other thread instead of being copied:
 * those a single view covers whole. A Buffer cut from Node's shared pool
 * (small Buffers are) must be copied, or moving it would empty its neighbours.
 */
export function transferables(views: Uint8Array[]): ArrayBuffer[] {
  const uses = new Map<ArrayBufferLike, Uint8Array[]>();
  for (const v of views) uses.set(v.buffer, [...(uses.get(v.buffer) ?? []), v]);
  const out: ArrayBuffer[] = [];
  for (const [buf, vs] of uses) {
    if (buf instanceof ArrayBuffer && vs.length === 1 && vs[0]!.byteOffset === 0 && vs[0]!.byteLength === buf.byteLength && buf.byteLength > 0) out.push(buf);
  }
  return out;
}

export class UploadPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private nextId = 1;
  /** 'task-start' / 'task-end' with { id, threadId }: what tests and logs watch. */
  readonly events = new EventEmitter();

  constructor(readonly size: number) {}

  /** Checks an upload in a worker thread; rejects with the ServiceError the check threw. */
  check(upload: UploadInput, maxBytes: number, limits: ModelLimits): Promise<CheckedUpload> {
    return new Promise<CheckedUpload>((resolve, reject) => {
      this.queue.push({ msg: { id: this.nextId++, upload, maxBytes, limits }, resolve: (r) => resolve(r as CheckedUpload), reject });
      this.pump();
    });
  }

  /** Checks a dataset upload in a worker thread (checkDatasetUpload). */
  checkDataset(upload: UploadInput, caps: DatasetUploadCaps): Promise<CheckedDataset> {
    return new Promise<CheckedDataset>((resolve, reject) => {
      const limits = { maxParams: 0, maxLayerParams: 0, maxLayers: 0, maxLayerOutput: 0, maxBytes: caps.maxBytes };
      this.queue.push({ msg: { id: this.nextId++, upload, maxBytes: caps.maxBytes, limits, dataset: caps }, resolve: (r) => resolve(r as CheckedDataset), reject });
      this.pump();
    });
  }

  /** Uploads being checked now, and waiting. */
  load(): { busy: number; waiting: number } {
    return { busy: this.slots.filter((s) => s.task).length, waiting: this.queue.length };
  }

  async close(): Promise<void> {
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => !s.task);
      if (!slot && this.slots.length < this.size) slot = this.spawn();
      if (!slot) return;
      const task = this.queue.shift()!;
      slot.task = task;
      // A thread at work keeps the process up; an idle one does not.
      slot.worker.ref();
      this.events.emit('task-start', { id: task.msg.id, threadId: slot.worker.threadId });
      // Copied, not moved: the caller's bytes stay usable (a memcpy, cheap next to the check itself).
      slot.worker.postMessage(task.msg);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./upload-worker-boot.mjs', import.meta.url), { execArgv: [] });
    const slot: Slot = { worker, task: null };
    worker.unref();
    worker.on('message', (m: FromUploadWorker) => {
      const task = slot.task;
      if (!task || task.msg.id !== m.id) return;
      this.finish(slot, m.threadId);
      if (m.ok) task.resolve(m.result);
      else task.reject(fromWire(m.error));
      // The thread asked to go (upload-worker.ts): out of the pool now, a fresh one spawns when needed.
      if (!m.ok && m.retire) this.retire(slot);
    });
    // Without an 'error' listener a thread's uncaught error would be the main thread's too.
    worker.on('error', (err) => log.error({ err }, 'upload worker thread failed'));
    worker.on('exit', (code) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      const task = slot.task;
      if (task) {
        this.finish(slot, worker.threadId);
        task.reject(new Error(`upload worker thread exited with code ${code}`));
      }
      this.pump();
    });
    this.slots.push(slot);
    return slot;
  }

  private retire(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    void slot.worker.terminate();
  }

  private finish(slot: Slot, threadId: number): void {
    const id = slot.task?.msg.id;
    slot.task = null;
    slot.worker.unref();
    this.events.emit('task-end', { id, threadId });
    queueMicrotask(() => this.pump());
  }
}

function fromWire(e: { name: string; message: string; code?: string; field?: string }): Error {
  if (e.code !== undefined && isErrorCode(e.code)) return new ServiceError(e.code, e.message, e.field);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

let shared: UploadPool | null = null;

/** The process's upload pool (created on first use with `size` threads). */
export function uploadPool(size: number): UploadPool {
  shared ??= new UploadPool(size);
  return shared;
}
