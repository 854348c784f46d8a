import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import { rows } from '../../db/client.js';
import { mapRow } from '../../db/map-row.js';
import { heldRun, type LeaseFence } from '../dispatch/fence.js';
import { checkpoints, ratings, runs, samples } from '../../db/schema.js';
import type { Executor } from '../../db/client.js';

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

/**
 * upsertCheckpoint, fenced by the lease in one statement. Idempotent per (run, step): a retry
 * changes nothing, a newer attempt's file replaces an older one's, pruning only ever sets pruned_at.
 */
export async function upsertCheckpoint(
  db: Executor,
  fence: LeaseFence,
  c: { step: number; path: string; sizeBytes: number | null; sha256: string | null; isFinal: boolean; pruned: boolean },
) {
  const found = await rows(
    db,
    sql`/* upsertCheckpoint */
    with run as (${heldRun(fence)})
    insert into checkpoints (run_id, step, path, size_bytes, sha256, is_final, attempt, pruned_at)
    select run.id, ${c.step}, ${c.path}, ${c.sizeBytes}, ${c.sha256}, ${c.isFinal}, run.attempt,
      case when ${c.pruned} then now() end
    from run
    on conflict (run_id, step) do update set
      -- A pruning report only marks the file gone; anything else (re)describes the file.
      path = case when ${c.pruned} then checkpoints.path else excluded.path end,
      size_bytes = case when ${c.pruned} then checkpoints.size_bytes else coalesce(excluded.size_bytes, checkpoints.size_bytes) end,
      sha256 = case when ${c.pruned} then checkpoints.sha256 else coalesce(excluded.sha256, checkpoints.sha256) end,
      is_final = checkpoints.is_final or excluded.is_final,
      attempt = excluded.attempt,
      pruned_at = case
        when checkpoints.attempt < excluded.attempt then excluded.pruned_at
        else coalesce(checkpoints.pruned_at, excluded.pruned_at) end
      where checkpoints.attempt <= excluded.attempt
    returning *`,
  );
  return found.length ? mapRow(checkpoints, found[0]!) : null;
}

/** upsertSample, fenced like upsertCheckpoint; idempotent per (run, step, prompt index). */
export async function upsertSample(
  db: Executor,
  fence: LeaseFence,
  s: { step: number; promptIndex: number; prompt: string | null; path: string },
) {
  const found = await rows(
    db,
    sql`/* upsertSample */
    with run as (${heldRun(fence)})
    insert into samples (run_id, step, prompt_index, prompt, path, attempt)
    select run.id, ${s.step}, ${s.promptIndex}, ${s.prompt}, ${s.path}, run.attempt from run
    on conflict (run_id, step, prompt_index) do update set
      path = excluded.path, prompt = coalesce(excluded.prompt, samples.prompt), attempt = excluded.attempt
      where samples.attempt <= excluded.attempt
    returning *`,
  );
  return found.length ? mapRow(samples, found[0]!) : null;
}

export async function findCheckpointByRunStep(db: Executor, runId: string, step: number) {
  const [row] = await db.select().from(checkpoints).where(and(eq(checkpoints.runId, runId), eq(checkpoints.step, step)));
  return row ?? null;
}

export async function findSampleByKey(db: Executor, runId: string, step: number, promptIndex: number) {
  const [row] = await db
    .select()
    .from(samples)
    .where(and(eq(samples.runId, runId), eq(samples.step, step), eq(samples.promptIndex, promptIndex)));
  return row ?? null;
}

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
