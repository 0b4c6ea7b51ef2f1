// The fetch loop both queue consumers run (the job worker and the webhook
// dispatcher): fetch as many entries as there are free handler slots, hand
// each to `handle`, and when the queue is empty or every slot is busy, sleep
// until the poll interval passes or something wakes the loop (a NOTIFY, a
// handler finishing, a retry falling due, stop).
import type PgBoss from 'pg-boss';

export interface QueuePollOptions<T> {
  boss: PgBoss;
  queue: string;
  /** Handlers at once. */
  concurrency: number;
  pollSeconds: number;
  handle(entry: PgBoss.Job<T>): Promise<void>;
  /** A fetch failed (the database away, say); the loop sleeps and tries again. */
  onFetchError(err: unknown): void;
}

export class QueuePoll<T extends object> {
  private readonly handlers = new Set<Promise<void>>();
  private wakeLoop: (() => void) | null = null;
  private stopped = false;
  private done: Promise<void> | null = null;

  constructor(private readonly o: QueuePollOptions<T>) {}

  get started(): boolean {
    return this.done !== null;
  }

  start(): void {
    this.done ??= this.loop();
  }

  /** Ends a sleep now (new entries, a slot freed, a retry due). */
  wake(): void {
    this.wakeLoop?.();
  }

  /** Stops fetching; resolves once the loop has left and every handler it started has settled. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    // The loop may be inside a fetch: wait for it before collecting handlers.
    await this.done;
    await Promise.allSettled([...this.handlers]);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const free = this.o.concurrency - this.handlers.size;
      if (free > 0) {
        let entries: PgBoss.Job<T>[] = [];
        try {
          entries = await this.o.boss.fetch<T>(this.o.queue, { batchSize: free });
        } catch (err) {
          if (!this.stopped) this.o.onFetchError(err);
        }
        for (const entry of entries) this.track(this.o.handle(entry));
        if (entries.length > 0) continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.o.pollSeconds * 1000);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.wakeLoop = done;
      });
      this.wakeLoop = null;
    }
  }

  private track(p: Promise<void>): void {
    this.handlers.add(p);
    void p.finally(() => {
      this.handlers.delete(p);
      this.wake();
    });
  }
}
