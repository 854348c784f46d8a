import { asc, eq, inArray, sql } from 'drizzle-orm';
import type { Database } from '../../db/client.js';
import { compile } from '../../db/statement.js';
import { mapRow } from '../../db/map-row.js';
import { heldRun, type LeaseFence } from '../dispatch/fence.js';
import { checkpoints, ratings, runs, samples } from '../../db/schema.js';
import type { Executor } from '../../db/client.js';
import { emaUpTo } from '../metrics/summary-arithmetic.js';
import { insertEventsCte } from '../runs/events.store.js';
import { announceEventsExpression, announceRunChangedExpression } from '../../live/run-feeds.js';

export type CheckpointRecord = typeof checkpoints.$inferSelect;
export type SampleRecord = typeof samples.$inferSelect;
export type RatingRecord = typeof ratings.$inferSelect;

export function findCheckpointsByIds(db: Executor, ids: readonly string[]) {
  return db.select().from(checkpoints).where(inArray(checkpoints.id, [...ids]));
}

export function findCheckpointsByRuns(db: Executor, runIds: readonly string[]) {
  return db
    .select()
    .from(checkpoints)
    .where(inArray(checkpoints.runId, [...runIds]))
    .orderBy(asc(checkpoints.step));
}

export function findSamplesByRuns(db: Executor, runIds: readonly string[]) {
  return db
    .select()
    .from(samples)
    .where(inArray(samples.runId, [...runIds]))
    .orderBy(asc(samples.step), asc(samples.promptIndex));
}

export function findRatingsByCheckpoints(db: Executor, checkpointIds: readonly string[]) {
  return db
    .select()
    .from(ratings)
    .where(inArray(ratings.checkpointId, [...checkpointIds]))
    .orderBy(asc(ratings.createdAt), asc(ratings.id));
}

export interface CheckpointReport {
  step: number;
  path: string;
  sizeBytes: number | null;
  sha256: string | null;
  isFinal: boolean;
  pruned: boolean;
}

/**
 * reportCheckpoint in one statement fenced by the lease, as the rest of the agent's protocol:
 *
 * - Upsert, idempotent per (run, step): a retry changes nothing, a newer attempt's file replaces an
 *   older one's, pruning (ai-toolkit's "Removing old save") only ever sets pruned_at, and a
 *   checkpoint once final stays final. A final checkpoint must be at the run's total steps: at
 *   any other step nothing is written, and `run_steps` lets the caller say why.
 * - EMA: a saved (not pruned) checkpoint gets the EMA of the run's points up to its step (the
 *   agent flushes loss first); a pruning report keeps the one it had.
 * - When the report changed what is known (a new checkpoint, another file, final, pruned), an event
 *   is appended, and the run's change and the event are announced (NOTIFY, delivered on commit).
 *
 * One row: `run_steps` (null when the run does not exist) and the checkpoint's columns when it was
 * written (null when the fence or the final rule turned it down).
 */
export async function reportCheckpoint(db: Database, fence: LeaseFence, c: CheckpointReport) {
  const [row] = await db.prepared(reportCheckpointStatement({ ...fence, ...c }));
  const found = row as ({ run_steps: number | null; id: string | null } & Record<string, unknown>) | undefined;
  return { runSteps: found?.run_steps ?? null, saved: found?.id ? mapRow(checkpoints, found) : null };
}

const reportCheckpointStatement = compile(
  (v: LeaseFence & CheckpointReport) => sql`/* reportCheckpoint */
    with run as (${heldRun(v)}),
    target as (select id, experiment_id, status, steps from runs where id = ${v.runId}),
    before as (select path, sha256, is_final, pruned_at from checkpoints where run_id = ${v.runId} and step = ${v.step}::int),
    saved as (
      insert into checkpoints (run_id, step, path, size_bytes, sha256, is_final, attempt, pruned_at, ema_loss)
      select run.id, ${v.step}::int, ${v.path}::text, ${v.sizeBytes}::float8, ${v.sha256}::text, ${v.isFinal}::boolean, run.attempt,
        case when ${v.pruned}::boolean then now() end,
        case when not ${v.pruned}::boolean then ${emaUpTo(sql`run.id`, sql`${v.step}::int`)} end
      from run
      where not (${v.isFinal}::boolean and run.steps <> ${v.step}::int)
      on conflict (run_id, step) do update set
        -- A pruning report only marks the file gone; anything else (re)describes the file.
        path = case when ${v.pruned}::boolean then checkpoints.path else excluded.path end,
        size_bytes = case when ${v.pruned}::boolean then checkpoints.size_bytes else coalesce(excluded.size_bytes, checkpoints.size_bytes) end,
        sha256 = case when ${v.pruned}::boolean then checkpoints.sha256 else coalesce(excluded.sha256, checkpoints.sha256) end,
        is_final = checkpoints.is_final or excluded.is_final,
        attempt = excluded.attempt,
        pruned_at = case
          when checkpoints.attempt < excluded.attempt then excluded.pruned_at
          else coalesce(checkpoints.pruned_at, excluded.pruned_at) end,
        ema_loss = case when ${v.pruned}::boolean then checkpoints.ema_loss else excluded.ema_loss end
        where checkpoints.attempt <= excluded.attempt
      returning *
    ),
    changed as (
      select s.* from saved s
      where not exists (select 1 from before)
        or exists (select 1 from before b where b.path <> s.path or b.sha256 is distinct from s.sha256 or b.is_final <> s.is_final
          or (b.pruned_at is null) <> (s.pruned_at is null))
    ),
    ${insertEventsCte(
      'event',
      sql`select c.run_id, case when ${v.pruned}::boolean then 'CHECKPOINT_PRUNED' else 'CHECKPOINT_SAVED' end,
        case when ${v.pruned}::boolean then 'Pruned' else 'Saved' end || ' checkpoint at step ' || c.step || case when c.is_final then ' (final)' else '' end,
        jsonb_build_object('step', c.step, 'checkpointId', c.id)
      from changed c`,
    )}
    select t.steps as run_steps, s.*,
      case when exists (select 1 from changed) then ${announceRunChangedExpression('t')} end as announced,
      ${announceEventsExpression('event')} as events_announced
    from (select 1) one left join target t on true left join saved s on true`,
);

/**
 * reportSample in one statement fenced by the lease, like reportCheckpoint: idempotent per (run,
 * step, prompt index), a newer attempt's image replaces an older one's, and a sample that is new or
 * has another file announces the run's change. The sample, or null when the fence turned it down.
 */
export async function reportSample(db: Database, fence: LeaseFence, s: { step: number; promptIndex: number; prompt: string | null; path: string }) {
  const [row] = await db.prepared(reportSampleStatement({ ...fence, ...s }));
  return row?.id ? mapRow(samples, row) : null;
}

const reportSampleStatement = compile(
  (v: LeaseFence & { step: number; promptIndex: number; prompt: string | null; path: string }) => sql`/* reportSample */
    with run as (${heldRun(v)}),
    target as (select id, experiment_id, status from runs where id = ${v.runId}),
    before as (select path from samples where run_id = ${v.runId} and step = ${v.step}::int and prompt_index = ${v.promptIndex}::int),
    saved as (
      insert into samples (run_id, step, prompt_index, prompt, path, attempt)
      select run.id, ${v.step}::int, ${v.promptIndex}::int, ${v.prompt}::text, ${v.path}::text, run.attempt from run
      on conflict (run_id, step, prompt_index) do update set
        path = excluded.path, prompt = coalesce(excluded.prompt, samples.prompt), attempt = excluded.attempt
        where samples.attempt <= excluded.attempt
      returning *
    )
    select s.*,
      case when not exists (select 1 from before b where b.path = s.path) then ${announceRunChangedExpression('t')} end as announced
    from saved s, target t`,
);

export async function insertRating(db: Executor, rating: { checkpointId: string; apiKeyId: string; score: number; notes: string | null }) {
  const [row] = await db.insert(ratings).values(rating).returning();
  return row!;
}

/** The run summary's best mean rating, which compareRuns and BEST_RATING read. */
export async function refreshBestMeanRating(db: Executor, runId: string) {
  await db.execute(sql`/* refreshBestMeanRating */
    update run_summaries set best_mean_rating = (
      select max(m) from (
        select avg(r.score)::float8 as m from ratings r join checkpoints c on c.id = r.checkpoint_id
        where c.run_id = ${runId} group by c.id
      ) means
    ) where run_id = ${runId}`);
}

/** Marks the run's best checkpoint by hand; the run as it is now. */
export async function setBestCheckpoint(db: Executor, runId: string, checkpointId: string) {
  const [row] = await db.update(runs).set({ bestCheckpointId: checkpointId }).where(eq(runs.id, runId)).returning();
  return row!;
}
