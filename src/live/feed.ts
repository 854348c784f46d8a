// Per-process fan-out of one NOTIFY channel to many local subscribers, keyed (by run, say). The
// channel is LISTENed once per process; each notification is turned into data once (one query),
// in order per key, and handed to every local subscriber of that key.
//
// A notification can be lost: sent while the LISTEN connection was down, or its data could not be
// read. Then the subscribers concerned are told to catch up from the tables, each from what it
// has already been given (its high-water mark).
import type { Channel, NoteOf, Notifier } from './notify.js';

export interface FeedSubscriber<Data> {
  deliver(data: Data): void;
  /** Notifications meant for this subscriber may have been lost: read what it missed from the tables. */
  catchUp(): void;
}

export class KeyedFeed<C extends Channel, Data, Note extends NoteOf[C] = NoteOf[C]> {
  private readonly subscribers = new Map<string, Set<FeedSubscriber<Data>>>();
  private readonly chains = new Map<string, Promise<void>>();
  private started: Promise<unknown> | null = null;

  constructor(
    private readonly notifier: Notifier,
    private readonly channel: C,
    /** The keys a notification concerns (a run id, an experiment id, …). */
    private readonly keysOf: (note: Note) => string[],
    /** Turns a notification into what subscribers get; null to skip. Runs once per notification. */
    private readonly load: (note: Note) => Promise<Data | null>,
    private readonly onError: (err: unknown) => void,
  ) {}

  async subscribe(key: string, subscriber: FeedSubscriber<Data>): Promise<() => void> {
    this.started ??= (() => {
      this.notifier.onMissed(() => this.catchUp(this.subscribers.keys()));
      return this.notifier.on(this.channel, (note) => this.dispatch(note as Note));
    })();
    await this.started;
    let set = this.subscribers.get(key);
    if (!set) this.subscribers.set(key, (set = new Set()));
    set.add(subscriber);
    return () => {
      set!.delete(subscriber);
      if (set!.size === 0 && this.subscribers.get(key) === set) this.subscribers.delete(key);
    };
  }

  /** Live subscriber count, for leak checks. */
  get size() {
    let n = 0;
    for (const set of this.subscribers.values()) n += set.size;
    return n;
  }

  private catchUp(keys: Iterable<string>) {
    for (const key of [...keys]) for (const subscriber of this.subscribers.get(key) ?? []) subscriber.catchUp();
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
        const targets = new Set<FeedSubscriber<Data>>();
        for (const key of keys) for (const subscriber of this.subscribers.get(key) ?? []) targets.add(subscriber);
        for (const subscriber of targets) subscriber.deliver(data);
      })
      .catch((err) => {
        this.onError(err);
        this.catchUp(keys);
      });
    this.chains.set(chainKey, next);
    void next.then(() => {
      if (this.chains.get(chainKey) === next) this.chains.delete(chainKey);
    });
  }
}
