// The live path, from a write to a subscriber's socket. Every stage lives in src/live/:
//
//   channel   notify.ts        A write NOTIFYs a PostgreSQL channel inside its transaction, so the
//                              note leaves only after COMMIT (a rolled-back write announces nothing).
//   note      notes.ts         Each channel's payload type, and the one size limit (MAX_NOTE_BYTES).
//   feed      feed.ts          Each process LISTENs once per channel (Notifier, below); a KeyedFeed
//             feeds.ts         turns each note into data once (one query, or none when the note
//             run-feeds.ts     carries it) and hands it to that key's local subscribers, in order.
//             loss-feed.ts     Lost notes (the LISTEN connection dropped) make subscribers catch up.
//   queue     live-queue.ts    Each subscriber's bounded queue: coalesces, and drops a subscriber
//             catch-up.ts      that falls too far behind; catch-up replays from the tables.
//   shared    shared-results.ts  Subscribers with the same query and variables get one execution
//   execution                    per event, not one each.
//   socket    (server.ts)      graphql-ws writes each result to its WebSocket.
import { EventEmitter } from 'node:events';
import { sql, type SQL } from 'drizzle-orm';
import type { Database, Executor, Unlisten } from '../db/client.js';
import type { EventNote, KeyRevokedNote, LossNote, RunNote, RunQueuedNote } from './notes.js';

export const Channels = {
  runQueued: 'loralab_run_queued',
  runChanged: 'loralab_run_changed',
  lossReported: 'loralab_loss',
  runEvent: 'loralab_run_event',
  keyRevoked: 'loralab_key_revoked',
} as const;
export type Channel = (typeof Channels)[keyof typeof Channels];

/** The note each channel carries. */
export interface NoteOf {
  [Channels.runQueued]: RunQueuedNote;
  [Channels.runChanged]: RunNote;
  [Channels.lossReported]: LossNote;
  [Channels.runEvent]: EventNote;
  [Channels.keyRevoked]: KeyRevokedNote;
}

export function notify<C extends Channel>(tx: Executor, channel: C, payload: NoteOf[C]) {
  return tx.execute(sql`select pg_notify(${channel}, ${JSON.stringify(payload)})`);
}

/** A NOTIFY per payload, in order, all in one statement (a sweep queues a thousand runs at once). */
export async function notifyEach<C extends Channel>(tx: Executor, channel: C, payloads: NoteOf[C][]) {
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
  async on<C extends Channel>(channel: C, handler: (payload: NoteOf[C]) => void): Promise<() => void> {
    const listener = (payload: NoteOf[C]) => handler(payload);
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
