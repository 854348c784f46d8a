// The arithmetic of a run's loss summary (points, last step and loss, minimum and its step, EMA),
// of its loss blocks (count, sum, min, max, first and last step, last loss per LOSS_BLOCK_STEPS
// steps in loss_blocks, and per COARSE_BLOCK_STEPS steps in loss_coarse_blocks) and of a
// checkpoint's EMA, in one place. It runs in four places for speed: in JavaScript for a batch that
// only appends (loss-batch.ts, written by appendLossBatch as a plain insert), and in SQL when
// recordLossBatch folds a batch in, when recomputeSummary and rebuildLossBlocks start again from the
// points after a rewrite, and when refreshCheckpointEma reads a checkpoint's EMA. Coarse blocks are
// merged from fine ones (coarseShares in JavaScript, mergedBlocks in SQL) except where
// recordLossBatch folds a batch's points straight into every level.
// Each of those takes its constants and its formulas from here, and test/summary-arithmetic.test.ts
// feeds the same random batches through every path and expects the same figures from each.
//
// The EMA over points y₀…yₙ₋₁ in step order is seeded with the first point:
//   e₀ = y₀, eᵢ = α·yᵢ + (1-α)·eᵢ₋₁,
// which in closed form is Σ wᵢ·yᵢ with w₀ = (1-α)^(n-1) and wᵢ = α(1-α)^(n-1-i) (seededEmaTerm).
// Folding k more points z₀…zₖ₋₁ into an EMA e gives fold + (1-α)^k · e, where
// fold = Σⱼ α(1-α)^(k-1-j)·zⱼ (foldTerm, or foldBatch's running form); a run's first batch folds
// into its own first point (emaAfterFold).
import { sql, type SQL } from 'drizzle-orm';

/** The EMA's smoothing factor: the newest point weighs α. */
export const EMA_ALPHA = 0.1;

/** Steps per row of loss_blocks (block = ⌊step / LOSS_BLOCK_STEPS⌋); the backfill migration used 100 too. */
export const LOSS_BLOCK_STEPS = 100;

/**
 * Steps per row of loss_coarse_blocks, one level each (block = ⌊step / steps⌋): the same figures as
 * loss_blocks over wider blocks, so that a curve over a million steps reads about 1,000 rows too
 * (curveFromBlocks takes the widest level of which the range spans maxPoints blocks). Each a
 * multiple of LOSS_BLOCK_STEPS: a coarse block is whole fine blocks, which is how cut ends and
 * rebuilds fold them. The backfill migration (0010) used these too.
 */
export const COARSE_BLOCK_STEPS = [1_000, 10_000] as const;

/**
 * The largest exponent of (1-α) taken. PostgreSQL raises an underflow error past 0.9^7000, so every
 * path caps it at 1,000: 0.9^1000 ≈ 1.7e-46, a weight far below float8 precision next to the
 * recent points, so the EMA does not change.
 */
export const MAX_DECAY_EXPONENT = 1000;

// ---- JavaScript ---------------------------------------------------------------------------------

/** The block a step belongs to. */
export const blockOf = (step: number) => Math.floor(step / LOSS_BLOCK_STEPS);

/** (1-α)^exponent, capped as in SQL. */
export const decayOf = (exponent: number) => Math.pow(1 - EMA_ALPHA, Math.min(exponent, MAX_DECAY_EXPONENT));

/** One block's share of a batch, as the columns of loss_blocks (one element per block, in step order). */
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

/** A batch's shares of loss_coarse_blocks: BlockShares with each row's level (its steps per block). */
export interface CoarseShares extends BlockShares {
  steps: number[];
}

export interface BatchFold {
  /** Σⱼ α(1-α)^(k-1-j)·zⱼ over the batch's k points in step order. */
  fold: number;
  /** (1-α)^k: the weight left to the EMA before the batch. */
  decay: number;
  minLoss: number;
  /** The lowest step at which minLoss occurs. */
  minLossStep: number;
  blocks: BlockShares;
  coarse: CoarseShares;
}

/**
 * A batch's share of the summary and of its blocks, visiting its points in `order` (indices into
 * steps and losses, ascending by step). The fold is the closed form's sum, computed as a running
 * EMA seeded with 0: the same figure, without a power per point.
 */
export function foldBatch(steps: number[], losses: number[], order: number[]): BatchFold {
  const blocks: BlockShares = { block: [], points: [], lossSum: [], minLoss: [], maxLoss: [], firstStep: [], lastStep: [], lastLoss: [] };
  let fold = 0;
  let minLoss = Infinity;
  let minLossStep = -1;
  let current = -1;
  for (const i of order) {
    const step = steps[i]!;
    const loss = losses[i]!;
    fold = fold * (1 - EMA_ALPHA) + EMA_ALPHA * loss;
    if (loss < minLoss) [minLoss, minLossStep] = [loss, step];
    const block = blockOf(step);
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
  return { fold, decay: decayOf(order.length), minLoss, minLossStep, blocks, coarse: coarseShares(blocks) };
}

/**
 * Fine shares (in step order) merged into their blocks at every coarse level: block aggregates
 * merge (counts and sums add, min and max of the mins and maxes, the last loss is the one of the
 * highest last step), as the SQL that rebuilds coarse blocks from fine ones merges them.
 */
export function coarseShares(fine: BlockShares): CoarseShares {
  const out: CoarseShares = { steps: [], block: [], points: [], lossSum: [], minLoss: [], maxLoss: [], firstStep: [], lastStep: [], lastLoss: [] };
  for (const steps of COARSE_BLOCK_STEPS) {
    const perCoarse = steps / LOSS_BLOCK_STEPS;
    let current = -1;
    for (let i = 0; i < fine.block.length; i++) {
      const block = Math.floor(fine.block[i]! / perCoarse);
      if (current < 0 || out.steps[current] !== steps || out.block[current] !== block) {
        current = out.block.push(block) - 1;
        out.steps.push(steps);
        out.points.push(0);
        out.lossSum.push(0);
        out.minLoss.push(fine.minLoss[i]!);
        out.maxLoss.push(fine.maxLoss[i]!);
        out.firstStep.push(fine.firstStep[i]!);
      }
      out.points[current]! += fine.points[i]!;
      out.lossSum[current]! += fine.lossSum[i]!;
      if (fine.minLoss[i]! < out.minLoss[current]!) out.minLoss[current] = fine.minLoss[i]!;
      if (fine.maxLoss[i]! > out.maxLoss[current]!) out.maxLoss[current] = fine.maxLoss[i]!;
      out.lastStep[current] = fine.lastStep[i]!;
      out.lastLoss[current] = fine.lastLoss[i]!;
    }
  }
  return out;
}

// ---- SQL ----------------------------------------------------------------------------------------

const ALPHA = sql`${EMA_ALPHA}::float8`;
/** LOSS_BLOCK_STEPS as a literal: block expressions must read the same in every statement for the planner. */
export const BLOCK = sql.raw(String(LOSS_BLOCK_STEPS));

/** (1-α)^exponent in SQL, capped (MAX_DECAY_EXPONENT). */
export const decaySql = (exponent: SQL) => sql`power(1 - ${ALPHA}, least(${exponent}, ${sql.raw(String(MAX_DECAY_EXPONENT))}))`;

/** Point j's share of a batch's fold over k points in step order: α(1-α)^(k-1-j)·loss (sum them). */
export const foldTerm = (loss: SQL, j: SQL, k: SQL) => sql`${loss} * ${ALPHA} * ${decaySql(sql`${k} - 1 - ${j}`)}`;

/** Point i's share of the seeded EMA over n points in step order (sum them): w₀ = (1-α)^(n-1), wᵢ = α(1-α)^(n-1-i). */
export const seededEmaTerm = (loss: SQL, i: SQL, n: SQL) =>
  sql`${loss} * case when ${i} = 0 then ${decaySql(sql`${n} - 1`)} else ${ALPHA} * ${decaySql(sql`${n} - 1 - ${i}`)} end`;

/**
 * foldIntoSummary of a batch's figures given as values, worked out in JavaScript (BatchFacts, or a
 * compiled statement's placeholders of them): an agent's append and an import's both fold so.
 */
export function foldFactsIntoSummary(f: Record<'points' | 'lastStep' | 'lastLoss' | 'minLoss' | 'minLossStep' | 'fold' | 'decay' | 'firstLoss', unknown>) {
  return foldIntoSummary({
    points: sql`${f.points}::int`,
    lastStep: sql`${f.lastStep}::int`,
    lastLoss: sql`${f.lastLoss}::float8`,
    minLoss: sql`${f.minLoss}::float8`,
    minLossStep: sql`${f.minLossStep}::int`,
    fold: sql`${f.fold}::float8`,
    decay: sql`${f.decay}::float8`,
    firstLoss: sql`${f.firstLoss}::float8`,
  });
}

/**
 * The SET list that folds a batch which only appends into run_summaries row `s`: the batch's point
 * count, last step and loss, minimum and its step, and fold with decay (1-α)^k. A run's first batch
 * (no EMA yet) is seeded with its first loss.
 */
export function foldIntoSummary(b: { points: SQL; lastStep: SQL; lastLoss: SQL; minLoss: SQL; minLossStep: SQL; fold: SQL; decay: SQL; firstLoss: SQL }) {
  return sql`points = s.points + ${b.points},
        last_step = ${b.lastStep},
        last_loss = ${b.lastLoss},
        min_loss = least(s.min_loss, ${b.minLoss}),
        min_loss_step = case when s.min_loss is null or ${b.minLoss} < s.min_loss then ${b.minLossStep} else s.min_loss_step end,
        ema_loss = ${b.fold} + ${b.decay} * coalesce(s.ema_loss, ${b.firstLoss}),
        updated_at = now()`;
}

/** The condition under which a batch starting at `firstStep` only appends to run_summaries row `s`. */
export const appendsTo = (firstStep: SQL) => sql`(s.last_step is null or s.last_step < ${firstStep})`;

/**
 * The whole summary of a set of points (`from`: rows of step, loss, with i their 0-based rank in
 * step order and n their count), as the columns of run_summaries.
 */
export const summaryOfPoints = sql`count(*)::int as points,
        max(step) as last_step,
        (array_agg(loss order by step desc))[1] as last_loss,
        min(loss) as min_loss,
        (array_agg(step order by loss, step))[1] as min_loss_step,
        sum(${seededEmaTerm(sql`loss`, sql`i`, sql`n`)}) as ema_loss`;

/** The rank and count that seededEmaTerm needs, over rows of step and loss. */
export const emaRanks = sql`row_number() over (order by step) - 1 as i, count(*) over () as n`;

/** The seeded EMA of a run's points up to `step`, as a scalar subquery: a checkpoint's EMA. Null without points. */
export const emaUpTo = (runId: SQL, step: SQL) => sql`(
      select sum(${seededEmaTerm(sql`o.loss`, sql`o.i`, sql`o.n`)})
      from (select loss, ${emaRanks} from loss_points p where p.run_id = ${runId} and p.step <= ${step}) o
    )`;

/** A point's block in SQL. */
export const blockOfSql = (step: SQL) => sql`${step} / ${BLOCK}`;

/**
 * The aggregates of a group of points by block, in the column order of loss_blocks after
 * (run_id, block): points, loss_sum, min_loss, max_loss, first_step, last_step, then `lastLoss`
 * (the loss at the group's highest step; the default sorts, a statement that has each point's next
 * step can say which is last without it).
 */
export const blockAggregates = (lastLoss: SQL = sql`(array_agg(loss order by step desc))[1]`) =>
  sql`count(*)::int, sum(loss), min(loss), max(loss), min(step), max(step), ${lastLoss}`;

/** The columns of loss_blocks, as `insert into loss_blocks as lb (…)` lists them. */
export const BLOCK_COLUMNS = sql`(run_id, block, points, loss_sum, min_loss, max_loss, first_step, last_step, last_loss)`;
/** The columns of loss_coarse_blocks: BLOCK_COLUMNS with the level (steps per block) after run_id. */
export const COARSE_BLOCK_COLUMNS = sql`(run_id, steps, block, points, loss_sum, min_loss, max_loss, first_step, last_step, last_loss)`;
/** COARSE_BLOCK_STEPS as an int[] literal. */
export const COARSE_LEVELS = sql.raw(`'{${COARSE_BLOCK_STEPS.join(',')}}'::int[]`);

/**
 * Merges groups of block rows (columns points … last_loss) into one, in the column order of
 * loss_blocks after the block: what coarse blocks are folded from fine ones with.
 */
export const mergedBlocks = sql`sum(points)::int, sum(loss_sum), min(min_loss), max(max_loss), min(first_step), max(last_step),
        (array_agg(last_loss order by last_step desc))[1]`;

/**
 * Adds new points' shares to their loss_blocks rows (`insert into loss_blocks as lb …` before it):
 * count, sum, min, max and the last step are all exact under addition of new points.
 */
export const addToBlocks = addToBlocksOn(sql`(run_id, block)`);
/** addToBlocks for loss_coarse_blocks. */
export const addToCoarseBlocks = addToBlocksOn(sql`(run_id, steps, block)`);

function addToBlocksOn(key: SQL) {
  return sql`on conflict ${key} do update set
        points = lb.points + excluded.points,
        loss_sum = lb.loss_sum + excluded.loss_sum,
        min_loss = least(lb.min_loss, excluded.min_loss),
        max_loss = greatest(lb.max_loss, excluded.max_loss),
        first_step = least(lb.first_step, excluded.first_step),
        last_step = greatest(lb.last_step, excluded.last_step),
        last_loss = case when excluded.last_step > lb.last_step then excluded.last_loss else lb.last_loss end`;
}

/** Replaces loss_blocks rows with shares computed from all of their points. */
export const replaceBlocks = replaceBlocksOn(sql`(run_id, block)`);
/** replaceBlocks for loss_coarse_blocks. */
export const replaceCoarseBlocks = replaceBlocksOn(sql`(run_id, steps, block)`);

function replaceBlocksOn(key: SQL) {
  return sql`on conflict ${key} do update set
      points = excluded.points, loss_sum = excluded.loss_sum, min_loss = excluded.min_loss, max_loss = excluded.max_loss,
      first_step = excluded.first_step, last_step = excluded.last_step, last_loss = excluded.last_loss`;
}
