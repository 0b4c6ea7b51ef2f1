// `ticketsmith keys create --tenant NAME` (and `list`, `revoke`): API keys
// from the command line. The new key goes to stdout, alone on its line, so a
// script can capture it; it is shown this once and never stored.
// Works beside a running `serve` on the embedded database (it attaches to it).
import { parseArgs } from 'node:util';
import { createApiKey, listApiKeys, revokeApiKey, withKeysDatabase } from '../service/keys.js';
import { ServiceError } from '../service/errors.js';

export interface KeysIo {
  out(line: string): void;
  err(line: string): void;
}

export const keysUsage = () => USAGE;
const USAGE = `usage:
  ticketsmith keys create --tenant NAME     print a new API key for NAME (shown once)
  ticketsmith keys list --tenant NAME       list NAME's keys (prefixes only)
  ticketsmith keys revoke --tenant NAME --id KEY_ID`;

/** Runs `keys <verb> ...`; returns the process exit code. */
export async function keysCommand(argv: string[], io: KeysIo = { out: (l) => console.log(l), err: (l) => console.error(l) }): Promise<number> {
  const [verb, ...rest] = argv;
  let values: { tenant?: string; id?: string };
  try {
    ({ values } = parseArgs({ args: rest, options: { tenant: { type: 'string' }, id: { type: 'string' } }, strict: true }));
  } catch (e) {
    io.err(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!verb || !['create', 'list', 'revoke'].includes(verb) || !values.tenant || (verb === 'revoke' && !values.id)) {
    io.err(USAGE);
    return 2;
  }
  const tenant = values.tenant;
  try {
    return await withKeysDatabase(async (ctx) => {
      if (verb === 'create') {
        const { key, id, prefix } = await createApiKey(ctx, tenant);
        io.err(`created key ${id} (${prefix}…) for tenant '${tenant}'; it is shown once:`);
        io.out(key);
      } else if (verb === 'list') {
        for (const k of await listApiKeys(ctx, tenant)) {
          io.out(`${k.id}  ${k.prefix}…  created ${k.createdAt}${k.revokedAt ? `  revoked ${k.revokedAt}` : ''}`);
        }
      } else {
        const k = await revokeApiKey(ctx, tenant, values.id!);
        io.out(`revoked ${k.id} (${k.prefix}…)`);
      }
      return 0;
    });
  } catch (e) {
    if (e instanceof ServiceError) {
      io.err(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
