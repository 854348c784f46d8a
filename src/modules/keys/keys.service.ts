import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Database, Executor } from '../../db/client.js';
import { badInput, notFound } from '../../graphql/errors.js';
import { parseId } from '../../graphql/ids.js';
import * as store from './keys.store.js';
import { Channels, notify } from '../../db/notify.js';
import type { Authenticator, KeyRevokedNote } from './authenticator.js';
import type { ApiRole } from './keys.store.js';

export type { ApiRole };

export interface Principal {
  keyId: string;
  name: string;
  role: ApiRole;
}

export const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');

const newKey = () => `llk_${randomBytes(32).toString('base64url')}`;

export async function createApiKey(db: Executor, role: ApiRole, name: string) {
  const trimmed = name.trim();
  if (!trimmed || trimmed.length > 200) throw badInput('name', 'must be 1 to 200 characters');
  const key = newKey();
  const row = await store.insertKey(db, { name: trimmed, role, keyHash: hashKey(key) });
  return { id: row.id, name: row.name, role: row.role, key };
}

/** Revokes a key everywhere: this process forgets it now, other replicas on the NOTIFY. */
export async function revokeApiKey(db: Database, authenticator: Authenticator, id: string) {
  const keyId = parseId(id, 'id');
  const revoked = await db.transaction(async (tx) => {
    if (!(await store.revokeKey(tx, keyId))) return false;
    await notify(tx, Channels.keyRevoked, { keyId } satisfies KeyRevokedNote);
    return true;
  });
  authenticator.forget(keyId);
  if (revoked) return true;
  if (!(await store.keyExists(db.orm, keyId))) throw notFound('id', 'API key', id);
  return false; // already revoked
}

const BOOTSTRAP_LOCK_ID = 7_104_002;

/**
 * On an empty database, the first admin key: LORALAB_ADMIN_KEY when given, else random.
 * Returns the key only when it was created now, so it is shown once. The advisory lock keeps two
 * replicas starting together from both creating one.
 */
export async function ensureAdminKey(db: Database, presetKey: string | undefined): Promise<string | null> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${BOOTSTRAP_LOCK_ID})`);
    if ((await store.countKeys(tx)) > 0) return null;
    const key = presetKey ?? newKey();
    await store.insertKey(tx, { name: 'admin (first start)', role: 'ADMIN', keyHash: hashKey(key) });
    return key;
  });
}
