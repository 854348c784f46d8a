import { and, eq, isNull, sql } from 'drizzle-orm';
import { apiKeys } from '../../db/schema.js';
import type { Executor } from '../../db/client.js';

export type ApiRole = 'VIEWER' | 'EDITOR' | 'ADMIN' | 'AGENT';
export type ApiKeyRecord = typeof apiKeys.$inferSelect;

export async function findActiveKeyByHash(db: Executor, keyHash: string) {
  const [row] = await db
    .select({ id: apiKeys.id, name: apiKeys.name, role: apiKeys.role })
    .from(apiKeys)
    .where(and(eq(apiKeys.keyHash, keyHash), isNull(apiKeys.revokedAt)))
    .limit(1);
  return row ?? null;
}

export async function insertKey(db: Executor, key: { name: string; role: ApiRole; keyHash: string }) {
  const [row] = await db.insert(apiKeys).values(key).returning();
  return row!;
}

export async function revokeKey(db: Executor, id: string) {
  const revoked = await db
    .update(apiKeys)
    .set({ revokedAt: sql`now()` })
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id });
  return revoked.length > 0;
}

export async function keyExists(db: Executor, id: string) {
  const [row] = await db.select({ id: apiKeys.id }).from(apiKeys).where(eq(apiKeys.id, id)).limit(1);
  return row != null;
}

export async function countKeys(db: Executor) {
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(apiKeys);
  return row!.n;
}
