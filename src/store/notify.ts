// Postgres LISTEN/NOTIFY for the whole process over one dedicated connection:
// new job events (SSE / WatchJob wake up instead of polling), cancel requests
// (a worker aborts within milliseconds), and new queued jobs (idle workers
// fetch at once). Notifications are hints: every listener re-reads the tables,
// and callers keep a slow poll as a fallback for a dropped connection.
import pg from 'pg';
import { childLogger } from '../runtime/logger.js';

const log = childLogger({ module: 'notify' });

export const CHANNELS = Object.freeze({
  /** Payload: job id. Sent by a trigger on `event` inserts (see the init migration). */
  events: 'ticketsmith_events',
  /** Payload: job id. Sent by cancelJob. */
  cancel: 'ticketsmith_cancel',
  /** Payload: job id. Sent when a job is (re)queued. */
  jobs: 'ticketsmith_jobs',
  /** No payload. Sent when webhook deliveries are enqueued (store/webhooks.ts). */
  webhooks: 'ticketsmith_webhooks',
});
export type Channel = (typeof CHANNELS)[keyof typeof CHANNELS];

type Listener = (payload: string) => void;

export class Notifier {
  private client: pg.Client | null = null;
  private readonly listeners = new Map<Channel, Set<Listener>>();
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | null = null;

  constructor(private readonly url: string) {}

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, application_name: 'ticketsmith-listen' });
    client.on('notification', (msg) => {
      const set = this.listeners.get(msg.channel as Channel);
      if (!set) return;
      for (const fn of [...set]) {
        try {
          fn(msg.payload ?? '');
        } catch (e) {
          log.error({ err: e, channel: msg.channel }, 'notification listener failed');
        }
      }
    });
    client.on('error', (err) => {
      // A client already replaced (or one that never finished connecting) has nothing left to reconnect.
      if (client !== this.client) return void client.end().catch(() => {});
      log.warn({ err }, 'LISTEN connection lost; reconnecting');
      this.scheduleReconnect();
    });
    try {
      await client.connect();
      for (const channel of Object.values(CHANNELS)) await client.query(`LISTEN ${channel}`);
    } catch (e) {
      await client.end().catch(() => {});
      throw e;
    }
    // Stopped while connecting: this connection must not outlive the notifier.
    if (this.closed) return void (await client.end().catch(() => {}));
    this.client = client;
  }

  private scheduleReconnect(): void {
    const old = this.client;
    this.client = null;
    void old?.end().catch(() => {});
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closed) return;
      this.connect().then(
        () => {
          // Whatever was sent while disconnected is lost: wake everyone to re-read.
          for (const [, set] of this.listeners) for (const fn of [...set]) fn('');
        },
        () => this.scheduleReconnect(),
      );
    }, 1000);
    this.reconnectTimer.unref();
  }

  /** Calls `fn` with each payload on `channel` (an empty payload means "anything may have changed"). */
  on(channel: Channel, fn: Listener): () => void {
    let set = this.listeners.get(channel);
    if (!set) this.listeners.set(channel, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /**
   * Resolves when `channel` carries `payload` (or an empty wake-up), after
   * `timeoutMs`, or when `signal` aborts; never rejects.
   */
  wait(channel: Channel, payload: string | null, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<void> {
    return new Promise((resolve) => {
      if (opts.signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        off();
        opts.signal?.removeEventListener('abort', done);
        resolve();
      };
      const off = this.on(channel, (p) => {
        if (payload === null || p === '' || p === payload) done();
      });
      const timer = setTimeout(done, opts.timeoutMs);
      opts.signal?.addEventListener('abort', done, { once: true });
    });
  }

  async stop(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.listeners.clear();
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }
}
