// Loss points: set-based writes (one unnest per batch) and curves computed in SQL.
import { sql, type SQL } from 'drizzle-orm';
import { rows, type Executor } from '../../db/client.js';
import { heldRun, type LeaseFence } from '../dispatch/fence.js';

/**
 * (1-α)^exponent, the weight of a point `exponent` steps back in the EMA. Postgres raises an
 * underflow error past 0.9^7000, so the exponent is capped at 1,000: 0.9^1000 ≈ 1.7e-46, a weight
 * far below float8 precision next to the recent points, so the result does not change.
 */
const decay = (alpha: number, exponent: SQL) => sql`power(1 - ${alpha}::float8, least(${exponent}, 1000))`;

export interface LossPointRow {
  step: number;
  loss: number;
  lr: number | null;
  recorded_at: unknown;
}

/**
 * recordLossBatch, in one statement: the lease fence, the insert, the summary and the NOTIFY.
 *
 * - Fence: heldRun (fence.ts); when it matches no row, nothing is written.
 * - ON CONFLICT replaces a point only for a newer attempt: a retried batch, or an older attempt,
 *   changes nothing.
 * - Summary: when the batch only appends after the summary's last step (training moving forward,
 *   the common case) it is folded in here. The EMA (α, seeded with the first point) over k new
 *   points in step order is  Σⱼ α(1-α)^(k-1-j)·yⱼ + (1-α)^k·(previous EMA, or y₀ for the first batch).
 *   The UPDATE re-reads the summary row if a concurrent batch changed it, so the fold is never
 *   applied to a stale summary. Otherwise `summarized` is false and the caller recomputes.
 */
export async function recordLossBatch(
  db: Executor,
  fence: LeaseFence,
  points: { step: number; loss: number; lr: number | null }[],
  alpha: number,
  channel: string,
) {
  const result = await rows<{ attempt: number | null; written: number; summarized: boolean }>(
    db,
    sql`/* recordLossBatch */
    with run as (${heldRun(fence)}),
    written as (
      insert into loss_points (run_id, step, loss, lr, attempt)
      select run.id, p.step, p.loss, p.lr, run.attempt
      from run, unnest(
        ${sql.param(points.map((p) => p.step))}::int[],
        ${sql.param(points.map((p) => p.loss))}::float8[],
        ${sql.param(points.map((p) => p.lr))}::float8[]
      ) as p(step, loss, lr)
      on conflict (run_id, step) do update
        set loss = excluded.loss, lr = excluded.lr, attempt = excluded.attempt, recorded_at = now()
        where loss_points.attempt < excluded.attempt
      returning step, loss, (xmax = 0) as inserted
    ),
    ordered as (
      select step, loss, inserted, row_number() over (order by step) - 1 as j, count(*) over () as k from written
    ),
    batch as (
      select count(*)::int as n, count(*) filter (where inserted)::int as inserted,
        min(step) as min_step, max(step) as max_step,
        sum(loss * ${alpha}::float8 * ${decay(alpha, sql`k - 1 - j`)}) as fold,
        (array_agg(loss order by step))[1] as first_loss,
        (array_agg(loss order by step desc))[1] as last_loss,
        min(loss) as min_loss,
        (array_agg(step order by loss, step))[1] as min_loss_step
      from ordered
    ),
    summary as (
      update run_summaries s set
        points = s.points + b.n,
        last_step = b.max_step,
        last_loss = b.last_loss,
        min_loss = least(s.min_loss, b.min_loss),
        min_loss_step = case when s.min_loss is null or b.min_loss < s.min_loss then b.min_loss_step else s.min_loss_step end,
        ema_loss = b.fold + ${decay(alpha, sql`b.n`)} * coalesce(s.ema_loss, b.first_loss),
        updated_at = now()
      from batch b
      where s.run_id = ${fence.runId} and b.n > 0 and b.n = b.inserted
        and (s.last_step is null or b.min_step > s.last_step)
      returning 1
    )
    select (select attempt from run) as attempt, b.n as written, exists (select 1 from summary) as summarized,
      case when b.n > 0 then pg_notify(${channel}, json_build_object(
        'runId', ${fence.runId}::text, 'attempt', (select attempt from run), 'from', b.min_step, 'to', b.max_step)::text) end
    from batch b`,
  );
  const row = result[0]!;
  return row.attempt == null ? null : { attempt: row.attempt, written: row.written, summarized: row.summarized };
}

/**
 * recomputeSummary: the whole summary from loss_points, for the rare batch that rewrote earlier
 * steps (a newer attempt resuming from a checkpoint). The EMA over n points in step order, seeded
 * with the first point, is Σ wᵢ·xᵢ with w₀ = (1-α)^(n-1) and wᵢ = α(1-α)^(n-1-i).
 */
export async function recomputeSummary(db: Executor, runId: string, alpha: number) {
  await db.execute(sql`/* recomputeSummary */
    with ordered as (
      select step, loss, row_number() over (order by step) - 1 as i, count(*) over () as n
      from loss_points where run_id = ${runId}
    ),
    agg as (
      select count(*)::int as points,
        max(step) as last_step,
        (array_agg(loss order by step desc))[1] as last_loss,
        min(loss) as min_loss,
        (array_agg(step order by loss, step))[1] as min_loss_step,
        sum(loss * case when i = 0 then ${decay(alpha, sql`n - 1`)} else ${alpha}::float8 * ${decay(alpha, sql`n - 1 - i`)} end) as ema_loss
      from ordered
    )
    update run_summaries s set points = agg.points, last_step = agg.last_step, last_loss = agg.last_loss,
      min_loss = agg.min_loss, min_loss_step = agg.min_loss_step, ema_loss = agg.ema_loss, updated_at = now()
    from agg where s.run_id = ${runId}`);
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

export interface BucketRow {
  step: number;
  from_step: number;
  to_step: number;
  min: number;
  max: number;
  mean: number;
  last: number;
  count: number;
}

/**
 * lossCurve: one run's points in [lo, hi] folded into at most maxPoints equal step ranges. min and
 * max keep every spike visible; `last` is the loss at the bucket's highest step. The bounds are
 * parameters, not columns of a join: with a bucket expression the planner can see is a function of
 * `step` alone it aggregates 100,000 points in about a quarter of the time (it otherwise guessed
 * 33,000 groups and sorted to disk).
 */
export function lossCurve(db: Executor, runId: string, opts: { maxPoints: number; lo: number; hi: number }) {
  // Written into the SQL as literals (they are checked integers): as bind parameters, a cached
  // generic plan cannot see the bucket width and falls back to the slow sort.
  const int = (n: number) => sql.raw(String(Math.trunc(n)));
  const [lo, hi, maxPoints, width] = [int(opts.lo), int(opts.hi), int(opts.maxPoints), int(opts.hi - opts.lo + 1)];
  return rows<BucketRow>(
    db,
    sql`/* lossCurve */
    select max(step) as step, min(step) as from_step, max(step) as to_step,
      min(loss) as min, max(loss) as max, avg(loss) as mean,
      (array_agg(loss order by step desc))[1] as last, count(*)::int as count
    from loss_points
    where run_id = ${runId} and step between ${lo} and ${hi}
    group by (step - ${lo})::bigint * ${maxPoints} / ${width}
    order by 1`,
  );
}

export async function lastSteps(db: Executor, runIds: string[]) {
  const found = await rows<{ run_id: string; last_step: number | null }>(
    db,
    sql`/* lastSteps */ select run_id, last_step from run_summaries where run_id = any(${sql.param(runIds)}::uuid[])`,
  );
  return new Map(found.map((r) => [r.run_id, r.last_step]));
}

/**
 * refreshCheckpointEma: each of the run's checkpoints (or the one at `step`) gets the EMA over the
 * run's points up to its step, by the closed form of recomputeSummary. Run when a checkpoint is
 * reported (the agent flushes its loss first) and when a resumed attempt rewrites earlier steps.
 */
export async function refreshCheckpointEma(db: Executor, runId: string, alpha: number, step?: number) {
  await db.execute(sql`/* refreshCheckpointEma */
    update checkpoints c set ema_loss = (
      select sum(o.loss * case when o.i = 0 then ${decay(alpha, sql`o.n - 1`)}
                                else ${alpha}::float8 * ${decay(alpha, sql`o.n - 1 - o.i`)} end)
      from (
        select loss, row_number() over (order by step) - 1 as i, count(*) over () as n
        from loss_points p where p.run_id = c.run_id and p.step <= c.step
      ) o
    )
    where c.run_id = ${runId} ${step == null ? sql`` : sql`and c.step = ${step}`}`);
}
