// The LISTEN connection to PostgreSQL, kept alive across restarts and failovers. NOTIFY is
// fire-and-forget: whatever is sent while the connection is down reaches no one, so whoever
// listens must learn when it is back (onReconnect) and catch up from the tables.
//
// postgres.js's own sql.listen() re-listens after a drop, but once: if the database still refuses
// at that moment, the error is swallowed and the channel stays deaf for good (seen here with a
// 12-second restart). This keeps its own connection and retries until the database answers.
import postgres from 'postgres';
import { connectPostgres } from './client.js';

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

const retryDelayMs = (attempt: number) => Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** attempt);

const quoted = (channel: string) => `"${channel.replace(/"/g, '""')}"`;

export class PostgresListener {
  private readonly sql: postgres.Sql;
  private readonly channels = new Map<string, Set<(payload: string) => void>>();
  private readonly reconnectHandlers = new Set<() => void>();
  private reconnecting: Promise<void> | null = null;
  private closed = false;

  constructor(url: string) {
    this.sql = connectPostgres(url, {
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      fetch_types: false,
      onnotice: () => {},
      connection: { application_name: 'loralab listener' },
      onclose: () => this.lost(),
      // postgres.js retries a connection that is being opened on its own, its pauses growing to
      // 20 s: far too long for a listener that is deaf meanwhile.
      backoff: (attempt) => retryDelayMs(attempt) / 1000,
      // Not in postgres.js's typings, but what its own listen() uses: every NotificationResponse.
      ...({ onnotify: (channel: string, payload: string) => this.channels.get(channel)?.forEach((fn) => fn(payload)) } as object),
    });
  }

  async listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
    let handlers = this.channels.get(channel);
    if (!handlers) {
      this.channels.set(channel, (handlers = new Set()));
      await this.sql.unsafe(`listen ${quoted(channel)}`);
    }
    handlers.add(onPayload);
    return async () => {
      const set = this.channels.get(channel);
      if (!set?.delete(onPayload) || set.size > 0) return;
      this.channels.delete(channel);
      if (!this.closed) await this.sql.unsafe(`unlisten ${quoted(channel)}`).catch(() => {});
    };
  }

  /** `handler` runs each time the connection is back after a drop, once it listens again. */
  onReconnect(handler: () => void): () => void {
    this.reconnectHandlers.add(handler);
    return () => void this.reconnectHandlers.delete(handler);
  }

  private lost() {
    if (this.closed || this.reconnecting) return;
    this.reconnecting = this.relisten().finally(() => (this.reconnecting = null));
  }

  /** LISTENs again on every channel, retrying until the database answers. */
  private async relisten() {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        const channels = [...this.channels.keys()];
        // The query opens a new connection; one simple-protocol round trip for every channel.
        await this.sql.unsafe(channels.length ? channels.map((c) => `listen ${quoted(c)}`).join('; ') : 'select 1');
        break;
      } catch {
        await new Promise((r) => setTimeout(r, retryDelayMs(attempt)));
      }
    }
    if (this.closed) return;
    for (const handler of this.reconnectHandlers) handler();
  }

  async close() {
    this.closed = true;
    await this.sql.end({ timeout: 5 });
  }
}
