// How many uploads one service process takes in at once. A model or dataset
// upload is held whole in memory while it is received, copied to an upload
// thread and unpacked there (up to TICKETSMITH_MAX_UPLOAD_BYTES each), so
// without a bound a burst of large uploads could exhaust the process. Both
// doors take a slot before reading a body; when every slot is taken the
// upload is refused at once with RATE_LIMITED (retry later, Retry-After)
// rather than queued, so nothing is buffered for it. One tenant may hold only
// its share of the slots (TICKETSMITH_TENANT_MAX_CONCURRENT_UPLOADS, half by
// default), so one tenant's uploads cannot shut every other tenant out; and
// the doors end an upload that stalls or drags (receiveTimer), so no slot is
// held by a client that has stopped sending.
import type { ServiceContext } from './context.js';
import { ServiceError } from './errors.js';
import { RateLimitedError } from './limits.js';

/** What a refused upload is told to wait: uploads take seconds, so a slot is likely free by then. */
export const UPLOAD_RETRY_AFTER_SECONDS = 5;

interface Slots {
  total: number;
  byTenant: Map<string, number>;
}

const inUse = new WeakMap<ServiceContext, Slots>();

function slotsOf(ctx: ServiceContext): Slots {
  let slots = inUse.get(ctx);
  if (!slots) inUse.set(ctx, (slots = { total: 0, byTenant: new Map() }));
  return slots;
}

/** Runs `fn` holding one upload slot of `ctx` for `tenant`; RATE_LIMITED when none is free or the tenant holds its share. */
export async function withUploadSlot<T>(ctx: ServiceContext, tenant: string, fn: () => Promise<T>): Promise<T> {
  const { maxConcurrentUploads: max, tenantMaxConcurrentUploads: share } = ctx.config;
  const slots = slotsOf(ctx);
  const mine = slots.byTenant.get(tenant) ?? 0;
  if (slots.total >= max) throw new RateLimitedError(`${max} uploads are being received already; retry shortly`, UPLOAD_RETRY_AFTER_SECONDS);
  if (mine >= share) {
    throw new RateLimitedError(`this tenant has ${mine} uploads being received already, the most one tenant may have at once; retry when one has finished`, UPLOAD_RETRY_AFTER_SECONDS);
  }
  slots.total++;
  slots.byTenant.set(tenant, mine + 1);
  try {
    return await fn();
  } finally {
    slots.total--;
    const left = (slots.byTenant.get(tenant) ?? 1) - 1;
    if (left > 0) slots.byTenant.set(tenant, left);
    else slots.byTenant.delete(tenant);
  }
}

/** Uploads being received or checked now (for tests and metrics). */
export const uploadsInProgress = (ctx: ServiceContext): number => inUse.get(ctx)?.total ?? 0;

/**
 * The clock of one upload's receipt: `touch()` on every byte that arrives;
 * `onTimeout` is called once with UPLOAD_TIMEOUT when nothing arrived for
 * uploadIdleSeconds, or the whole body took longer than uploadReceiveSeconds.
 * `stop()` once the body is whole or the read failed.
 */
export interface ReceiveTimer {
  touch(): void;
  stop(): void;
}

/** The two settings a ReceiveTimer keeps (the config has them under these names). */
export interface ReceiveTimes {
  uploadIdleSeconds: number;
  uploadReceiveSeconds: number;
}

export function receiveTimer(times: ReceiveTimes, onTimeout: (e: ServiceError) => void): ReceiveTimer {
  const { uploadIdleSeconds: idle, uploadReceiveSeconds: total } = times;
  let done = false;
  const fire = (e: ServiceError) => {
    if (done) return;
    timer.stop();
    onTimeout(e);
  };
  const idleTimer = setTimeout(() => fire(new ServiceError('UPLOAD_TIMEOUT', `body: the upload sent nothing for ${idle} s; send it again without pausing`, 'body')), idle * 1000);
  const totalTimer = setTimeout(() => fire(new ServiceError('UPLOAD_TIMEOUT', `body: the upload took longer than ${total} s to arrive; send it again faster`, 'body')), total * 1000);
  const timer: ReceiveTimer = {
    touch() {
      if (!done) idleTimer.refresh();
    },
    stop() {
      done = true;
      clearTimeout(idleTimer);
      clearTimeout(totalTimer);
    },
  };
  return timer;
}
