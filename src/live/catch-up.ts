// How one live subscriber reads what it missed: a replay from its high-water mark, with live items
// held meanwhile and let through after it (the subscriber's own mark drops what the replay already
// sent). The first replay of runLoss(sinceStep) is one; so is every catch-up after notifications
// were lost (a PostgreSQL restart: see feed.ts).
import type { GraphQLError } from 'graphql';
import { apiError } from '../graphql/errors.js';

/** Tries of one catch-up, with growing pauses, while the database is still coming back. */
const MAX_TRIES = 8;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 3000;

export const feedInterrupted = (cause: unknown) =>
  apiError(
    'LIVE_FEED_INTERRUPTED',
    'The live feed was interrupted and could not catch up from the database; subscribe again (runLoss: with sinceStep set to the last step you have)',
    { reason: cause instanceof Error ? cause.message : String(cause) },
  );

export interface CatchUpOptions<Live> {
  /** Reads from the subscriber's mark and pushes to it; resolves when it has sent all there was. */
  replay: () => Promise<void>;
  /** Hands a live item to the subscriber (which drops what it has already seen). */
  deliver: (item: Live) => void;
  /** Ends the subscription with an error the client sees. */
  fail: (error: GraphQLError) => void;
  /** Live items held during a replay beyond this are dropped and the replay runs again instead. */
  maxHeld: number;
  /** True once the subscription has ended: nothing more to catch up. */
  ended: () => boolean;
}

export class CatchUp<Live> {
  private running = false;
  private again = false;
  private held: Live[] = [];

  constructor(private readonly o: CatchUpOptions<Live>) {}

  /** A live item: handed on at once, or held until the replay under way is done. */
  live(item: Live) {
    if (!this.running) return this.o.deliver(item);
    if (this.held.length < this.o.maxHeld) this.held.push(item);
    else {
      // The replay after this one reads them from the tables.
      this.held.length = 0;
      this.again = true;
    }
  }

  /** Starts a replay; one asked for while another runs follows it (it may have read too early). */
  start() {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.loop();
  }

  private async loop() {
    let failures = 0;
    do {
      if (this.o.ended()) break;
      this.again = false;
      try {
        await this.o.replay();
        failures = 0;
      } catch (err) {
        if (++failures >= MAX_TRIES) {
          this.running = false;
          this.held.length = 0;
          this.o.fail(feedInterrupted(err));
          return;
        }
        this.again = true;
        await new Promise((r) => setTimeout(r, Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** failures)));
      }
    } while (this.again);
    this.running = false;
    for (const item of this.held.splice(0)) this.o.deliver(item);
  }
}
