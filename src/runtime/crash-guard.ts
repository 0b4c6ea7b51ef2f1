// The process's last line of defence: an error no handler caught (a stream's
// 'error' with no listener, a rejected promise nobody awaited) is logged with
// its stack and counted, and the process keeps serving the other requests and
// jobs instead of dying with them. Installed by `ticketsmith serve` and
// `ticketsmith worker` only: tests and library users still see such bugs as
// crashes. Every count here is a bug to fix; /metrics exposes them.
import type { Logger } from 'pino';

export type CrashKind = 'exception' | 'rejection';

const counts: Record<CrashKind, number> = { exception: 0, rejection: 0 };
let installed: { exception: (e: unknown) => void; rejection: (e: unknown) => void } | null = null;

/** Uncaught errors survived since the guard was installed, by kind. */
export function uncaughtCounts(): Readonly<Record<CrashKind, number>> {
  return { ...counts };
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(`non-error thrown: ${String(e)}`);
}

/** Installs the handlers once per process; returns a function that removes them. */
export function installCrashGuard(log: Logger): () => void {
  if (!installed) {
    const on = (kind: CrashKind) => (e: unknown) => {
      counts[kind]++;
      // pino's err serialiser writes type, message and stack.
      log.error({ err: asError(e), kind, total: counts[kind] }, kind === 'exception' ? 'uncaught exception (process kept running)' : 'unhandled promise rejection (process kept running)');
    };
    installed = { exception: on('exception'), rejection: on('rejection') };
    process.on('uncaughtException', installed.exception);
    process.on('unhandledRejection', installed.rejection);
  }
  return () => {
    if (!installed) return;
    process.off('uncaughtException', installed.exception);
    process.off('unhandledRejection', installed.rejection);
    installed = null;
  };
}
