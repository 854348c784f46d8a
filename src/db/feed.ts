// Per-process fan-out of one NOTIFY channel to many local subscribers, keyed (by run, say). The
// channel is LISTENed once per process; each notification is turned into data once (one query),
// in order per key, and handed to every local subscriber of that key.
import type { Channel, Notifier } from './notify.js';

export class KeyedFeed<Note, Data> {
  private readonly subscribers = new Map<string, Set<(data: Data) => void>>();
  private readonly chains = new Map<string, Promise<void>>();
  private started: Promise<unknown> | null = null;

  constructor(
    private readonly notifier: Notifier,
    private readonly channel: Channel,
    /** The keys a notification concerns (a run id, an experiment id, …). */
    private readonly keysOf: (note: Note) => string[],
    /** Turns a notification into what subscribers get; null to skip. Runs once per notification. */
    private readonly load: (note: Note) => Promise<Data | null>,
    private readonly onError: (err: unknown) => void,
  ) {}

  async subscribe(key: string, deliver: (data: Data) => void): Promise<() => void> {
    this.started ??= this.notifier.on<Note>(this.channel, (note) => this.dispatch(note));
    await this.started;
    let set = this.subscribers.get(key);
    if (!set) this.subscribers.set(key, (set = new Set()));
    set.add(deliver);
    return () => {
      set!.delete(deliver);
      if (set!.size === 0 && this.subscribers.get(key) === set) this.subscribers.delete(key);
    };
  }

  /** Live subscriber count, for leak checks. */
  get size() {
    let n = 0;
    for (const set of this.subscribers.values()) n += set.size;
    return n;
  }

  private dispatch(note: Note) {
    const keys = this.keysOf(note).filter((k) => this.subscribers.has(k));
    if (keys.length === 0) return;
    // Chained on the first key so that one key's notifications are delivered in the order sent.
    const chainKey = keys[0]!;
    const previous = this.chains.get(chainKey) ?? Promise.resolve();
    const next = previous
      .then(async () => {
        const data = await this.load(note);
        if (data === null) return;
        const targets = new Set<(data: Data) => void>();
        for (const key of keys) for (const deliver of this.subscribers.get(key) ?? []) targets.add(deliver);
        for (const deliver of targets) deliver(data);
      })
      .catch(this.onError);
    this.chains.set(chainKey, next);
    void next.then(() => {
      if (this.chains.get(chainKey) === next) this.chains.delete(chainKey);
    });
  }
}
