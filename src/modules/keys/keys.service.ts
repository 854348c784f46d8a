import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Database } from '../../db/client.js';
import { badInput, forbidden, notFound } from '../../graphql/errors.js';
import { parseId } from '../../graphql/ids.js';
import * as store from './keys.store.js';
import { Channels, notify } from '../../live/notify.js';
import type { KeyRevokedNote } from '../../live/notes.js';
import type { ApiRole } from './keys.store.js';
import type { ServiceDeps } from '../service-deps.js';

export type { ApiRole };

export interface Principal {
  keyId: string;
  name: string;
  role: ApiRole;
}

export const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');

const newKey = () => `llk_${randomBytes(32).toString('base64url')}`;

export async function createApiKey({ db: { orm: db } }: ServiceDeps, role: ApiRole, name: string) {
  const trimmed = name.trim();
  if (!trimmed || trimmed.length > 200) throw badInput('name', 'must be 1 to 200 characters');
  const key = newKey();
  const row = await store.insertKey(db, { name: trimmed, role, keyHash: hashKey(key) });
  return { id: row.id, name: row.name, role: row.role, key };
}

/**
 * Changes to the set of ADMIN keys take this lock: two servers starting together create one first
 * key, and of two revocations racing for the last two ADMIN keys the second sees the first's.
 */
const ADMIN_KEYS_LOCK_ID = 7_104_002;

/**
 * Revokes a key everywhere: this process forgets it now, other replicas on the NOTIFY. The last
 * usable ADMIN key is never revoked: nobody could create or revoke keys any more.
 */
export async function revokeApiKey({ db, authenticator }: ServiceDeps, id: string) {
  const keyId = parseId(id, 'id');
  const outcome = await db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${ADMIN_KEYS_LOCK_ID})`);
    const result = await store.revokeKeyUnlessLastAdmin(tx, keyId);
    if (result === 'revoked') await notify(tx, Channels.keyRevoked, { keyId } satisfies KeyRevokedNote);
    return result;
  });
  if (outcome === 'not found') throw notFound('id', 'API key', id);
  if (outcome === 'last admin') {
    throw forbidden('This is the last usable ADMIN key: revoking it would leave nobody able to manage keys. Create another ADMIN key first.', { field: 'id' });
  }
  authenticator.revoked(keyId);
  return outcome === 'revoked'; // false: it was revoked already
}

/**
 * On an empty database, the first admin key: LORALAB_ADMIN_KEY when given, else random.
 * Returns the key only when it was created now, so it is shown once. The advisory lock keeps two
 * replicas starting together from both creating one.
 */
export async function ensureAdminKey(db: Database, presetKey: string | undefined): Promise<string | null> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${ADMIN_KEYS_LOCK_ID})`);
    if ((await store.countKeys(tx)) > 0) return null;
    const key = presetKey ?? newKey();
    await store.insertKey(tx, { name: 'admin (first start)', role: 'ADMIN', keyHash: hashKey(key) });
    return key;
  });
}
