import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import { apiKeys } from '../../db/schema.js';
import { rows, type Executor } from '../../db/client.js';

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

/**
 * revokeKeyUnlessLastAdmin: revokes the key unless it is the last usable ADMIN key. The caller
 * holds the ADMIN keys lock, so "another ADMIN key remains" cannot change before this commits.
 */
export async function revokeKeyUnlessLastAdmin(db: Executor, id: string): Promise<'revoked' | 'already revoked' | 'last admin' | 'not found'> {
  const [row] = await rows<{ revoked_now: boolean; was_revoked: boolean }>(
    db,
    sql`/* revokeKeyUnlessLastAdmin */
    with target as (select id, role, revoked_at from api_keys where id = ${id}),
    revoked as (
      update api_keys k set revoked_at = now()
      from target t
      where k.id = t.id and t.revoked_at is null
        and (t.role <> 'ADMIN' or exists (
          select 1 from api_keys other where other.role = 'ADMIN' and other.revoked_at is null and other.id <> t.id))
      returning k.id
    )
    select exists (select 1 from revoked) as revoked_now, t.revoked_at is not null as was_revoked from target t`,
  );
  if (!row) return 'not found';
  if (row.revoked_now) return 'revoked';
  return row.was_revoked ? 'already revoked' : 'last admin';
}

/** The ids among `ids` whose keys are not revoked. */
export async function findActiveKeyIds(db: Executor, ids: string[]) {
  const found = await db
    .select({ id: apiKeys.id })
    .from(apiKeys)
    .where(and(inArray(apiKeys.id, ids), isNull(apiKeys.revokedAt)));
  return new Set(found.map((r) => r.id));
}

export async function countKeys(db: Executor) {
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(apiKeys);
  return row!.n;
}
