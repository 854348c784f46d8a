// NOTIFY after the commit, many at once. PostgreSQL serialises the commits of every transaction
// that has sent a NOTIFY: it holds one database-wide lock from queueing the notification until the
// commit has been flushed to disk. A hot write that notified in its own transaction (a loss report,
// a thousand agents a second) therefore committed one at a time, a WAL flush each: on this
// project's machines 8 writers managed 270 commits/s with a NOTIFY, 1,440 without (pgbench, the
// same insert). Here the write commits without it (group commit applies), and the notifications
// of every write that finished meanwhile leave together in one statement on a connection of their
// own, which does not wait for its flush (synchronous_commit off): a notification is a hint, not
// data, and is delivered once committed either way.
//
// The caller waits until its notification is sent before it answers its client, so a client that
// sends its next write after the answer has it notified after the first, as before.
import type postgres from 'postgres';

interface Pending {
  channel: string;
  payload: string;
  done: () => void;
}

export class NotifyBatcher {
  private queue: Pending[] = [];
  private sending: Promise<void> | null = null;

  constructor(
    /** A client of one connection with synchronous_commit off. */
    private readonly sql: postgres.Sql,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Resolves once the notification has been sent (or sending it failed, which is logged). */
  notify(channel: string, payload: string): Promise<void> {
    return new Promise((done) => {
      this.queue.push({ channel, payload, done });
      this.sending ??= this.sendAll();
    });
  }

  private async sendAll() {
    while (this.queue.length) {
      const batch = this.queue;
      this.queue = [];
      try {
        await this.sql`/* notifyBatch */ select pg_notify(c, p) from unnest(${batch.map((n) => n.channel)}::text[], ${batch.map((n) => n.payload)}::text[])
          with ordinality as n(c, p, i) order by i`;
      } catch (err) {
        // The writes are committed; their subscribers catch up on their next notification.
        this.onError(err);
      }
      for (const n of batch) n.done();
    }
    this.sending = null;
  }

  async close() {
    await this.sending;
  }
}

