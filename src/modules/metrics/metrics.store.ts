// Loss points: set-based writes (one unnest per batch) and curves computed in SQL.
import { sql } from 'drizzle-orm';
import { rows, type Executor } from '../../db/client.js';

export interface LossPointRow {
  step: number;
  loss: number;
  lr: number | null;
  recorded_at: unknown;
}

export interface WrittenPoint {
  step: number;
  /** false when it replaced an older attempt's point at the same step */
  inserted: boolean;
}

/**
 * insertLossPoints, in one statement, fenced by the lease: the run row is locked FOR SHARE with the
 * token in the WHERE clause, so a reaper that requeued the run (clearing the token) either commits
 * first — then no row matches and nothing is written — or waits for this batch to commit.
 * ON CONFLICT replaces a point only for a newer attempt: a retried batch, or a zombie's older
 * attempt, changes nothing. Returns null when the fence did not match.
 */
export async function insertLossPoints(
  db: Executor,
  fence: { runId: string; leaseToken: string; apiKeyId: string },
  points: { step: number; loss: number; lr: number | null }[],
): Promise<{ attempt: number; written: WrittenPoint[] } | null> {
  const result = await rows<{ attempt: number | null; written: WrittenPoint[] | null }>(
    db,
    sql`/* insertLossPoints */
    with run as (
      select r.id, r.attempt from runs r
      where r.id = ${fence.runId} and r.lease_token = ${fence.leaseToken}
        and r.agent_id in (select id from agents where api_key_id = ${fence.apiKeyId})
        and r.status in ('CLAIMED', 'RUNNING', 'CANCELLING')
      for share
    ),
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
      returning step, (xmax = 0) as inserted
    )
    select (select attempt from run) as attempt,
           (select json_agg(json_build_object('step', step, 'inserted', inserted)) from written) as written`,
  );
  const row = result[0]!;
  if (row.attempt == null) return null;
  const written = typeof row.written === 'string' ? (JSON.parse(row.written) as WrittenPoint[]) : (row.written ?? []);
  return { attempt: row.attempt, written };
}

export interface Summary {
  points: number;
  last_step: number | null;
  last_loss: number | null;
  min_loss: number | null;
  min_loss_step: number | null;
  ema_loss: number | null;
}

export async function lockSummary(db: Executor, runId: string) {
  const found = await rows<Summary>(
    db,
    sql`/* lockSummary */ select points, last_step, last_loss, min_loss, min_loss_step, ema_loss from run_summaries where run_id = ${runId} for update`,
  );
  return found[0] ?? null;
}

export async function saveSummary(db: Executor, runId: string, s: Summary) {
  await db.execute(sql`/* saveSummary */
    update run_summaries set points = ${s.points}, last_step = ${s.last_step}, last_loss = ${s.last_loss},
      min_loss = ${s.min_loss}, min_loss_step = ${s.min_loss_step}, ema_loss = ${s.ema_loss}, updated_at = now()
    where run_id = ${runId}`);
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
        sum(loss * case when i = 0 then power(1 - ${alpha}::float8, n - 1) else ${alpha}::float8 * power(1 - ${alpha}::float8, n - 1 - i) end) as ema_loss
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
  run_id: string;
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
 * lossCurves: each run's points in [from, to] folded into at most maxPoints equal step ranges.
 * Without bounds a run's range is 0..its last step (from its summary, no scan). min and max keep
 * every spike visible; `last` is the loss at the bucket's highest step.
 */
export function lossCurves(db: Executor, runIds: string[], opts: { maxPoints: number; fromStep?: number | null; toStep?: number | null }) {
  return rows<BucketRow>(
    db,
    sql`/* lossCurves */
    with ranges as (
      select s.run_id,
        coalesce(${opts.fromStep ?? null}::int, 0) as lo,
        coalesce(${opts.toStep ?? null}::int, s.last_step) as hi
      from run_summaries s
      where s.run_id = any(${sql.param(runIds)}::uuid[]) and s.last_step is not null
    ),
    bucketed as (
      select p.run_id, p.step, p.loss,
        ((p.step - r.lo)::bigint * ${opts.maxPoints} / (r.hi - r.lo + 1)) as bucket
      from ranges r
      join loss_points p on p.run_id = r.run_id and p.step between r.lo and r.hi
      where r.hi >= r.lo
    )
    select run_id, max(step) as step, min(step) as from_step, max(step) as to_step,
      min(loss) as min, max(loss) as max, avg(loss) as mean,
      (array_agg(loss order by step desc))[1] as last, count(*)::int as count
    from bucketed
    group by run_id, bucket
    order by run_id, bucket`,
  );
}
