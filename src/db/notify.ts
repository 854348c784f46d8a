// Live fan-out through Postgres LISTEN/NOTIFY. A write NOTIFYs inside its transaction, so the message
// leaves only after COMMIT; each server process LISTENs once per channel and fans out in memory to
// its own subscribers. Payloads stay small (ids and step ranges), far below NOTIFY's 8,000 bytes.
import { EventEmitter } from 'node:events';
import { sql, type SQL } from 'drizzle-orm';
import type { Database, Executor, Unlisten } from './client.js';

export const Channels = {
  runQueued: 'loralab_run_queued',
  runChanged: 'loralab_run_changed',
  lossReported: 'loralab_loss',
  runEvent: 'loralab_run_event',
  keyRevoked: 'loralab_key_revoked',
} as const;
export type Channel = (typeof Channels)[keyof typeof Channels];

export function notify(tx: Executor, channel: Channel, payload: object) {
  return tx.execute(sql`select pg_notify(${channel}, ${JSON.stringify(payload)})`);
}

/** A NOTIFY per payload, in order, all in one statement (a sweep queues a thousand runs at once). */
export async function notifyEach(tx: Executor, channel: Channel, payloads: object[]) {
  if (payloads.length === 0) return;
  const notes = JSON.stringify(payloads.map((p) => JSON.stringify(p)));
  await tx.execute(sql`select pg_notify(${channel}, note) from json_array_elements_text(${notes}::json) with ordinality as n(note, i) order by i`);
}

/**
 * pg_notify as an expression over the rows of a statement, with a json payload built in SQL: the
 * hot paths write and announce in one statement instead of paying a round trip per NOTIFY.
 */
export const notifyExpression = (channel: Channel, payload: SQL) => sql`pg_notify(${channel}, (${payload})::text)`;

export class Notifier {
  private readonly emitter = new EventEmitter();
  private readonly listening = new Map<Channel, Promise<Unlisten>>();

  constructor(private readonly db: Database) {
    // Every subscription adds a listener; thousands are expected, so no leak warning at 10.
    this.emitter.setMaxListeners(0);
  }

  /** Calls `handler` with each payload on `channel` until the returned function is called. */
  async on<T = unknown>(channel: Channel, handler: (payload: T) => void): Promise<() => void> {
    const listener = (payload: T) => handler(payload);
    this.emitter.on(channel, listener);
    if (!this.listening.has(channel)) {
      this.listening.set(
        channel,
        this.db.listen(channel, (raw) => {
          let payload: unknown;
          try {
            payload = JSON.parse(raw);
          } catch {
            return; // not ours
          }
          this.emitter.emit(channel, payload);
        }),
      );
    }
    await this.listening.get(channel);
    return () => void this.emitter.off(channel, listener);
  }

  /**
   * `handler` runs whenever notifications may have been lost: the LISTEN connection dropped and is
   * back. Whoever follows a channel then catches up from the tables.
   */
  onMissed(handler: () => void): () => void {
    return this.db.onListenerReconnect(handler);
  }

  listenerCount(channel: Channel) {
    return this.emitter.listenerCount(channel);
  }

  async close() {
    const unlistens = [...this.listening.values()];
    this.listening.clear();
    this.emitter.removeAllListeners();
    await Promise.allSettled(unlistens.map(async (p) => (await p)()));
  }
}
