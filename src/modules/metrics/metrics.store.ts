// Loss points: set-based writes (one unnest per batch) and curves computed in SQL.
import { sql, type SQL } from 'drizzle-orm';
import { numberArrayText, rows, type Executor } from '../../db/client.js';
import { heldRun, type LeaseFence } from '../dispatch/fence.js';
import type { BatchFacts, LossColumns } from './loss-batch.js';
import { compile, type BoundStatement } from '../../db/statement.js';
import { MAX_NOTE_BYTES } from '../../live/notes.js';
import {
  BLOCK,
  BLOCK_COLUMNS,
  COARSE_BLOCK_COLUMNS,
  COARSE_BLOCK_STEPS,
  COARSE_LEVELS,
  LOSS_BLOCK_STEPS,
  addToBlocks,
  addToCoarseBlocks,
  mergedBlocks,
  replaceCoarseBlocks,
  appendsTo,
  blockAggregates,
  blockOfSql,
  decaySql,
  emaRanks,
  foldFactsIntoSummary,
  foldIntoSummary,
  foldTerm,
  replaceBlocks,
  emaUpTo,
  summaryOfPoints,
} from './summary-arithmetic.js';

export interface LossPointRow {
  step: number;
  loss: number;
  lr: number | null;
  recorded_at: unknown;
}

/**
 * The steps a batch wrote when it could not be folded into the summary (it rewrote or filled in
 * earlier steps), as transaction-local settings: recordLossBatch sets them, and the statements of
 * afterLossBatch run only when they are set. They all leave in one write (db.batch), so the common
 * batch costs one round trip, not BEGIN, a statement and COMMIT each waiting for its answer.
 */
const REWRITE_FROM = 'loralab.loss_rewrite_from';
const REWRITE_TO = 'loralab.loss_rewrite_to';
const rewrittenFrom = sql`nullif(current_setting(${sql.raw(`'${REWRITE_FROM}'`)}, true), '')::int`;
const rewrittenTo = sql`nullif(current_setting(${sql.raw(`'${REWRITE_TO}'`)}, true), '')::int`;
/** A condition without columns: the planner makes it a one-time filter and skips the scan when false. */
const afterRewrite = sql`${rewrittenFrom} is not null`;

export interface RecordedLoss {
  attempt: number;
  written: number;
  summarized: boolean;
  /** The loss NOTIFY's payload, when points were written. */
  note: string | null;
}

/** Up to this many written points ride in the loss NOTIFY (about 50 bytes each as JSON)... */
export const INLINE_POINTS = 150;
// ...as long as the note stays within MAX_NOTE_BYTES (live/notes.ts).

const arrayLiteral = (values: (number | null)[]) => sql.param(numberArrayText(values));

/**
 * appendLossBatch, in one statement, for a batch whose steps all come after the run's last step:
 * the fence, the summary, the points, the blocks and the NOTIFY, with the batch's figures worked
 * out in JavaScript (loss-batch.ts). The summary UPDATE decides: it matches only while the
 * summary's last step is below the batch's first step, re-checked on the newest row version under
 * its lock, and the points and blocks are written only from the row it updated. Every loss write
 * takes that lock before touching points (recordLossBatch's transaction starts with
 * lockLossSummary), so no step of the batch can exist yet: a plain INSERT, no ON CONFLICT. When it
 * matches nothing it wrote nothing, and `appended` is false: the batch goes through
 * recordLossBatch instead (or the lease does not hold: `attempt` is null).
 */
export function appendLossBatch(fence: LeaseFence, columns: LossColumns, facts: BatchFacts) {
  return appendLossBatchStatement({
    ...fence,
    ...facts,
    steps: numberArrayText(columns.steps),
    losses: numberArrayText(columns.losses),
    lrs: numberArrayText(columns.lrs),
    ...shareTexts(facts),
  });
}

/** A batch's shares of its loss_blocks and loss_coarse_blocks rows (loss-batch.ts), each column one array literal. */
export function shareTexts({ blocks, coarse }: Pick<BatchFacts, 'blocks' | 'coarse'>): ShareTexts {
  return {
    blockIds: numberArrayText(blocks.block),
    blockPoints: numberArrayText(blocks.points),
    blockSums: numberArrayText(blocks.lossSum),
    blockMins: numberArrayText(blocks.minLoss),
    blockMaxes: numberArrayText(blocks.maxLoss),
    blockFirstSteps: numberArrayText(blocks.firstStep),
    blockLastSteps: numberArrayText(blocks.lastStep),
    blockLastLosses: numberArrayText(blocks.lastLoss),
    coarseSteps: numberArrayText(coarse.steps),
    coarseIds: numberArrayText(coarse.block),
    coarsePoints: numberArrayText(coarse.points),
    coarseSums: numberArrayText(coarse.lossSum),
    coarseMins: numberArrayText(coarse.minLoss),
    coarseMaxes: numberArrayText(coarse.maxLoss),
    coarseFirstSteps: numberArrayText(coarse.firstStep),
    coarseLastSteps: numberArrayText(coarse.lastStep),
    coarseLastLosses: numberArrayText(coarse.lastLoss),
  };
}

/**
 * shareTexts' fine block shares (or a compiled statement's placeholders of them) as rows, in
 * BLOCK_COLUMNS' order after run_id; `select <run id>, b.* from …` inserts them with addToBlocks.
 */
export const blockShareRows = (v: Record<`block${ShareColumn}`, unknown>) =>
  sql`unnest(${v.blockIds}::int[], ${v.blockPoints}::int[], ${v.blockSums}::float8[], ${v.blockMins}::float8[],
        ${v.blockMaxes}::float8[], ${v.blockFirstSteps}::int[], ${v.blockLastSteps}::int[], ${v.blockLastLosses}::float8[]) as b`;

/** The coarse shares likewise, in COARSE_BLOCK_COLUMNS' order after run_id (addToCoarseBlocks). */
export const coarseShareRows = (v: Record<'coarseSteps' | `coarse${ShareColumn}`, unknown>) =>
  sql`unnest(${v.coarseSteps}::int[], ${v.coarseIds}::int[], ${v.coarsePoints}::int[], ${v.coarseSums}::float8[],
        ${v.coarseMins}::float8[], ${v.coarseMaxes}::float8[], ${v.coarseFirstSteps}::int[], ${v.coarseLastSteps}::int[],
        ${v.coarseLastLosses}::float8[]) as b`;

type ShareColumn = 'Ids' | 'Points' | 'Sums' | 'Mins' | 'Maxes' | 'FirstSteps' | 'LastSteps' | 'LastLosses';
type ShareTexts = Record<'coarseSteps' | `block${ShareColumn}` | `coarse${ShareColumn}`, string>;
type AppendValues = LeaseFence & Omit<BatchFacts, 'blocks' | 'coarse'> & ShareTexts & Record<'steps' | 'losses' | 'lrs', string>;

const appendLossBatchStatement = compile(
  (v: AppendValues) => sql`/* appendLossBatch */
    with run as (${heldRun(v)}),
    appended as (
      update run_summaries s set ${foldFactsIntoSummary(v)}
      from run
      where s.run_id = run.id and ${appendsTo(sql`${v.firstStep}::int`)}
      returning run.id, run.attempt
    ),
    written as (
      insert into loss_points (run_id, step, loss, lr, attempt)
      select a.id, p.step, p.loss, p.lr, a.attempt
      from appended a, unnest(${v.steps}::int[], ${v.losses}::float8[], ${v.lrs}::float8[]) as p(step, loss, lr)
    ),
    block_shares as (
      insert into loss_blocks as lb ${BLOCK_COLUMNS}
      select a.id, b.*
      from appended a, ${blockShareRows(v)}
      ${addToBlocks}
    ),
    coarse_shares as (
      insert into loss_coarse_blocks as lb ${COARSE_BLOCK_COLUMNS}
      select a.id, b.*
      from appended a, ${coarseShareRows(v)}
      ${addToCoarseBlocks}
    )
    select (select attempt from run) as attempt, a.id is not null as appended,
      -- A small batch travels in the notification itself (points, and when they were recorded): the
      -- live feed then needs no query to deliver it. For a larger one, points is null. The caller
      -- sends it after the commit (Database.notifyAfterCommit).
      case when a.id is not null then json_build_object('runId', ${v.runId}::text, 'attempt', a.attempt,
        'from', ${v.firstStep}::int, 'to', ${v.lastStep}::int, 'at', now(), 'points', ${v.inlinePoints}::json)::text end as note
    from (select 1) one left join appended a on true`,
);

/** What appendLossBatch's statement answered. */
export function appendedLoss(result: Record<string, unknown>[]) {
  const row = result[0] as { attempt: number | null; appended: boolean; note: string | null };
  return { leaseHeld: row.attempt != null, appended: row.appended, note: row.note };
}

/**
 * The first statement of every transaction that writes loss points by recordLossBatch: the
 * summary row's lock, which appendLossBatch takes too, so loss writes to one run never interleave
 * (and an append never races a rewrite of the same steps into a unique violation or a deadlock).
 */
export const lockLossSummary = (runId: string) => sql`/* lockLossSummary */ select 1 from run_summaries where run_id = ${runId} for update`;

/**
 * recordLossBatch, in one statement, for any batch (appendLossBatch serves those that only append):
 * the lease fence, the insert, the summary, the blocks and the NOTIFY. Its transaction starts with
 * lockLossSummary.
 *
 * - Fence: heldRun (fence.ts); when it matches no row, nothing is written.
 * - ON CONFLICT replaces a point only for a newer attempt: a retried batch, or an older attempt,
 *   changes nothing.
 * - Summary: when the batch only appends after the summary's last step it is folded in here, by
 *   summary-arithmetic.ts's fold (foldTerm, foldIntoSummary), the one the JavaScript fast path
 *   computes too. Otherwise `summarized` is false, the written step range is left in the
 *   transaction's settings, and afterLossBatch recomputes.
 * - Blocks: the written points are added to their loss_blocks rows. A replaced point cannot be
 *   folded (its old loss may be the block's min or max): such a batch is never summarized, so
 *   afterLossBatch rebuilds the blocks of its step range from the points, in the same transaction.
 */
export function recordLossBatch(fence: LeaseFence, points: LossColumns) {
  return sql`/* recordLossBatch */
    with run as (${heldRun(fence)}),
    written as (
      insert into loss_points (run_id, step, loss, lr, attempt)
      select run.id, p.step, p.loss, p.lr, run.attempt
      from run, unnest(
        ${arrayLiteral(points.steps)}::int[],
        ${arrayLiteral(points.losses)}::float8[],
        ${arrayLiteral(points.lrs)}::float8[]
      ) as p(step, loss, lr)
      on conflict (run_id, step) do update
        set loss = excluded.loss, lr = excluded.lr, attempt = excluded.attempt, recorded_at = now()
        where loss_points.attempt < excluded.attempt
      returning step, loss, lr, (xmax = 0) as inserted
    ),
    ordered as (
      -- One sort, by step, for everything below: the EMA's weights, the first and last points,
      -- the minimum's step and each block's last point.
      select step, loss, inserted, row_number() over w - 1 as j, count(*) over () as k,
        min(loss) over () as lowest, lead(step) over w as next_step
      from written window w as (order by step)
    ),
    batch as (
      select count(*)::int as n, count(*) filter (where inserted)::int as inserted,
        min(step) as min_step, max(step) as max_step,
        sum(${foldTerm(sql`loss`, sql`j`, sql`k`)}) as fold,
        min(loss) filter (where j = 0) as first_loss,
        min(loss) filter (where j = k - 1) as last_loss,
        min(loss) as min_loss,
        min(step) filter (where loss = lowest) as min_loss_step
      from ordered
    ),
    summary as (
      update run_summaries s set ${foldIntoSummary({
        points: sql`b.n`,
        lastStep: sql`b.max_step`,
        lastLoss: sql`b.last_loss`,
        minLoss: sql`b.min_loss`,
        minLossStep: sql`b.min_loss_step`,
        fold: sql`b.fold`,
        decay: decaySql(sql`b.n`),
        firstLoss: sql`b.first_loss`,
      })}
      from batch b
      where s.run_id = ${fence.runId} and b.n > 0 and b.n = b.inserted and ${appendsTo(sql`b.min_step`)}
      returning 1
    ),
    blocks as (
      -- Every written point, replaced ones included: a batch that replaced any is not summarized,
      -- and afterLossBatch then rebuilds these blocks from the points.
      insert into loss_blocks as lb ${BLOCK_COLUMNS}
      select ${fence.runId}::uuid, ${blockOfSql(sql`step`)},
        ${blockAggregates(sql`min(loss) filter (where next_step is null or ${blockOfSql(sql`next_step`)} <> ${blockOfSql(sql`step`)})`)}
      from ordered
      group by ${blockOfSql(sql`step`)}
      ${addToBlocks}
    ),
    coarse_blocks as (
      -- The same at every coarse level (replaced points are rebuilt from there too).
      insert into loss_coarse_blocks as lb ${COARSE_BLOCK_COLUMNS}
      select ${fence.runId}::uuid, c.steps, step / c.steps,
        ${blockAggregates(sql`min(loss) filter (where next_step is null or next_step / c.steps <> step / c.steps)`)}
      from ordered, unnest(${COARSE_LEVELS}) as c(steps)
      group by c.steps, step / c.steps
      ${addToCoarseBlocks}
    ),
    outcome as (
      select b.*, exists (select 1 from summary) as summarized from batch b
    )
    select (select attempt from run) as attempt, o.n as written, o.summarized,
      set_config(${sql.raw(`'${REWRITE_FROM}'`)}, case when o.n > 0 and not o.summarized then o.min_step::text else '' end, true) as rewrite_from,
      set_config(${sql.raw(`'${REWRITE_TO}'`)}, case when o.n > 0 and not o.summarized then o.max_step::text else '' end, true) as rewrite_to,
      -- The NOTIFY's payload; the caller sends it after the commit (Database.notifyAfterCommit).
      case when o.n > 0 then case
        when o.n <= ${INLINE_POINTS} and length(inline.note) <= ${MAX_NOTE_BYTES} then inline.note
        else json_build_object('runId', ${fence.runId}::text, 'attempt', (select attempt from run), 'from', o.min_step, 'to', o.max_step, 'at', now())::text
      end end as note
    from outcome o
    -- A small batch travels in the notification itself: the live feed then needs no query to
    -- deliver it. Skipped (and never built) for batches too large to fit.
    left join lateral (
      select json_build_object('runId', ${fence.runId}::text, 'attempt', (select attempt from run), 'from', o.min_step, 'to', o.max_step,
        'at', now(), 'points', json_agg(json_build_array(w.step, w.loss, w.lr) order by w.step))::text as note
      from written w where o.n <= ${INLINE_POINTS}
    ) inline on true`;
}

/** What recordLossBatch's statement answered: null when the fence matched no run. */
export function recordedLoss(result: Record<string, unknown>[]): RecordedLoss | null {
  const row = result[0] as { attempt: number | null; written: number; summarized: boolean; note: string | null };
  return row.attempt == null ? null : { attempt: row.attempt, written: row.written, summarized: row.summarized, note: row.note };
}

/**
 * For a writer other than recordLossBatch (an import): marks steps `from`..`to` as written out of
 * order, so the statements of afterLossBatch that follow in its transaction bring the summary, the
 * checkpoints' EMA and the loss blocks of that range up to date.
 */
export const markLossRewritten = (from: number, to: number) =>
  sql`/* markLossRewritten */ select set_config(${sql.raw(`'${REWRITE_FROM}'`)}, ${String(from)}, true), set_config(${sql.raw(`'${REWRITE_TO}'`)}, ${String(to)}, true)`;

/**
 * The statements that follow recordLossBatch in its transaction. Each does nothing unless the batch
 * rewrote or filled in earlier steps (a newer attempt resuming from a checkpoint): then the summary
 * and every checkpoint's EMA are recomputed, and the loss blocks of the written range rebuilt.
 */
export function afterLossBatch(runId: string) {
  return [recomputeSummary(runId, afterRewrite), refreshCheckpointEmaSql(runId, undefined, afterRewrite), rebuildLossBlocks(runId)];
}

/**
 * recomputeSummary: the whole summary from loss_points, for the rare batch that rewrote earlier
 * steps (a newer attempt resuming from a checkpoint), by the closed form (summary-arithmetic.ts).
 */
function recomputeSummary(runId: string, when: SQL) {
  return sql`/* recomputeSummary */
    with ordered as (
      select step, loss, ${emaRanks}
      from loss_points where run_id = ${runId}
    ),
    agg as (
      select ${summaryOfPoints}
      from ordered
    )
    update run_summaries s set points = agg.points, last_step = agg.last_step, last_loss = agg.last_loss,
      min_loss = agg.min_loss, min_loss_step = agg.min_loss_step, ema_loss = agg.ema_loss, updated_at = now()
    from agg where s.run_id = ${runId} and ${when}`;
}

/** recomputeSummary unconditionally: for a writer that filled in steps before the summary's last one (an import). */
export const recomputeLossSummary = (runId: string) => recomputeSummary(runId, sql`true`);

/**
 * rebuildLossBlocks: the loss_blocks rows of the steps recordLossBatch left in the settings,
 * recomputed from the points (points are replaced, never deleted, so every block that had points
 * still has some and is overwritten), and the loss_coarse_blocks rows over them merged from those
 * fresh blocks and the stored ones beside them (whose points did not change): the points of the
 * rewritten range are read once, whatever the level.
 */
function rebuildLossBlocks(runId: string) {
  const widest = sql.raw(String(COARSE_BLOCK_STEPS.at(-1)! / LOSS_BLOCK_STEPS));
  return sql`/* rebuildLossBlocks */
    with fresh as (
      select ${blockOfSql(sql`step`)} as block, ${blockAggregates()}
      from loss_points
      where run_id = ${runId} and ${afterRewrite}
        and step between ${rewrittenFrom} / ${BLOCK} * ${BLOCK} and ${rewrittenTo}::bigint / ${BLOCK} * ${BLOCK} + ${BLOCK} - 1
      group by ${blockOfSql(sql`step`)}
    ),
    fine as (
      insert into loss_blocks as lb ${BLOCK_COLUMNS}
      select ${runId}::uuid, fresh.* from fresh
      ${replaceBlocks}
    ),
    -- The fine blocks of every coarse block the range touches (at the widest level, which holds the others).
    merged (block, points, loss_sum, min_loss, max_loss, first_step, last_step, last_loss) as (
      select * from fresh
      union all
      select block, points, loss_sum, min_loss, max_loss, first_step, last_step, last_loss
      from loss_blocks
      where run_id = ${runId} and ${afterRewrite}
        and block between ${rewrittenFrom} / ${BLOCK} / ${widest} * ${widest} and ${rewrittenTo} / ${BLOCK} / ${widest} * ${widest} + ${widest} - 1
        and block not between ${rewrittenFrom} / ${BLOCK} and ${rewrittenTo} / ${BLOCK}
    )
    insert into loss_coarse_blocks as lb ${COARSE_BLOCK_COLUMNS}
    select ${runId}::uuid, c.steps, block / (c.steps / ${BLOCK}), ${mergedBlocks}
    from merged, unnest(${COARSE_LEVELS}) as c(steps)
    where block between ${rewrittenFrom} / c.steps * (c.steps / ${BLOCK}) and ${rewrittenTo} / c.steps * (c.steps / ${BLOCK}) + c.steps / ${BLOCK} - 1
    group by c.steps, block / (c.steps / ${BLOCK})
    ${replaceCoarseBlocks}`;
}

/** The run's current attempt and the last step of its loss; null when the run does not exist. */
export async function lossPosition(db: Executor, runId: string) {
  const [row] = await rows<{ attempt: number; last_step: number | null }>(
    db,
    sql`/* lossPosition */ select r.attempt, s.last_step from runs r left join run_summaries s on s.run_id = r.id where r.id = ${runId}`,
  );
  return row ? { attempt: row.attempt, lastStep: row.last_step } : null;
}

export function listLossPoints(db: Executor, runId: string, opts: { afterStep: number; limit: number; attempt?: number; toStep?: number }) {
  return rows<LossPointRow & { attempt: number }>(
    db,
    sql`/* listLossPoints */
    select step, loss, lr, recorded_at, attempt from loss_points
    where run_id = ${runId} and step > ${opts.afterStep}
      ${opts.toStep != null ? sql`and step <= ${opts.toStep}` : sql``}
      ${opts.attempt != null ? sql`and attempt = ${opts.attempt}` : sql``}
    order by step
    limit ${opts.limit}`,
  );
}

/**
 * A loss curve: one run's points in [lo, hi] folded into at most maxPoints ranges of steps.
 * min and max keep every spike visible; `last` is the loss at the bucket's highest step; counts add
 * up to the points in range. Without toStep, hi is the run's last step, read from its summary.
 *
 * curveFromBlocks serves a range that spans at least maxPoints blocks of LOSS_BLOCK_STEPS from the
 * rollups, at the widest level of which the range spans maxPoints blocks (loss_blocks, or a level
 * of loss_coarse_blocks): about 1,000 rows for a curve of 100,000 points and for one of 1,000,000,
 * where folding the points themselves is many times slower (a sort of 100,000 rows that the
 * planner, guessing a few rows, sends to disk; bench/ingestion.ts). Its buckets are whole blocks of
 * that level (block b goes to bucket (b - first block) · maxPoints / blocks): the statement sends
 * the parts (blocks, and points folded by block at cut ends) and bucketsFromParts folds them into
 * buckets. Where an end of the range cuts a coarse block, its part in range is folded from the
 * whole fine blocks in it and the points of the fine block the end cuts, so every figure stays
 * exact: [lo, T] (T = toStep, or the end of Int) splits at steps
 * lo ≤ fineFrom ≤ coarseFrom ≤ coarseTo ≤ fineTo ≤ T + 1 into points, fine blocks, coarse blocks,
 * fine blocks and points (coarseFrom = coarseTo = fineTo when the level is loss_blocks'). A range
 * past the last step needs no cut: no point lies beyond it. For a narrower range it answers only
 * `hi` and `blocks`, and the caller folds the points with curveFromPoints.
 *
 * Parameters, not literals, so that it is prepared once per connection (one text for each shape:
 * the columns the fields need, with or without a cut head, with or without toStep), and its text
 * is built once per shape (compile): drizzle walking the template of this CTE on every call cost
 * about a tenth of a curve request's time in the server.
 */
export function curveFromBlocks(runId: string, opts: { maxPoints: number; lo: number; toStep: number | null; fields: BucketFields }) {
  const { lo, maxPoints, toStep } = opts;
  const end = (toStep ?? MAX_STEP) + 1;
  // Whole fine blocks lie in [fineFrom, fineTo); points outside it (to the ends) are folded one by one.
  const fineFrom = Math.min(Math.ceil(lo / LOSS_BLOCK_STEPS) * LOSS_BLOCK_STEPS, end);
  const fineTo = Math.max(Math.floor(end / LOSS_BLOCK_STEPS) * LOSS_BLOCK_STEPS, fineFrom);
  const shape = { fields: opts.fields, cutHead: lo < fineFrom, toStep: toStep != null };
  const key = `${partColumns(shape.fields).join()}|${shape.cutHead}|${shape.toStep}`;
  let statement = curveStatements.get(key);
  if (!statement) curveStatements.set(key, (statement = compile((v: CurveValues) => curveFromBlocksSql(shape, v))));
  return statement({ runId, lo, maxPoints, toStep, end, fineFrom, fineTo });
}

type CurveValues = { runId: string; lo: number; maxPoints: number; toStep: number | null; end: number; fineFrom: number; fineTo: number };

/** curveFromBlocks' statements, compiled once per shape: the parts' columns, a cut head, a toStep. */
const curveStatements = new Map<string, (values: CurveValues) => BoundStatement>();

/** curveFromBlocks' SQL for one shape; every value in it is a parameter. */
function curveFromBlocksSql(shape: { fields: BucketFields; cutHead: boolean; toStep: boolean }, v: CurveValues) {
  const { runId, lo, maxPoints, fineFrom, fineTo, end } = v;
  const levels = sql.raw(`(values ${[LOSS_BLOCK_STEPS, ...COARSE_BLOCK_STEPS].map((steps) => `(${steps})`).join(', ')})`);
  // No block number: a part's bucket follows from its last step (bucketsFromParts).
  const parts = sql`points, loss_sum, min_loss, max_loss, first_step, last_step, last_loss`;
  const fineBlocks = (from: SQL, to: SQL) => sql`
      select ${parts}
      from bounds, loss_blocks
      where run_id = ${runId} and block >= ${from} / ${BLOCK} and block < ${to} / ${BLOCK}`;
  const points = (from: SQL, to: SQL) => sql`
      select ${blockAggregates()}
      from bounds, loss_points
      where run_id = ${runId} and step >= ${from} and step < ${to}
      group by step / steps`;
  return sql`/* lossCurveFromBlocks */
    with range as (
      -- A toStep past the last step (up to Int's end) means the end of the run.
      select hi, hi / ${BLOCK} - ${lo}::int / ${BLOCK} + 1 as blocks
      from (select least(${v.toStep}::int, last_step) as hi from run_summaries where run_id = ${runId}) s
      where hi >= ${lo}
    ),
    level as (
      -- The widest blocks of which the range spans maxPoints; none when even loss_blocks' are fewer.
      select l.steps, range.hi / l.steps - ${lo}::int / l.steps + 1 as blocks
      from range, ${levels} as l(steps)
      where range.hi / l.steps - ${lo}::int / l.steps + 1 >= ${maxPoints}::int
      order by l.steps desc limit 1
    ),
    bounds as (
      select steps, blocks, coarse_from, greatest(case when steps = ${BLOCK} then ${fineTo}::bigint else ${end}::bigint / steps * steps end, coarse_from) as coarse_to
      from (
        select steps, blocks, case when steps = ${BLOCK} then ${fineTo}::bigint else least((${lo}::bigint + steps - 1) / steps * steps, ${fineTo}::bigint) end as coarse_from
        from level
      ) l
    ),
    parts (${parts}) as (
      select ${parts}
      from bounds, loss_coarse_blocks c
      where run_id = ${runId} and c.steps = bounds.steps and block >= coarse_from / bounds.steps and block < coarse_to / bounds.steps
      union all ${fineBlocks(sql`${fineFrom}::bigint`, sql`coarse_from`)}
      -- Without toStep the range runs to the end of the run: nothing is cut there, and the
      -- statement leaves out what would read nothing (as it does a head that no block cuts).
      ${!shape.toStep ? sql`` : sql`union all ${fineBlocks(sql`coarse_to`, sql`${fineTo}::bigint`)}`}
      ${shape.cutHead ? sql`union all ${points(sql`${lo}::int`, sql`${fineFrom}::bigint`)}` : sql``}
      ${!shape.toStep ? sql`` : sql`union all ${points(sql`${fineTo}::bigint`, sql`${end}::bigint`)}`}
    )
    -- One row: the range, its level, and the parts as bytes, a column after another (partsBinary).
    select hi, blocks, (select steps from bounds) as steps, (select blocks from bounds) as level_blocks,
      ${partsBinary(shape.fields)} as parts
    from range`;
}

/** Int's largest value: the highest step there can be. */
const MAX_STEP = 2_147_483_647;

/**
 * What curveFromBlocks answers: no row when the range is empty; else the range's last step and its
 * fine blocks and, when they are at least maxPoints, the level's steps per block and blocks in the
 * range, and its parts as partsBinary writes them (null for none); bucketsFromParts folds them.
 */
export interface BlockCurveRow {
  hi: number;
  blocks: number;
  steps: number | null;
  level_blocks: number | null;
  parts: Uint8Array | null;
}

/**
 * The parts' columns that the selected fields are folded from, each once, last_step first: a part's
 * level block is ⌊last_step / steps⌋ (every part lies within one block of its level), so it also
 * says which bucket the part goes to.
 */
function partColumns(fields: BucketFields) {
  return [...new Set(['last_step', ...BUCKET_FIELDS.filter((f) => fields.has(f)).flatMap((f) => PART_COLUMNS_OF[f])])];
}

/** The parts' columns each LossBucket field is folded from, besides last_step. */
const PART_COLUMNS_OF: Record<BucketField, string[]> = {
  step: [],
  fromStep: ['first_step'],
  toStep: [],
  min: ['min_loss'],
  max: ['max_loss'],
  mean: ['loss_sum', 'points'],
  last: ['last_loss'],
  count: ['points'],
};

/**
 * curveFromBlocks' parts as one bytea: each of partColumns in turn, a float8 per part, as
 * float8send writes it. In no order: bucketsFromParts folds them in any. Folding a thousand parts
 * into buckets in JavaScript costs a few hundredths of a millisecond; PostgreSQL's hash aggregate,
 * the sort of its groups and `last`'s per-row arrays cost it about a millisecond, two thirds of
 * the statement (bench/ratios.ts).
 */
const partsBinary = (fields: BucketFields) =>
  sql`(select ${sql.raw(partColumns(fields).map((c) => `string_agg(float8send(${c}::float8), ''::bytea)`).join(' || '))} from parts)`;

/**
 * curveFromBlocks' parts folded into its buckets: a part of level block b goes to bucket
 * ⌊(b - ⌊lo / steps⌋) · maxPoints / levelBlocks⌋, as whole blocks of that level. The figures are
 * those of the SQL that folds points (curveFromPoints): min and max, the mean as the sum over the
 * points, `last` at the highest step, the count.
 */
export function bucketsFromParts(fields: BucketFields, row: BlockCurveRow, lo: number, maxPoints: number): CurveBucket[] {
  if (!row.parts?.byteLength || row.steps == null || row.level_blocks == null) return [];
  const columns = partColumns(fields);
  const { rows: n, view } = float8Columns(row.parts, columns.length);
  // Each column's first byte; below 0 for one the fields do not need.
  const [lastStepAt, firstStepAt, minAt, maxAt, sumAt, pointsAt, lastLossAt] = PART_COLUMNS.map((c) => columns.indexOf(c) * n * 8);
  const { steps, level_blocks: levelBlocks } = row;
  const firstBlock = Math.floor(lo / steps);
  // The buckets as columns, one slot per bucket there can be (no object per part).
  const [fromStep, toStep, min, max, sum, count, last] = Array.from({ length: 7 }, () => new Float64Array(maxPoints));
  const seen = new Uint8Array(maxPoints);
  for (let i = 0, at = 0; i < n; i++, at += 8) {
    const to = view.getFloat64(lastStepAt! + at);
    const b = Math.floor(((Math.floor(to / steps) - firstBlock) * maxPoints) / levelBlocks);
    const first = seen[b] === 0;
    seen[b] = 1;
    if (firstStepAt! >= 0) fromStep![b] = first ? view.getFloat64(firstStepAt! + at) : Math.min(fromStep![b]!, view.getFloat64(firstStepAt! + at));
    if (minAt! >= 0) min![b] = first ? view.getFloat64(minAt! + at) : Math.min(min![b]!, view.getFloat64(minAt! + at));
    if (maxAt! >= 0) max![b] = first ? view.getFloat64(maxAt! + at) : Math.max(max![b]!, view.getFloat64(maxAt! + at));
    if (sumAt! >= 0) sum![b] += view.getFloat64(sumAt! + at);
    if (pointsAt! >= 0) count![b] += view.getFloat64(pointsAt! + at);
    if (first || to > toStep![b]!) {
      toStep![b] = to;
      if (lastLossAt! >= 0) last![b] = view.getFloat64(lastLossAt! + at);
    }
  }
  const has = (field: BucketField) => fields.has(field);
  const [hasStep, hasFrom, hasTo, hasMin, hasMax, hasMean, hasLast, hasCount] = BUCKET_FIELDS.map(has);
  const buckets: CurveBucket[] = [];
  for (let b = 0; b < maxPoints; b++) {
    if (seen[b] === 0) continue;
    // One shape for every bucket, as bucketsOf builds them.
    buckets.push({
      step: hasStep ? toStep![b] : undefined,
      fromStep: hasFrom ? fromStep![b] : undefined,
      toStep: hasTo ? toStep![b] : undefined,
      min: hasMin ? min![b] : undefined,
      max: hasMax ? max![b] : undefined,
      mean: hasMean ? sum![b]! / count![b]! : undefined,
      last: hasLast ? last![b] : undefined,
      count: hasCount ? count![b] : undefined,
    });
  }
  return buckets;
}

/** The columns partColumns picks from, in the order bucketsFromParts reads them. */
const PART_COLUMNS = ['last_step', 'first_step', 'min_loss', 'max_loss', 'loss_sum', 'points', 'last_loss'] as const;

// Written into the SQL as literals (they are checked integers): as bind parameters, a cached
// generic plan cannot see the bucket width and falls back to the slow sort.
const int = (n: number) => sql.raw(String(Math.trunc(n)));

/**
 * The points in [lo, hi] folded into maxPoints equal step ranges. The bounds are parameters, not
 * columns of a join: with a bucket expression the planner can see is a function of `step` alone it
 * aggregates 100,000 points in about a quarter of the time (it otherwise guessed 33,000 groups and
 * sorted to disk).
 */
export async function curveFromPoints(
  db: Executor,
  runId: string,
  opts: { maxPoints: number; lo: number; hi: number; slice?: { from: number; to: number }; fields: BucketFields },
) {
  const [lo, maxPoints, width] = [int(opts.lo), int(opts.maxPoints), int(opts.hi - opts.lo + 1)];
  // The buckets are laid over [lo, hi]; a slice folds only those between its steps.
  const [from, to] = opts.slice ? [int(opts.slice.from), int(opts.slice.to)] : [lo, int(opts.hi)];
  // As curveFromBlocks: one row, the buckets as bytes (bucketsBinary), which is read far faster than a
  // driver parses 10,000 rows of 7 fields (time in which the server answers nothing else).
  const [row] = await rows<{ buckets: Uint8Array | null }>(
    db,
    sql`/* lossCurveFromPoints */
    select ${bucketsBinary(
      opts.fields,
      sql`(
        select (step - ${lo})::bigint * ${maxPoints} / ${width} as bucket, min(step) as from_step, max(step) as to_step, min(loss) as min, max(loss) as max, avg(loss) as mean,
          ${pick(opts.fields, 'last', lastOf(sql`step`, sql`loss`))} as last, count(*)::int as count
        from loss_points
        where run_id = ${runId} and step between ${from} and ${to}
        group by 1
      ) folded`,
    )} as buckets`,
  );
  return bucketsOf(opts.fields, row?.buckets ?? null);
}

/** A bucket as the curve statements send it: the LossBucket fields its query selected, and no others. */
export type CurveBucket = Partial<Record<BucketField, number>>;

export const BUCKET_FIELDS = ['step', 'fromStep', 'toStep', 'min', 'max', 'mean', 'last', 'count'] as const;
export type BucketField = (typeof BUCKET_FIELDS)[number];
export type BucketFields = ReadonlySet<BucketField>;
export const ALL_BUCKET_FIELDS: BucketFields = new Set(BUCKET_FIELDS);

/** Each LossBucket field's column in the curve statements' `buckets` (a bucket's step is its last). */
const BUCKET_COLUMNS: Record<BucketField, string> = {
  step: 'to_step',
  fromStep: 'from_step',
  toStep: 'to_step',
  min: 'min',
  max: 'max',
  mean: 'mean',
  last: 'last',
  count: 'count',
};

/**
 * A curve sends only the fields its query selects, as the very objects GraphQL reads them from: the
 * text of 10,000 full buckets is about a megabyte that the server would parse, copy into objects
 * and throw away again, time in which it answers nobody else. `last` is also the costliest
 * aggregate, so it is left out unless asked for.
 */
const pick = (fields: BucketFields, field: BucketField, expression: SQL) => (fields.has(field) ? expression : sql`null`);

/**
 * The value at the highest step of a group: the greatest [step, value] pair (steps differ, and a
 * float8 holds every Int exactly). About half the cost of array_agg(value order by step desc),
 * which sorts each group.
 */
const lastOf = (step: SQL, value: SQL) => sql`(max(array[${step}::float8, ${value}]))[2]`;

/** The columns a curve statement sends for `fields`, each once (step and toStep share one), in a fixed order. */
function bucketColumns(fields: BucketFields) {
  const columns = [...new Set(BUCKET_FIELDS.filter((f) => fields.has(f)).map((f) => BUCKET_COLUMNS[f]))];
  // Without any figure, the buckets are still counted (a selection of __typename alone).
  return columns.length ? columns : ['to_step'];
}

/**
 * The buckets of `from` as one bytea: each column of bucketColumns in turn, a float8 per bucket
 * in bucket order, as float8send writes it (8 bytes, network order). Nothing prints or parses a
 * number on the way: PostgreSQL's float8 text output and JavaScript's reading of it were about a
 * third of a long curve's cost, and json_agg of rows cost more still. Null when there are no
 * buckets. `from` has a `bucket` column, the number its rows are grouped by: its GroupAggregate
 * yields them in that order, so ordering by it costs no second sort, and an aggregate reads a
 * sorted subquery's rows in its order.
 */
const bucketsBinary = (fields: BucketFields, from: SQL) =>
  sql`(select ${sql.raw(bucketColumns(fields).map((c) => `string_agg(float8send(${c}::float8), ''::bytea)`).join(' || '))} from (select * from ${from} order by bucket) b)`;

/** A curve statement's bytes (bucketsBinary, partsBinary): `count` columns of float8, how many rows each, and a view to read them. */
function float8Columns(bytes: Uint8Array, count: number) {
  const rows = bytes.byteLength / (8 * count);
  if (!Number.isInteger(rows)) throw new Error(`a curve's ${bytes.byteLength} bytes do not hold ${count} whole columns of float8`);
  return { rows, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

/** bucketsBinary read back into LossBucket objects of the selected fields. */
export function bucketsOf(fields: BucketFields, bytes: Uint8Array | null): CurveBucket[] {
  if (!bytes?.byteLength) return [];
  const columns = bucketColumns(fields);
  const { rows: length, view } = float8Columns(bytes, columns.length);
  // Each field's column's first byte; -1 for a field the query did not select.
  const [step, fromStep, toStep, min, max, mean, last, count] = BUCKET_FIELDS.map((f) =>
    fields.has(f) ? columns.indexOf(BUCKET_COLUMNS[f]) * length * 8 : -1,
  ) as number[];
  const at = (column: number, i: number) => (column < 0 ? undefined : view.getFloat64(column + i * 8));
  const buckets: CurveBucket[] = new Array(length);
  // Every bucket of one shape, each field named in one place (undefined where not selected): V8
  // builds these many times faster than objects given their keys one by one.
  for (let i = 0; i < length; i++) {
    buckets[i] = {
      step: at(step!, i),
      fromStep: at(fromStep!, i),
      toStep: at(toStep!, i),
      min: at(min!, i),
      max: at(max!, i),
      mean: at(mean!, i),
      last: at(last!, i),
      count: at(count!, i),
    };
  }
  return buckets;
}

/**
 * refreshCheckpointEma: each of the run's checkpoints (or the one at `step`) gets the EMA over the
 * run's points up to its step, by the closed form of recomputeSummary. Run when a checkpoint is
 * reported (the agent flushes its loss first) and when a resumed attempt rewrites earlier steps.
 */
export async function refreshCheckpointEma(db: Executor, runId: string, step?: number) {
  await db.execute(refreshCheckpointEmaSql(runId, step));
}

export function refreshCheckpointEmaSql(runId: string, step?: number, when: SQL = sql`true`) {
  return sql`/* refreshCheckpointEma */
    update checkpoints c set ema_loss = ${emaUpTo(sql`c.run_id`, sql`c.step`)}
    where c.run_id = ${runId} and ${when} ${step == null ? sql`` : sql`and c.step = ${step}`}`;
}
