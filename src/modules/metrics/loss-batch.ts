// What a checked loss batch adds to a run's summary and loss blocks, worked out in JavaScript
// before it reaches the database. Training moves forward, so nearly every batch only appends steps
// after the run's last one; for such a batch these figures are exactly what folding its points into
// the summary and blocks in SQL would give, and the database is left with a plain insert
// (metrics.store: appendLossBatch). That is most of the difference between reportLoss and a bare
// INSERT: no speculative insertion, no RETURNING, no sort or window over the written rows. The
// arithmetic itself is summary-arithmetic.ts's, shared with the statements that do it in SQL.
import { INLINE_POINTS } from './metrics.store.js';
import { foldBatch, type BatchFold } from './summary-arithmetic.js';
import { MAX_NOTE_BYTES } from '../../live/notes.js';

export interface LossColumns {
  steps: number[];
  losses: number[];
  lrs: (number | null)[];
}

/**
 * A batch's figures. The new EMA is fold + decay · (the previous EMA, or the first loss for a run's
 * first batch): the previous EMA is read in SQL, under the summary row's lock (summary-arithmetic.ts).
 */
export interface BatchFacts extends BatchFold {
  points: number;
  firstStep: number;
  lastStep: number;
  firstLoss: number;
  lastLoss: number;
  /** [[step, loss, lr], …] in step order as JSON, for the live feed's notification; null when too large to ride in it. */
  inlinePoints: string | null;
}

/** Inline points leave room for the note around them (runId, attempt, step range, time). */
const MAX_INLINE_BYTES = MAX_NOTE_BYTES - 300;

/** The order of the steps: the indices themselves when ascending (the usual case), else sorted by step. */
function stepOrder(steps: number[]): number[] {
  const order = Array.from(steps, (_, i) => i);
  for (let i = 1; i < steps.length; i++) if (steps[i]! < steps[i - 1]!) return order.sort((a, b) => steps[a]! - steps[b]!);
  return order;
}

/** The figures of a non-empty batch with distinct, non-negative steps and finite losses (as checked by the service). */
export function batchFacts(columns: LossColumns): BatchFacts {
  const { steps, losses, lrs } = columns;
  const order = stepOrder(steps);
  const first = order[0]!;
  const last = order.at(-1)!;
  let inlinePoints: string | null = null;
  if (order.length <= INLINE_POINTS) {
    inlinePoints = JSON.stringify(order.map((i) => [steps[i], losses[i], lrs[i]]));
    if (inlinePoints.length > MAX_INLINE_BYTES) inlinePoints = null;
  }
  return {
    points: order.length,
    firstStep: steps[first]!,
    lastStep: steps[last]!,
    firstLoss: losses[first]!,
    lastLoss: losses[last]!,
    ...foldBatch(steps, losses, order),
    inlinePoints,
  };
}
