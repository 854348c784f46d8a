// Fair use of the database by concurrent requests. Each GraphQL request gets a Share; every
// statement it sends waits for a slot, and a freed slot goes to the waiting request that has used
// the least database time so far. A request that sends 500 heavy statements at once then delays a
// light one by at most the statement already running, instead of by its whole queue: PGlite runs
// one statement at a time in order of arrival, and postgres.js hands its pool out the same way.
// A Share is also the request's deadline: past its database time, its next statement is refused
// (PGlite cannot cancel one that runs; PostgreSQL's statement_timeout does that).
//
// Work done for no request (the reaper, live feeds, migrations, /healthz) takes no slot.
import { AsyncLocalStorage } from 'node:async_hooks';
import { apiError } from '../graphql/errors.js';

export class Share {
  /** Database time used so far, in ms (time spent in statements, not waiting for a slot). */
  used = 0;
  active = 0;
  /** Its statements waiting for a slot; each is told whether it got it as a heavy request. */
  readonly waiting: ((heavy: boolean) => void)[] = [];

  constructor(
    /** Most database time the request may use, in ms. */
    readonly budgetMs: number,
  ) {}
}

const current = new AsyncLocalStorage<Share>();

/** Runs `fn` (a request's handling) with `share` as the share of every statement it sends. */
export const withShare = <T>(share: Share, fn: () => T) => current.run(share, fn);

/** The share of the request being handled, if any. */
export const currentShare = () => current.getStore();

/** A request that has used this much database time counts as heavy (see FairScheduler). */
export const HEAVY_AFTER_MS = 100;

export class FairScheduler {
  private active = 0;
  private heavyActive = 0;
  /** A dispatch of free slots is scheduled (release). */
  private dispatchDue = false;
  private readonly shares = new Set<Share>();

  constructor(
    /** Statements of requests in the database at once. */
    private readonly slots: number,
    /** Of which one request may hold at most this many. */
    private readonly perShare: number,
    /**
     * And heavy requests (those past HEAVY_AFTER_MS of database time) all together this many:
     * however many run, the rest of the slots stay with everyone else.
     */
    private readonly heavySlots = perShare,
  ) {}

  /** Statements running for requests and waiting for a slot, now (/metrics). */
  usage() {
    let waiting = 0;
    for (const share of this.shares) waiting += share.waiting.length;
    return { slots: this.slots, active: this.active, waiting };
  }

  /** Runs one statement (or transaction) `fn` when its request's turn comes. */
  async run<T>(fn: () => PromiseLike<T>): Promise<T> {
    const share = current.getStore();
    if (!share) return fn();
    if (share.used > share.budgetMs) throw overBudget(share);
    let heavy = this.isHeavy(share);
    // A free slot is given out by the next dispatch when one is due, not to whoever asks first.
    if (!this.dispatchDue && this.mayStart(share, heavy)) this.take(share, heavy);
    else {
      heavy = await new Promise<boolean>((resolve) => {
        share.waiting.push(resolve);
        this.shares.add(share);
      });
      if (share.used > share.budgetMs) {
        this.release(share, heavy);
        throw overBudget(share);
      }
    }
    const started = performance.now();
    try {
      return await fn();
    } finally {
      share.used += performance.now() - started;
      this.release(share, heavy);
    }
  }

  private isHeavy(share: Share) {
    return share.used > HEAVY_AFTER_MS;
  }

  private mayStart(share: Share, heavy: boolean) {
    return this.active < this.slots && share.active < this.perShare && (!heavy || this.heavyActive < this.heavySlots);
  }

  private take(share: Share, heavy: boolean) {
    this.active++;
    share.active++;
    if (heavy) this.heavyActive++;
  }

  /** Frees a slot; the next dispatch hands it on. */
  private release(share: Share, heavy: boolean) {
    this.active--;
    share.active--;
    if (heavy) this.heavyActive--;
    if (this.shares.size === 0 || this.dispatchDue) return;
    // Decided after pending I/O, not now: a request that arrives meanwhile (an ordinary read, a
    // /healthz) competes for the slot with the heavy request whose next statement is already
    // waiting, and wins it by having used less. And a request whose statements followed each other
    // by promise alone would otherwise keep the event loop from reading anything else until it was
    // done: PGlite runs a statement inside the call.
    this.dispatchDue = true;
    setImmediate(() => this.dispatch());
  }

  /** Hands free slots to the waiting requests that have used the least database time. */
  private dispatch() {
    this.dispatchDue = false;
    for (;;) {
      let next: Share | null = null;
      for (const s of this.shares) {
        if (s.waiting.length === 0) {
          this.shares.delete(s);
          continue;
        }
        if (this.mayStart(s, this.isHeavy(s)) && (next === null || s.used < next.used)) next = s;
      }
      if (!next) return;
      const heavy = this.isHeavy(next);
      this.take(next, heavy);
      next.waiting.shift()!(heavy);
    }
  }
}

const overBudget = (share: Share) =>
  apiError(
    'QUERY_TOO_COMPLEX',
    `This request used more than its ${Number((share.budgetMs / 1000).toPrecision(2))} s of database time and was stopped. Ask for less at once: fewer aliases, fewer points, smaller pages`,
    { reason: 'DATABASE_TIME' },
  );
