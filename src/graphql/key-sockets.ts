// Open WebSocket connections by the key that opened them. A revoked key must stop streaming: its
// sockets close the moment this process learns of the revocation (at once where it was revoked,
// through NOTIFY on every other replica), and a sweep every few seconds closes what a missed
// NOTIFY (a LISTEN connection that was reconnecting) left open.
import type { WebSocket } from 'ws';
import type { Logger } from 'pino';

/** graphql-ws's own code for "Forbidden", so clients treat both refusals alike. */
export const REVOKED_CLOSE_CODE = 4403;
export const REVOKED_REASON = 'Forbidden: the API key was revoked';

export class KeySockets {
  private readonly byKey = new Map<string, Set<WebSocket>>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    /** The ids among `ids` that are still usable keys. */
    private readonly activeKeyIds: (ids: string[]) => Promise<Set<string>>,
    private readonly log: Logger,
  ) {}

  add(keyId: string, socket: WebSocket) {
    let sockets = this.byKey.get(keyId);
    if (!sockets) this.byKey.set(keyId, (sockets = new Set()));
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      if (sockets.size === 0 && this.byKey.get(keyId) === sockets) this.byKey.delete(keyId);
    });
  }

  /** Closes every socket opened with the key. */
  revoked(keyId: string) {
    const sockets = this.byKey.get(keyId);
    if (!sockets) return;
    this.byKey.delete(keyId);
    for (const socket of sockets) socket.close(REVOKED_CLOSE_CODE, REVOKED_REASON);
    this.log.info({ keyId, sockets: sockets.size }, 'closed the WebSockets of a revoked key');
  }

  /** Asks the database about every key with open sockets, every `intervalMs`. */
  start(intervalMs: number) {
    this.timer = setInterval(() => {
      this.sweep().catch((err) => this.log.error({ err }, 'checking the keys of open WebSockets failed'));
    }, intervalMs);
    this.timer.unref();
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async sweep() {
    const keyIds = [...this.byKey.keys()];
    if (keyIds.length === 0) return;
    const active = await this.activeKeyIds(keyIds);
    for (const keyId of keyIds) if (!active.has(keyId)) this.revoked(keyId);
  }
}
