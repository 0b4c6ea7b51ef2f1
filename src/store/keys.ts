// The api_key table (SQL only; key format, hashing and the auth cache are
// service/keys.ts's). Only a key's sha256 is stored, never the key.
import type { Db, Prisma } from './db.js';

export type ApiKeyRow = Prisma.ApiKeyGetPayload<object>;

export function insertApiKey(db: Db, key: { tenant: string; prefix: string; hash: string }): Promise<ApiKeyRow> {
  return db.apiKey.create({ data: key });
}

/** The key with this hash: its id, tenant and whether it was revoked. */
export function findApiKeyByHash(db: Db, hash: string): Promise<{ id: string; tenant: string; revokedAt: Date | null } | null> {
  return db.apiKey.findUnique({ where: { hash }, select: { id: true, tenant: true, revokedAt: true } });
}

export async function touchApiKey(db: Db, id: string): Promise<void> {
  await db.apiKey.update({ where: { id }, data: { lastUsedAt: new Date() } });
}

export function listApiKeyRows(db: Db, tenant: string): Promise<ApiKeyRow[]> {
  return db.apiKey.findMany({ where: { tenant }, orderBy: { createdAt: 'asc' } });
}

/** Revokes `tenant`'s key `id` unless it is revoked already; the row (null when there is none) and whether this call revoked it. */
export async function revokeApiKeyRow(db: Db, tenant: string, id: string): Promise<{ row: ApiKeyRow | null; revoked: boolean }> {
  const { count } = await db.apiKey.updateMany({ where: { id, tenant, revokedAt: null }, data: { revokedAt: new Date() } });
  const row = await db.apiKey.findFirst({ where: { id, tenant } });
  return { row, revoked: count === 1 };
}
