// Puts the REST app on a socket and takes it off again: stop() refuses new
// connections, lets requests in flight finish for a grace period, then cuts
// what is left (open SSE streams would otherwise hold shutdown forever).
import type { Server } from 'node:http';
import { setMaxListeners } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { ServiceRuntime } from '../../service/index.js';
import { createRestApp, type RestOptions } from './app.js';

export interface RestServer {
  server: Server;
  host: string;
  port: number;
  /** http://host:port (IPv6 hosts in brackets). */
  url: string;
  stop(graceMs?: number): Promise<void>;
}

export interface RestServerOptions extends RestOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
}

export async function startRestServer(rt: ServiceRuntime, opts: RestServerOptions = {}): Promise<RestServer> {
  const host = opts.host ?? '127.0.0.1';
  const closing = new AbortController();
  // Every open SSE stream listens to it: as many listeners as streams is expected, not a leak.
  setMaxListeners(0, closing.signal);
  const app = createRestApp(rt, { ...opts, closing: closing.signal });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(opts.port ?? 8080, host, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once('error', reject);
  });
  // Longer than common load balancers' idle timeouts, so they close first.
  server.keepAliveTimeout = 65_000;
  // Node's own cap on receiving a request (300 s by default) cuts the connection without an answer: it
  // sits just past the upload receive deadline, so an upload that drags gets that deadline's 408 first.
  server.requestTimeout = (rt.ctx.config.uploadReceiveSeconds + 5) * 1000;

  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  let stopping: Promise<void> | null = null;
  return {
    server,
    host,
    port,
    url: `http://${shown === '0.0.0.0' ? '127.0.0.1' : shown === '[::]' ? '[::1]' : shown}:${port}`,
    stop: (graceMs = 2_000) =>
      (stopping ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        // A keep-alive connection that goes idle during the drain would otherwise stay
        // open until keepAliveTimeout and hold the close: sweep idle ones until done.
        const sweep = setInterval(() => server.closeIdleConnections(), 200);
        server.close(() => {
          clearTimeout(force);
          clearInterval(sweep);
          resolve();
        });
        // SSE streams never finish on their own: they end now, after what they have sent.
        closing.abort();
      })),
  };
}
