// The buffer between a live feed and one subscriber. graphql-ws pulls with next() as fast as the
// client's socket drains; the feed pushes as fast as agents report. A slow subscriber's items are
// coalesced while they wait, and one that falls too far behind is told and dropped, so it never
// slows ingestion or the other subscribers.
//
// A plain `async function*` cannot be used here: its return() waits until the generator reaches its
// next `yield`, so a client that leaves while it waits for the next event would leak its listener.
import { apiError } from '../graphql/errors.js';

export interface LiveQueueOptions<T> {
  /** Most items (after coalescing) held for a subscriber before it is dropped. */
  maxPending: number;
  /** Merges a new item into the last pending one, or returns null to queue it separately. */
  coalesce?: (pending: T, next: T) => T | null;
  /** Called once when the subscription ends, whatever ended it. */
  onClose: () => void;
}

export class LiveQueue<T> implements AsyncIterableIterator<T> {
  private readonly pending: T[] = [];
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | null = null;
  private failure: unknown = null;
  private closed = false;
  private roomWaiters: (() => void)[] = [];

  private wakeProducers() {
    for (const resolve of this.roomWaiters.splice(0)) resolve();
  }

  constructor(private readonly options: LiveQueueOptions<T>) {}

  push(item: T) {
    if (this.closed || this.failure) return;
    if (this.waiter) {
      const { resolve } = this.waiter;
      this.waiter = null;
      resolve({ value: item, done: false });
      return;
    }
    const last = this.pending.at(-1);
    const merged = last !== undefined && this.options.coalesce ? this.options.coalesce(last, item) : null;
    if (merged !== null) this.pending[this.pending.length - 1] = merged;
    else this.pending.push(item);
    if (this.pending.length > this.options.maxPending) {
      this.fail(
        apiError('SUBSCRIBER_TOO_SLOW', 'This subscriber fell too far behind the live feed and was dropped; subscribe again to catch up'),
      );
    }
  }

  /** Ends the subscription with an error the client sees. */
  fail(error: unknown) {
    if (this.closed || this.failure) return;
    this.failure = error;
    this.pending.length = 0;
    this.wakeProducers();
    this.options.onClose();
    if (this.waiter) {
      const { reject } = this.waiter;
      this.waiter = null;
      reject(error);
    }
  }

  /** True once the subscription has ended, whatever ended it. */
  get ended() {
    return this.closed || this.failure !== null;
  }

  get pendingCount() {
    return this.pending.length;
  }

  /** For producers that can wait (a replay from the database): resolves once fewer than `n` items wait. */
  async roomFor(n: number) {
    while (this.pending.length >= n && !this.closed && !this.failure) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    return !this.closed && !this.failure;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.pending.length) {
      const value = this.pending.shift()!;
      this.wakeProducers();
      return Promise.resolve({ value, done: false });
    }
    if (this.failure) {
      const error = this.failure;
      this.closed = true;
      return Promise.reject(error);
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.closed) {
      this.closed = true;
      this.pending.length = 0;
      this.wakeProducers();
      if (!this.failure) this.options.onClose();
      this.waiter?.resolve({ value: undefined, done: true });
      this.waiter = null;
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.return();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}
