// Who a bearer key is, remembered per process. Agents call several times a second each, and every
// call would otherwise pay a database round trip for the same answer.
import { Channels, type Notifier } from '../../live/notify.js';
import type { Executor } from '../../db/client.js';
import { hashKey, type Principal } from './keys.service.js';
import * as store from './keys.store.js';

/** How long a remembered key is trusted without asking the database again. */
export const REMEMBER_KEY_MS = 10_000;
const MAX_REMEMBERED = 10_000;

/**
 * Revoking a key forgets it at once in the process that revoked it and, through the NOTIFY sent
 * with the revocation, in every other replica. REMEMBER_KEY_MS bounds what a replica that missed
 * the NOTIFY (its LISTEN connection was reconnecting) keeps believing. Unknown keys are not
 * remembered: each guess costs the guesser a round trip, not the next real key a stale answer.
 */
export class Authenticator {
  private readonly remembered = new Map<string, { principal: Principal; until: number }>();
  private readonly revocationListeners = new Set<(keyId: string) => void>();

  constructor(
    private readonly db: Executor,
    private readonly rememberMs = REMEMBER_KEY_MS,
  ) {}

  /** Listens for revocations until the notifier closes (with the server). */
  async start(notifier: Notifier) {
    await notifier.on(Channels.keyRevoked, (note) => this.revoked(note.keyId));
  }

  async authenticate(authorization: string | undefined): Promise<Principal | null> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) return null;
    const keyHash = hashKey(match[1]!);
    const known = this.remembered.get(keyHash);
    if (known && known.until > Date.now()) return known.principal;
    const row = await store.findActiveKeyByHash(this.db, keyHash);
    if (!row) {
      this.remembered.delete(keyHash);
      return null;
    }
    const principal: Principal = { keyId: row.id, name: row.name, role: row.role };
    if (this.remembered.size >= MAX_REMEMBERED) this.remembered.delete(this.remembered.keys().next().value!);
    this.remembered.set(keyHash, { principal, until: Date.now() + this.rememberMs });
    return principal;
  }

  /** Calls `listener` with every key revoked from now on, here or on another replica. */
  onRevoked(listener: (keyId: string) => void) {
    this.revocationListeners.add(listener);
    return () => void this.revocationListeners.delete(listener);
  }

  /** The key was revoked (here, or on another replica that said so through NOTIFY). */
  revoked(keyId: string) {
    this.forget(keyId);
    for (const listener of this.revocationListeners) listener(keyId);
  }

  /** The next use of the key asks the database again. */
  forget(keyId: string) {
    for (const [keyHash, { principal }] of this.remembered) if (principal.keyId === keyId) this.remembered.delete(keyHash);
  }
}
