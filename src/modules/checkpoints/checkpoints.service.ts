import type { Loaders } from '../../graphql/loaders.js';
import type { RunRecord } from '../runs/runs.store.js';
import type { CheckpointRecord, RatingRecord } from './checkpoints.store.js';

export function meanScore(ratings: RatingRecord[]) {
  if (ratings.length === 0) return null;
  return ratings.reduce((sum, r) => sum + r.score, 0) / ratings.length;
}

/** The promoted checkpoint, else the one with the highest mean rating (ties go to the later step). */
export async function bestCheckpoint(run: RunRecord, loaders: Loaders): Promise<CheckpointRecord | null> {
  if (run.bestCheckpointId) return loaders.checkpoint.load(run.bestCheckpointId);
  const candidates = await loaders.checkpointsByRun.load(run.id);
  const means = await Promise.all(candidates.map(async (c) => meanScore(await loaders.ratingsByCheckpoint.load(c.id))));
  let best: CheckpointRecord | null = null;
  let bestMean = -Infinity;
  candidates.forEach((c, i) => {
    const mean = means[i];
    if (mean != null && (mean > bestMean || (mean === bestMean && c.step > best!.step))) {
      best = c;
      bestMean = mean;
    }
  });
  return best;
}
