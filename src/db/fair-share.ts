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

/** A request that has used this much database time counts as heavy (see FairScheduler). */
export const HEAVY_AFTER_MS = 100;

export class FairScheduler {
  private active = 0;
  private heavyActive = 0;
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
    if (this.mayStart(share, heavy)) this.take(share, heavy);
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

  /** Frees a slot and hands it to the waiting request that has used the least database time. */
  private release(share: Share, heavy: boolean) {
    this.active--;
    share.active--;
    if (heavy) this.heavyActive--;
    let next: Share | null = null;
    for (const s of this.shares) {
      if (s.waiting.length === 0) {
        this.shares.delete(s);
        continue;
      }
      if (this.mayStart(s, this.isHeavy(s)) && (next === null || s.used < next.used)) next = s;
    }
    if (!next) return;
    const nextHeavy = this.isHeavy(next);
    this.take(next, nextHeavy);
    const wake = next.waiting.shift()!;
    // Woken after pending I/O, not straight from this promise chain: PGlite runs a statement
    // inside the call, so a request whose statements followed each other by promise alone would
    // keep the event loop from ever reading another request (or a /healthz) until it was done.
    setImmediate(() => wake(nextHeavy));
  }
}

const overBudget = (share: Share) =>
  apiError(
    'QUERY_TOO_COMPLEX',
    `This request used more than its ${Number((share.budgetMs / 1000).toPrecision(2))} s of database time and was stopped. Ask for less at once: fewer aliases, fewer points, smaller pages`,
    { reason: 'DATABASE_TIME' },
  );
