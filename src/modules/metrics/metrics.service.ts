import type { Database, Executor } from '../../db/client.js';
import { Channels } from '../../db/notify.js';
import type { KeyedFeed } from '../../db/feed.js';
import { apiError, badInput, notFound } from '../../graphql/errors.js';
import { isId, parseId } from '../../graphql/ids.js';
import { LiveQueue } from '../../graphql/live-queue.js';
import type { Principal } from '../keys/keys.service.js';
import { explainFencedMiss } from '../dispatch/dispatch.service.js';
import { findRunsByIds } from '../runs/runs.store.js';
import * as store from './metrics.store.js';

export const MAX_POINTS_PER_REPORT = 5000;
export const EMA_ALPHA = 0.1;
export const MAX_CURVE_POINTS = 10_000;

export interface LossPointOut {
  step: number;
  loss: number;
  lr: number | null;
  recordedAt: unknown;
}

/** What a NOTIFY on the loss channel carries: which attempt wrote which steps. */
export interface LossNote {
  runId: string;
  attempt: number;
  from: number;
  to: number;
}

export interface LiveLossBatch {
  attempt: number;
  points: (LossPointOut & { attempt: number })[];
}

export type LossFeed = KeyedFeed<LossNote, LiveLossBatch>;

export async function reportLoss(db: Database, principal: Principal, args: { runId: string; leaseToken: string; points: unknown[] }) {
  if (args.points.length > MAX_POINTS_PER_REPORT) {
    throw apiError('PAYLOAD_TOO_LARGE', `points: at most ${MAX_POINTS_PER_REPORT} per call, got ${args.points.length}`, { field: 'points' });
  }
  const runId = parseId(args.runId, 'runId');
  // The hot path of ingestion: GraphQL has already checked the types (Int!, Float!), so a plain
  // loop checks the rest instead of a schema validator per point.
  const points = args.points.map((raw, i) => {
    const p = raw as { step: number; loss: number; lr?: number | null };
    if (p.step < 0) throw badInput(`points.${i}.step`, 'must be 0 or more');
    if (!Number.isFinite(p.loss)) throw badInput(`points.${i}.loss`, 'must be a finite number');
    if (p.lr != null && !Number.isFinite(p.lr)) throw badInput(`points.${i}.lr`, 'must be a finite number');
    return { step: p.step, loss: p.loss, lr: p.lr ?? null };
  });
  points.sort((a, b) => a.step - b.step);
  for (let i = 1; i < points.length; i++) {
    if (points[i]!.step === points[i - 1]!.step) throw badInput('points', `step ${points[i]!.step} appears twice in this batch`);
  }

  return db.transaction(async (tx) => {
    const fence = { runId, leaseToken: args.leaseToken, apiKeyId: principal.keyId };
    const result = await store.recordLossBatch(tx, fence, points, EMA_ALPHA, Channels.lossReported);
    if (!result) return explainFencedMiss(tx, principal, runId, args.leaseToken, 'report loss for');
    // Earlier steps were rewritten (a newer attempt resuming from a checkpoint): recompute.
    if (result.written > 0 && !result.summarized) {
      await store.recomputeSummary(tx, runId, EMA_ALPHA);
      await store.refreshCheckpointEma(tx, runId, EMA_ALPHA);
    }
    return { accepted: result.written, duplicates: points.length - result.written };
  });
}

const toPoint = (r: store.LossPointRow & { attempt: number }) => ({ step: r.step, loss: r.loss, lr: r.lr, recordedAt: r.recorded_at, attempt: r.attempt });

export async function lossPoints(db: Executor, runId: string, args: { afterStep?: number | null; first?: number | null }) {
  const first = args.first ?? 1000;
  if (first < 0 || first > MAX_CURVE_POINTS) throw badInput('first', `must be between 0 and ${MAX_CURVE_POINTS}`);
  return (await store.listLossPoints(db, runId, { afterStep: args.afterStep ?? -1, limit: first })).map(toPoint);
}

function checkCurveArgs(args: { maxPoints?: number | null; fromStep?: number | null; toStep?: number | null }) {
  const maxPoints = args.maxPoints ?? 1000;
  if (maxPoints < 1 || maxPoints > MAX_CURVE_POINTS) throw badInput('maxPoints', `must be between 1 and ${MAX_CURVE_POINTS}`);
  if (args.fromStep != null && args.fromStep < 0) throw badInput('fromStep', 'must be 0 or more');
  if (args.fromStep != null && args.toStep != null && args.toStep < args.fromStep) throw badInput('toStep', 'must not be below fromStep');
  return maxPoints;
}

const toBucket = (b: store.BucketRow) => ({
  step: b.step,
  fromStep: b.from_step,
  toStep: b.to_step,
  min: b.min,
  max: b.max,
  mean: Number(b.mean),
  last: b.last,
  count: b.count,
});

/** A run's curve; without bounds its range is 0..its last step, read from the summary (no scan). */
async function curveOf(db: Executor, runId: string, lastStep: number | null | undefined, args: { maxPoints: number; fromStep?: number | null; toStep?: number | null }) {
  const lo = args.fromStep ?? 0;
  const hi = args.toStep ?? lastStep;
  if (hi == null || hi < lo) return [];
  return (await store.lossCurve(db, runId, { maxPoints: args.maxPoints, lo, hi })).map(toBucket);
}

export async function lossCurve(db: Executor, runId: string, args: { maxPoints?: number | null; fromStep?: number | null; toStep?: number | null }) {
  const maxPoints = checkCurveArgs(args);
  const lastStep = args.toStep == null ? (await store.lastSteps(db, [runId])).get(runId) : null;
  return curveOf(db, runId, lastStep, { ...args, maxPoints });
}

/** Several runs' curves in one request; each run's aggregate runs on its own (they run in parallel on PostgreSQL). */
export async function lossCurves(db: Executor, args: { runIds: string[]; maxPoints?: number | null }) {
  const maxPoints = checkCurveArgs(args);
  if (args.runIds.length > 100) throw badInput('runIds', 'at most 100 runs at once');
  const ids = [...new Set(args.runIds.map((id, i) => parseId(id, `runIds.${i}`)))];
  const [runs, lastSteps] = await Promise.all([findRunsByIds(db, ids), store.lastSteps(db, ids)]);
  const found = new Map(runs.map((r) => [r.id, r]));
  const present = ids.filter((id) => found.has(id));
  const curves = await Promise.all(present.map((id) => curveOf(db, id, lastSteps.get(id), { maxPoints })));
  return present.map((id, i) => ({ run: found.get(id)!, buckets: curves[i]! }));
}

/** The live feed's loader: one query per notification per process, whatever the subscriber count. */
export function loadLossBatch(db: Executor) {
  return async (note: LossNote): Promise<LiveLossBatch | null> => {
    const found = await store.listLossPoints(db, note.runId, { afterStep: note.from - 1, toStep: note.to, attempt: note.attempt, limit: MAX_POINTS_PER_REPORT });
    return found.length ? { attempt: note.attempt, points: found.map(toPoint) } : null;
  };
}

const REPLAY_PAGE = 5000;
/** Batches of up to REPLAY_PAGE points: a live subscriber about 100,000 points behind is dropped. */
const MAX_PENDING_BATCHES = 20;

/**
 * runLoss: replay (step > sinceStep) then live, with no gap and no duplicate across the switch.
 * The live feed is joined before the replay query runs, so nothing committed after the replay's
 * snapshot is missed; what the replay already sent is dropped from live batches by a high-water
 * mark on (attempt, step) — a newer attempt rewriting earlier steps is new data and passes.
 */
export async function subscribeRunLoss(db: Executor, feed: LossFeed, args: { runId: string; sinceStep?: number | null }) {
  if (!isId(args.runId) || (await findRunsByIds(db, [args.runId])).length === 0) throw notFound('runId', 'Run', args.runId);
  const runId = args.runId.toLowerCase();
  let mark = { attempt: -1, step: -1 };
  const passes = (p: { attempt: number; step: number }) => p.attempt > mark.attempt || (p.attempt === mark.attempt && p.step > mark.step);
  const advance = (p: { attempt: number; step: number }) => {
    if (passes(p)) mark = { attempt: p.attempt, step: p.step };
  };

  let replaying = args.sinceStep != null;
  const held: LiveLossBatch[] = [];
  const queue = new LiveQueue<{ runId: string; points: LossPointOut[] }>({
    maxPending: MAX_PENDING_BATCHES,
    coalesce: (a, b) => (a.points.length + b.points.length <= REPLAY_PAGE ? { runId, points: [...a.points, ...b.points] } : null),
    onClose: () => unsubscribe(),
  });
  const deliver = (batch: LiveLossBatch) => {
    const fresh = batch.points.filter(passes);
    fresh.forEach(advance);
    if (fresh.length) queue.push({ runId, points: fresh });
  };
  const unsubscribe = await feed.subscribe(runId, (batch) => (replaying ? held.push(batch) : deliver(batch)));

  if (replaying) {
    void (async () => {
      let after = args.sinceStep!;
      for (;;) {
        // The replay reads the next page only when the client has taken the previous ones.
        if (!(await queue.roomFor(2))) return;
        const page = (await store.listLossPoints(db, runId, { afterStep: after, limit: REPLAY_PAGE })).map(toPoint);
        if (page.length === 0) break;
        page.forEach(advance);
        queue.push({ runId, points: page });
        after = page.at(-1)!.step;
        if (page.length < REPLAY_PAGE) break;
      }
      replaying = false;
      held.splice(0).forEach(deliver);
    })().catch((err) => queue.fail(err));
  }
  return queue;
}
