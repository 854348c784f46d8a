import { asc, inArray } from 'drizzle-orm';
import { checkpoints, ratings, samples } from '../../db/schema.js';
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
