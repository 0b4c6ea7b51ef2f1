// `ticketsmith serve`: the service on one machine. Opens the runtime
// (embedded Postgres unless DATABASE_URL is set), puts the REST and gRPC
// doors on it, runs an in-process worker unless --no-worker, prints where it
// listens, and on SIGINT/SIGTERM drains the doors (requests in flight finish
// within TICKETSMITH_SHUTDOWN_GRACE_SECONDS, streams end) before the runtime
// (the worker hands its job back to the queue) and the database, then exits 0.
import { parseArgs } from 'node:util';
import { UsageError } from './argv.js';
import { startGrpcServer } from '../api/grpc/server.js';
import { startRestServer } from '../api/rest/server.js';
import { installCrashGuard } from '../runtime/crash-guard.js';
import { childLogger } from '../runtime/logger.js';
import { openService, stopOnSignals, type OpenServiceOptions, type ServiceRuntime } from '../service/index.js';

export const serveUsage = () => `usage: ticketsmith serve [flags]

Runs the API (REST and gRPC) and, unless --no-worker, a worker in this process.
With no DATABASE_URL it starts an embedded PostgreSQL under .data/ (see TICKETSMITH_* variables).
  --host <addr>        listen address for both doors (default 127.0.0.1; 0.0.0.0 in containers)
  --port <n>           REST port (default 8080; 0 picks a free one)
  --grpc-port <n>      gRPC port (default 50051; 0 picks a free one)
  --no-grpc            REST only
  --no-worker          API only; run \`ticketsmith worker\` processes against the same database
`;

export interface StartedService {
  rt: ServiceRuntime;
  restUrl: string;
  restPort: number;
  /** host:port of the gRPC door, or null without it. */
  grpcAddress: string | null;
  /** Closes the doors, then the runtime (and an embedded database). */
  stop(): Promise<void>;
}

export interface StartServiceOptions {
  host?: string;
  port?: number;
  grpcPort?: number | null;
  worker?: OpenServiceOptions['worker'];
  service?: Omit<OpenServiceOptions, 'worker'>;
}

/** Opens the runtime and both doors; everything opened is closed again if a later step fails. */
export async function startService(opts: StartServiceOptions = {}): Promise<StartedService> {
  const host = opts.host ?? '127.0.0.1';
  const rt = await openService({ ...opts.service, worker: opts.worker ?? true });
  const graceMs = rt.ctx.config.shutdownGraceSeconds * 1000;
  const closers: Array<() => Promise<void>> = [];
  const stop = async () => {
    // Both doors drain at once, each within the grace period.
    await Promise.all(closers.map((close) => close().catch(() => {})));
    await rt.stop();
  };
  try {
    const rest = await startRestServer(rt, { host, port: opts.port ?? 8080 });
    closers.push(() => rest.stop(graceMs));
    let grpcAddress: string | null = null;
    if (opts.grpcPort !== null) {
      const grpc = await startGrpcServer(rt, { host, port: opts.grpcPort ?? 50051, graceMs });
      closers.push(() => grpc.stop());
      grpcAddress = `${host.includes(':') ? `[${host}]` : host}:${grpc.port}`;
    }
    let stopping: Promise<void> | null = null;
    return { rt, restUrl: rest.url, restPort: rest.port, grpcAddress, stop: () => (stopping ??= stop()) };
  } catch (e) {
    await stop();
    throw e;
  }
}

function port(value: string | undefined, flag: string, def: number): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${flag}: a port number from 0 to 65535`);
  return n;
}

export async function serveCommand(argv: string[]): Promise<number> {
  let values: { host?: string; port?: string; 'grpc-port'?: string; 'no-grpc'?: boolean; 'no-worker'?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { host: { type: 'string' }, port: { type: 'string' }, 'grpc-port': { type: 'string' }, 'no-grpc': { type: 'boolean' }, 'no-worker': { type: 'boolean' } },
      strict: true,
    }));
  } catch (e) {
    // main.ts prints it with the usage line (not the whole help), exit 2.
    throw new UsageError((e as Error).message);
  }
  let restPort: number;
  let grpcPort: number | null;
  try {
    restPort = port(values.port, '--port', 8080);
    grpcPort = values['no-grpc'] ? null : port(values['grpc-port'], '--grpc-port', 50051);
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    return 2;
  }
  // From here on an error no handler caught is logged and counted, not fatal (see crash-guard.ts).
  installCrashGuard(childLogger({ module: 'serve' }));
  const svc = await startService({ host: values.host, port: restPort, grpcPort, worker: !values['no-worker'] });
  process.stdout.write(
    [
      `REST     ${svc.restUrl}  (dashboard ${svc.restUrl}/, OpenAPI ${svc.restUrl}/openapi.json)`,
      ...(svc.grpcAddress ? [`gRPC     ${svc.grpcAddress}  (ticketsmith.v1.Compression, health, reflection)`] : []),
      `worker   ${svc.rt.worker ? `in process (${svc.rt.worker.id})` : 'none (--no-worker)'}`,
      `database ${svc.rt.db.embedded ? 'embedded PostgreSQL' : 'DATABASE_URL'}`,
      'Ctrl-C stops it.',
      '',
    ].join('\n'),
  );
  // stopOnSignals exits the process once the runtime has stopped.
  stopOnSignals(svc.rt, async () => {
    await svc.stop();
  });
  return new Promise<number>(() => {});
}
