// What a checked loss batch adds to a run's summary and loss blocks, worked out in JavaScript
// before it reaches the database. Training moves forward, so nearly every batch only appends steps
// after the run's last one; for such a batch these figures are exactly what folding its points into
// the summary and blocks in SQL would give, and the database is left with a plain insert
// (metrics.store: appendLossBatch). That is most of the difference between reportLoss and a bare
// INSERT: no speculative insertion, no RETURNING, no sort or window over the written rows.
import { INLINE_POINTS, LOSS_BLOCK_STEPS } from './metrics.store.js';
import { MAX_NOTE_BYTES } from '../../live/notes.js';

export interface LossColumns {
  steps: number[];
  losses: number[];
  lrs: (number | null)[];
}

/** One 100-step block's share of a batch, the columns of loss_blocks. */
export interface BlockShares {
  block: number[];
  points: number[];
  lossSum: number[];
  minLoss: number[];
  maxLoss: number[];
  firstStep: number[];
  lastStep: number[];
  lastLoss: number[];
}

export interface BatchFacts {
  points: number;
  firstStep: number;
  lastStep: number;
  firstLoss: number;
  lastLoss: number;
  minLoss: number;
  /** The lowest step at which minLoss occurs. */
  minLossStep: number;
  /**
   * The batch's share of the EMA: Σⱼ α(1-α)^(k-1-j)·yⱼ over its k points in step order. The new
   * EMA is fold + decay · (the previous EMA, or the first loss for a run's first batch): the
   * previous EMA is read in SQL, under the summary row's lock.
   */
  fold: number;
  /** (1-α)^k */
  decay: number;
  blocks: BlockShares;
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
export function batchFacts(columns: LossColumns, alpha: number): BatchFacts {
  const { steps, losses, lrs } = columns;
  const order = stepOrder(steps);
  const first = order[0]!;
  const blocks: BlockShares = { block: [], points: [], lossSum: [], minLoss: [], maxLoss: [], firstStep: [], lastStep: [], lastLoss: [] };
  let fold = 0;
  let minLoss = Infinity;
  let minLossStep = -1;
  let current = -1;
  for (const i of order) {
    const step = steps[i]!;
    const loss = losses[i]!;
    fold = fold * (1 - alpha) + alpha * loss;
    if (loss < minLoss) [minLoss, minLossStep] = [loss, step];
    const block = Math.floor(step / LOSS_BLOCK_STEPS);
    if (block !== blocks.block[current]) {
      current = blocks.block.push(block) - 1;
      blocks.points.push(0);
      blocks.lossSum.push(0);
      blocks.minLoss.push(loss);
      blocks.maxLoss.push(loss);
      blocks.firstStep.push(step);
    }
    blocks.points[current]!++;
    blocks.lossSum[current]! += loss;
    if (loss < blocks.minLoss[current]!) blocks.minLoss[current] = loss;
    if (loss > blocks.maxLoss[current]!) blocks.maxLoss[current] = loss;
    blocks.lastStep[current] = step;
    blocks.lastLoss[current] = loss;
  }
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
    minLoss,
    minLossStep,
    fold,
    decay: Math.pow(1 - alpha, order.length),
    blocks,
    inlinePoints,
  };
}
