// Requests that the cost model counts as heavy (HEAVY_COST, limits.ts) take turns: one at a time per server.
//
// The statement scheduler (db/fair-share.ts) keeps a heavy request from crowding ordinary ones out
// of the database, but most of a heavy answer's time is the server's own: reading 10,000 buckets a
// curve, completing them through GraphQL and writing them out. Two such requests at once kept the
// event loop busy without a break, and an ordinary read waited behind them for 5–9× its quiet
// time (bench/fairness.ts). One at a time, the heavy request's own database waits leave the event
// loop free, and the others that are heavy wait for their turn instead of everyone else waiting.
import { HeaderMap } from '@apollo/server';
import type { Share } from '../db/fair-share.js';
import { apiError } from './errors.js';

/** Heavy requests waiting for their turn, at most; more are refused at once (RATE_LIMITED). */
export const MAX_WAITING = 32;
const RETRY_AFTER_SECONDS = 5;

interface Waiter {
  share: Share;
  enter: () => void;
  refuse: (error: Error) => void;
}

export class HeavyLane {
  private holder: Share | null = null;
  private readonly waiting: Waiter[] = [];

  constructor(
    /** Longest a heavy request waits for its turn before it is refused, in ms. */
    private readonly maxWaitMs: number,
  ) {}

  /** Waits for the request's turn; refused when too many wait or the wait is too long. */
  async enter(share: Share): Promise<void> {
    if (this.holder === share) return;
    if (this.holder === null) {
      this.holder = share;
      return;
    }
    if (this.waiting.length >= MAX_WAITING) throw busy('Too many heavy requests are waiting');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.dropWaiting(share);
        reject(busy(`A heavy request waited ${Math.round(this.maxWaitMs / 1000)} s for its turn`));
      }, this.maxWaitMs);
      timer.unref();
      const settle = (fn: () => void) => () => (clearTimeout(timer), fn());
      this.waiting.push({ share, enter: settle(resolve), refuse: (error) => settle(() => reject(error))() });
    });
  }

  private dropWaiting(share: Share) {
    const at = this.waiting.findIndex((w) => w.share === share);
    return at >= 0 ? this.waiting.splice(at, 1)[0] : undefined;
  }

  /** Ends the request's turn (its answer is written, or it ended otherwise); nothing when it had none. */
  leave(share: Share) {
    // A request that ends while it waits (its client went away) leaves the queue.
    this.dropWaiting(share)?.refuse(busy('The request ended while it waited'));
    if (this.holder !== share) return;
    const next = this.waiting.shift();
    this.holder = next?.share ?? null;
    // After pending I/O: the next heavy request starts once the ordinary ones that queued up
    // behind this one have had their turn.
    if (next) setImmediate(next.enter);
  }

  /** Heavy requests running and waiting, now (/metrics). */
  usage() {
    return { running: this.holder ? 1 : 0, waiting: this.waiting.length };
  }
}

const busy = (why: string) =>
  apiError('RATE_LIMITED', `${why}; the server answers heavy requests one at a time. Ask for less at once, or try again in a few seconds`, {
    reason: 'HEAVY_REQUESTS',
    retryAfterSeconds: RETRY_AFTER_SECONDS,
    http: { status: 429, headers: new HeaderMap([['retry-after', String(RETRY_AFTER_SECONDS)]]) },
  });
