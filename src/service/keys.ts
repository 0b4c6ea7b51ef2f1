// API keys: `tsk_` + 32 random bytes (base64url), shown once at creation; only
// the key's sha256 is stored. A key authenticates as one tenant. Lookups are
// cached briefly in memory, so a revoked key may work for up to
// AUTH_CACHE_MS more in processes that saw it recently.
import { createHash, randomBytes } from 'node:crypto';
import { startDatabase } from '../runtime/postgres.js';
import { closePrisma, createPrisma } from '../store/db.js';
import { migrate } from '../store/migrate.js';
import { findApiKeyByHash, insertApiKey, listApiKeyRows, revokeApiKeyRow, touchApiKey } from '../store/keys.js';
import type { ServiceContext } from './context.js';
import { apiKeyDto, type ApiKeyDto } from './dto.js';
import { invalid, notFound, ServiceError } from './errors.js';
import { isUuid } from './ids.js';

const KEY_PREFIX = 'tsk_';
const SHOWN_PREFIX = KEY_PREFIX.length + 8;
const AUTH_CACHE_MS = 10_000;
const TOUCH_EVERY_MS = 60_000;
const TENANT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;


export interface Principal {
  tenant: string;
  keyId: string;
}

interface CacheEntry {
  principal: Principal | null;
  until: number;
}

/** Key operations need only the database. */
type KeysContext = Pick<ServiceContext, 'prisma'>;

const caches = new WeakMap<KeysContext, Map<string, CacheEntry>>();
const touched = new Map<string, number>();

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function checkTenant(tenant: string): void {
  if (!TENANT.test(tenant)) throw invalid('tenant', 'tenant: 1-64 characters of letters, digits, ".", "_" or "-", starting with a letter or digit');
}

/** Creates a key for `tenant`; the returned `key` is the only copy there will ever be. */
export async function createApiKey(ctx: KeysContext, tenant: string): Promise<{ key: string; id: string; prefix: string }> {
  checkTenant(tenant);
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  const row = await insertApiKey(ctx.prisma, { tenant, prefix: key.slice(0, SHOWN_PREFIX), hash: hashKey(key) });
  return { key, id: row.id, prefix: row.prefix };
}

/** The tenant a key belongs to; UNAUTHENTICATED for a missing, unknown or revoked key. */
export async function authenticate(ctx: KeysContext, key: string | null | undefined): Promise<Principal> {
  if (!key) throw new ServiceError('UNAUTHENTICATED', 'an API key is required (Authorization: Bearer <key>)');
  if (!key.startsWith(KEY_PREFIX) || key.length > 200) throw new ServiceError('UNAUTHENTICATED', 'invalid API key');
  const hash = hashKey(key);
  let cache = caches.get(ctx);
  if (!cache) caches.set(ctx, (cache = new Map()));
  const now = Date.now();
  const hit = cache.get(hash);
  let principal: Principal | null;
  if (hit && hit.until > now) {
    principal = hit.principal;
  } else {
    const row = await findApiKeyByHash(ctx.prisma, hash);
    principal = row && row.revokedAt === null ? { tenant: row.tenant, keyId: row.id } : null;
    if (cache.size > 10_000) cache.clear();
    cache.set(hash, { principal, until: now + AUTH_CACHE_MS });
  }
  if (!principal) throw new ServiceError('UNAUTHENTICATED', 'invalid API key');
  // last_used_at is informational: at most one write per key per minute.
  if ((touched.get(principal.keyId) ?? 0) + TOUCH_EVERY_MS < now) {
    touched.set(principal.keyId, now);
    void touchApiKey(ctx.prisma, principal.keyId).catch(() => {});
  }
  return principal;
}

export async function listApiKeys(ctx: KeysContext, tenant: string): Promise<ApiKeyDto[]> {
  const rows = await listApiKeyRows(ctx.prisma, tenant);
  return rows.map(apiKeyDto);
}

export async function revokeApiKey(ctx: KeysContext, tenant: string, id: string): Promise<ApiKeyDto> {
  if (!isUuid(id)) throw notFound('API key', id);
  const { row, revoked } = await revokeApiKeyRow(ctx.prisma, tenant, id);
  if (!row) throw notFound('API key', id);
  if (revoked) caches.get(ctx)?.clear();
  return apiKeyDto(row);
}

/**
 * Runs `fn` with the key operations on the embedded database (attaching to
 * the one a running `serve` started, if any), migrated first; closes both
 * after. For the CLI's `keys` verb, which needs no queue, blobs or worker.
 */
export async function withKeysDatabase<T>(fn: (ctx: KeysContext) => Promise<T>): Promise<T> {
  const db = await startDatabase();
  const prisma = createPrisma(db.url, { poolSize: 2 });
  try {
    await migrate(db.url);
    return await fn({ prisma });
  } finally {
    await closePrisma(prisma);
    await db.stop();
  }
}
