// How many uploads one service process takes in at once. A model or dataset
// upload is held whole in memory while it is received, copied to an upload
// thread and unpacked there (up to TICKETSMITH_MAX_UPLOAD_BYTES each), so
// without a bound a burst of large uploads could exhaust the process. Both
// doors take a slot before reading a body; when every slot is taken the
// upload is refused at once with RATE_LIMITED (retry later) rather than
// queued, so nothing is buffered for it.
import type { ServiceContext } from './context.js';
import { ServiceError } from './errors.js';

const inUse = new WeakMap<ServiceContext, number>();

/** Runs `fn` holding one upload slot of `ctx`; RATE_LIMITED when none is free. */
export async function withUploadSlot<T>(ctx: ServiceContext, fn: () => Promise<T>): Promise<T> {
  const max = ctx.config.maxConcurrentUploads;
  const used = inUse.get(ctx) ?? 0;
  if (used >= max) throw new ServiceError('RATE_LIMITED', `${max} uploads are being received already; retry shortly`);
  inUse.set(ctx, used + 1);
  try {
    return await fn();
  } finally {
    inUse.set(ctx, (inUse.get(ctx) ?? 1) - 1);
  }
}

/** Uploads being received or checked now (for tests and metrics). */
export const uploadsInProgress = (ctx: ServiceContext): number => inUse.get(ctx) ?? 0;
