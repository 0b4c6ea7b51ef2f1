// What every client verb shares: the connection flags, the REST client they
// build, the exit-code policy (0 done, 1 the call or the job failed, 2 bad
// usage with a short usage line) and the plain-text tables of list verbs.
// Client verbs import only this, the REST client and small pure helpers:
// never TF.js, Prisma, pg or the servers, so they start fast (see main.ts).
import { ApiError, TicketsmithClient } from '../client/index.js';
import { UsageError } from './argv.js';

export interface VerbIo {
  out(text: string): void;
  err(text: string): void;
}

export const stdio: VerbIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

export const DEFAULT_URL = 'http://127.0.0.1:8080';
export const CONNECTION = { url: 'string', key: 'string' } as const;

export const connectionHelp = `Connection:
  --url <url>          the server (default TICKETSMITH_URL or ${DEFAULT_URL})
  --key <key>          API key (default TICKETSMITH_API_KEY)`;

export function client(options: Record<string, string | boolean>): TicketsmithClient {
  const url = String(options.url ?? process.env.TICKETSMITH_URL ?? DEFAULT_URL);
  const key = options.key !== undefined ? String(options.key) : process.env.TICKETSMITH_API_KEY;
  if (!key) throw new UsageError('an API key is needed: --key or TICKETSMITH_API_KEY (create one with `ticketsmith keys create --tenant NAME`)');
  return new TicketsmithClient({ baseUrl: url, apiKey: key });
}

/**
 * The short form of a verb's help for a usage error: its `usage:` lines (up
 * to the first blank line) and where the rest is. The whole help would bury
 * the one line that says what was wrong.
 */
export function shortUsage(usage: string, command: string): string {
  const head = usage.split('\n\n')[0]!.trimEnd();
  return `${head}\nsee 'ticketsmith ${command} --help'\n`;
}

/** Runs a verb body, turning usage and API errors into exit codes and one clear line. */
export async function runVerb(io: VerbIo, usage: () => string, command: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}\n${shortUsage(usage(), command)}`);
      return 2;
    }
    if (e instanceof ApiError) {
      io.err(`error: ${e.code}${e.field ? ` (${e.field})` : ''}: ${e.message}\n`);
      return 1;
    }
    // fetch's network failures: a TypeError whose cause says what happened.
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    if (e instanceof TypeError && cause) {
      io.err(`error: cannot reach the server (${cause.code ?? cause.message ?? 'network error'}); is \`ticketsmith serve\` running?\n`);
      return 1;
    }
    throw e;
  }
}

/** Left-aligned columns under a header, two spaces apart; '-' for an empty cell. */
export function textTable(head: string[], rows: string[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === '' ? '-' : c)));
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...cells.map(line)].join('\n');
}

/** A byte count for people: 512 B, 3.1 KiB, 12.0 MiB. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}
