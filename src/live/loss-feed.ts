// The loss channel's feed: a NOTIFY per written batch (sent by the metrics store's statements),
// turned into a live batch once per process, and runLoss, which replays from the tables and then
// follows the feed without a gap or a duplicate.
import type { Executor } from '../db/client.js';
import { notFound } from '../graphql/errors.js';
import { isId } from '../graphql/ids.js';
import { MAX_POINTS_PER_REPORT, toPoint, type LossPointOut } from '../modules/metrics/metrics.service.js';
import * as store from '../modules/metrics/metrics.store.js';
import { CatchUp } from './catch-up.js';
import type { KeyedFeed } from './feed.js';
import type { Channels } from './notify.js';
import { LiveQueue } from './live-queue.js';
import type { LossNote } from './notes.js';

/** A loss note turned into points: what every subscriber of the run is handed. */
export interface LiveLossBatch {
  attempt: number;
  points: (LossPointOut & { attempt: number })[];
}

export type LossFeed = KeyedFeed<typeof Channels.lossReported, LiveLossBatch>;

/** The live feed's loader: at most one query per notification per process, whatever the subscriber count. */
export function loadLossBatch(db: Executor) {
  return async (note: LossNote): Promise<LiveLossBatch | null> => {
    if (note.points) {
      const { attempt, at } = note;
      return { attempt, points: note.points.map(([step, loss, lr]) => ({ step, loss, lr, recordedAt: at, attempt })) };
    }
    const found = await store.listLossPoints(db, note.runId, { afterStep: note.from - 1, toStep: note.to, attempt: note.attempt, limit: MAX_POINTS_PER_REPORT });
    return found.length ? { attempt: note.attempt, points: found.map(toPoint) } : null;
  };
}

/**
 * Every caught-up subscriber of a run gets the same event object for a batch, so the subscription
 * is executed once per batch and process, not once per subscriber (shared-results.ts).
 */
const sharedEvents = new WeakMap<LiveLossBatch, { runId: string; points: LossPointOut[] }>();
function sharedEvent(runId: string, batch: LiveLossBatch) {
  let event = sharedEvents.get(batch);
  if (!event) sharedEvents.set(batch, (event = { runId, points: batch.points }));
  return event;
}

const REPLAY_PAGE = 5000;
/** Batches of up to REPLAY_PAGE points: a live subscriber about 100,000 points behind is dropped. */
const MAX_PENDING_BATCHES = 20;

/**
 * runLoss: replay (step > sinceStep) then live, with no gap and no duplicate across the switch.
 * The live feed is joined before the replay query runs, so nothing committed after the replay's
 * snapshot is missed; what the replay already sent is dropped from live batches by a high-water
 * mark on (attempt, step) — a newer attempt rewriting earlier steps is new data and passes.
 * When notifications were lost (the LISTEN connection dropped), the same mark tells the catch-up
 * where to read from: the points of the attempt it follows after its last step, or every point
 * of a newer attempt.
 */
export async function subscribeRunLoss(db: Executor, feed: LossFeed, args: { runId: string; sinceStep?: number | null }) {
  const position = isId(args.runId) ? await store.lossPosition(db, args.runId) : null;
  if (!position) throw notFound('runId', 'Run', args.runId);
  const runId = args.runId.toLowerCase();
  // A live-only subscriber has seen everything up to now; a replaying one, everything up to sinceStep.
  let mark = { attempt: position.attempt, step: args.sinceStep ?? position.lastStep ?? -1 };
  const passes = (p: { attempt: number; step: number }) => p.attempt > mark.attempt || (p.attempt === mark.attempt && p.step > mark.step);
  const advance = (p: { attempt: number; step: number }) => {
    if (passes(p)) mark = { attempt: p.attempt, step: p.step };
  };

  /** The pending batches made by coalescing: this subscriber's own, unlike the shared ones from the feed. */
  const merged = new WeakSet<{ runId: string; points: LossPointOut[] }>();
  const queue = new LiveQueue<{ runId: string; points: LossPointOut[] }>({
    maxPending: MAX_PENDING_BATCHES,
    coalesce: (a, b) => {
      if (a.points.length + b.points.length > REPLAY_PAGE) return null;
      // A batch this subscriber already owns grows in place: copying it for every batch that joins
      // it cost a slow subscriber's server quadratic time in how far it had fallen behind.
      if (merged.has(a)) {
        for (const point of b.points) a.points.push(point);
        return a;
      }
      const joined = { runId, points: [...a.points, ...b.points] };
      merged.add(joined);
      return joined;
    },
    onClose: () => unsubscribe(),
  });
  const deliver = (batch: LiveLossBatch) => {
    const fresh = batch.points.filter(passes);
    fresh.forEach(advance);
    if (fresh.length === batch.points.length) queue.push(sharedEvent(runId, batch));
    else if (fresh.length) queue.push({ runId, points: fresh });
  };
  /**
   * Where the replay under way reads next: the points after `afterStep` (of one attempt, when
   * given). It moves on with every page sent, so a replay that failed half-way resumes, not repeats.
   */
  let replayFrom: { afterStep: number; attempt?: number } | null = args.sinceStep != null ? { afterStep: args.sinceStep } : null;
  const catchUp = new CatchUp<LiveLossBatch>({
    replay: async () => {
      if (!replayFrom) {
        const now = await store.lossPosition(db, runId);
        replayFrom = now && now.attempt > mark.attempt ? { afterStep: -1, attempt: now.attempt } : { afterStep: mark.step, attempt: mark.attempt };
      }
      for (;;) {
        // The replay reads the next page only when the client has taken the previous ones.
        if (!(await queue.roomFor(2))) return;
        const page: ReturnType<typeof toPoint>[] = (await store.listLossPoints(db, runId, { ...replayFrom, limit: REPLAY_PAGE })).map(toPoint);
        if (page.length) {
          page.forEach(advance);
          queue.push({ runId, points: page });
          replayFrom = { ...replayFrom, afterStep: page.at(-1)!.step };
        }
        if (page.length < REPLAY_PAGE) break;
      }
      replayFrom = null;
    },
    deliver,
    fail: (error) => queue.fail(error),
    maxHeld: MAX_PENDING_BATCHES * 4,
    ended: () => queue.ended,
  });
  const unsubscribe = await feed.subscribe(runId, { deliver: (batch) => catchUp.live(batch), catchUp: () => catchUp.start() });
  if (replayFrom) catchUp.start();
  return queue;
}
