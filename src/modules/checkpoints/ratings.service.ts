// Ratings: people score checkpoints 1–5; a run's best checkpoint is promoted by hand or, without a
// promotion, the one with the highest mean rating.
import { eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Database } from '../../db/client.js';
import { badInput, notFound } from '../../graphql/errors.js';
import { parseId } from '../../graphql/ids.js';
import type { Principal } from '../keys/keys.service.js';
import { announceRunChanged } from '../../live/run-feeds.js';
import { findRunsByIds } from '../runs/runs.store.js';
import { optionalText, parseInput } from '../validation.js';
import { ratings, runs } from '../../db/schema.js';
import * as store from './checkpoints.store.js';

const ratingInput = z.object({
  score: z.number().int('must be a whole number').min(1, 'must be between 1 and 5').max(5, 'must be between 1 and 5'),
  notes: optionalText,
});

/* refreshBestMeanRating: the run summary's best mean rating, which compareRuns and BEST_RATING read. */
async function refreshBestMeanRating(tx: Parameters<Parameters<Database['transaction']>[0]>[0], runId: string) {
  await tx.execute(sql`/* refreshBestMeanRating */
    update run_summaries set best_mean_rating = (
      select max(m) from (
        select avg(r.score)::float8 as m from ratings r join checkpoints c on c.id = r.checkpoint_id
        where c.run_id = ${runId} group by c.id
      ) means
    ) where run_id = ${runId}`);
}

export async function rateCheckpoint(db: Database, principal: Principal, args: { checkpointId: string; score: number; notes?: string | null }) {
  const checkpointId = parseId(args.checkpointId, 'checkpointId');
  const r = parseInput(ratingInput, { score: args.score, notes: args.notes }, '');
  return db.transaction(async (tx) => {
    const [checkpoint] = await store.findCheckpointsByIds(tx, [checkpointId]);
    if (!checkpoint) throw notFound('checkpointId', 'Checkpoint', args.checkpointId);
    const [rating] = await tx.insert(ratings).values({ checkpointId, apiKeyId: principal.keyId, score: r.score, notes: r.notes ?? null }).returning();
    await refreshBestMeanRating(tx, checkpoint.runId);
    const [run] = await findRunsByIds(tx, [checkpoint.runId]);
    await announceRunChanged(tx, run!);
    return rating!;
  });
}

export async function promoteCheckpoint(db: Database, args: { runId: string; checkpointId: string }) {
  const runId = parseId(args.runId, 'runId');
  const checkpointId = parseId(args.checkpointId, 'checkpointId');
  return db.transaction(async (tx) => {
    const [run] = await findRunsByIds(tx, [runId]);
    if (!run) throw notFound('runId', 'Run', args.runId);
    const [checkpoint] = await store.findCheckpointsByIds(tx, [checkpointId]);
    if (!checkpoint) throw notFound('checkpointId', 'Checkpoint', args.checkpointId);
    if (checkpoint.runId !== run.id) throw badInput('checkpointId', `checkpoint ${checkpointId} belongs to another run`);
    const [updated] = await tx.update(runs).set({ bestCheckpointId: checkpoint.id }).where(eq(runs.id, run.id)).returning();
    await announceRunChanged(tx, updated!);
    return updated!;
  });
}
