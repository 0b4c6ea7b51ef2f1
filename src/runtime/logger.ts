// Structured logging: one pino JSON line per event, to stderr so stdout stays
// free for command output (a printed API key, a run's summary). Modules take a
// child logger with their own bindings (`module`, `jobId`, `workerId`).
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

function level(): string {
  if (process.env.LOG_LEVEL) return process.env.LOG_LEVEL;
  // node --test runs many processes; keep their output to what went wrong.
  return process.env.NODE_TEST_CONTEXT ? 'warn' : 'info';
}

export const logger: Logger = pino({ level: level(), base: { pid: process.pid } }, pino.destination(2));

export function childLogger(bindings: Record<string, unknown>): Logger {
  return logger.child(bindings);
}
