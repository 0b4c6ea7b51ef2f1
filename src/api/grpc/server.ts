// The gRPC door: ticketsmith.v1.Compression over a service runtime, plus the
// standard health service (grpc.health.v1.Health: SERVING while up,
// NOT_SERVING once stopping) and server reflection (v1 and v1alpha, serving
// the real .proto file descriptors, so grpcurl and friends can discover the
// contract: reflection.ts). Plaintext: put TLS in front
// of it, or extend startGrpcServer with server credentials, when it leaves a
// trusted network.
import { setMaxListeners } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { childLogger } from '../../runtime/logger.js';
import type { ServiceRuntime } from '../../service/index.js';
import { artifactHandlers } from './artifacts.js';
import { jobHandlers } from './jobs.js';
import { modelHandlers } from './models.js';
import { compressionService, SERVICE_NAME } from './proto.js';
import { addReflection } from './reflection.js';
import { strictService } from './wire.js';

const log = childLogger({ module: 'grpc' });

/** How long stop() lets calls in flight finish before cutting them, unless told otherwise. */
const SHUTDOWN_GRACE_MS = 3_000;

export interface GrpcServerHandle {
  port: number;
  stop(): Promise<void>;
}

function bind(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}

export async function startGrpcServer(rt: ServiceRuntime, opts: { host?: string; port?: number; graceMs?: number } = {}): Promise<GrpcServerHandle> {
  const server = new grpc.Server();
  // Watch streams never finish on their own: on stop they end (UNAVAILABLE) so the drain can finish.
  const closing = new AbortController();
  // Every WatchJob listens to it: as many listeners as streams is expected, not a leak.
  setMaxListeners(0, closing.signal);
  server.addService(strictService(compressionService), { ...modelHandlers(rt.ctx), ...jobHandlers(rt.ctx, closing.signal), ...artifactHandlers(rt.ctx) });
  const health = new HealthImplementation({ '': 'SERVING', [SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);
  addReflection(server);

  const host = opts.host ?? '127.0.0.1';
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const port = await bind(server, `${hostPart}:${opts.port ?? 0}`);
  log.info({ address: `${hostPart}:${port}` }, 'gRPC server listening');

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= new Promise<void>((resolve) => {
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(SERVICE_NAME, 'NOT_SERVING');
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, opts.graceMs ?? SHUTDOWN_GRACE_MS);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
      closing.abort();
    }));
  return { port, stop };
}
