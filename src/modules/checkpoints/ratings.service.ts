// Ratings: people score checkpoints 1–5; a run's best checkpoint is promoted by hand or, without a
// promotion, the one with the highest mean rating.
import { z } from 'zod';
import { badInput, notFound } from '../../graphql/errors.js';
import { parseId } from '../../graphql/ids.js';
import type { Principal } from '../keys/keys.service.js';
import { announceRunChanged } from '../../live/run-feeds.js';
import { findRunsByIds } from '../runs/runs.store.js';
import { optionalText, parseInput } from '../validation.js';
import * as store from './checkpoints.store.js';
import type { ServiceDeps } from '../service-deps.js';

const ratingInput = z.object({
  score: z.number().int('must be a whole number').min(1, 'must be between 1 and 5').max(5, 'must be between 1 and 5'),
  notes: optionalText,
});

export async function rateCheckpoint({ db }: ServiceDeps, principal: Principal, args: { checkpointId: string; score: number; notes?: string | null }) {
  const checkpointId = parseId(args.checkpointId, 'checkpointId');
  const r = parseInput(ratingInput, { score: args.score, notes: args.notes }, '');
  return db.transaction(async (tx) => {
    const [checkpoint] = await store.findCheckpointsByIds(tx, [checkpointId]);
    if (!checkpoint) throw notFound('checkpointId', 'Checkpoint', args.checkpointId);
    const rating = await store.insertRating(tx, { checkpointId, apiKeyId: principal.keyId, score: r.score, notes: r.notes ?? null });
    await store.refreshBestMeanRating(tx, checkpoint.runId);
    const [run] = await findRunsByIds(tx, [checkpoint.runId]);
    await announceRunChanged(tx, run!);
    return rating;
  });
}

export async function promoteCheckpoint({ db }: ServiceDeps, args: { runId: string; checkpointId: string }) {
  const runId = parseId(args.runId, 'runId');
  const checkpointId = parseId(args.checkpointId, 'checkpointId');
  return db.transaction(async (tx) => {
    const [run] = await findRunsByIds(tx, [runId]);
    if (!run) throw notFound('runId', 'Run', args.runId);
    const [checkpoint] = await store.findCheckpointsByIds(tx, [checkpointId]);
    if (!checkpoint) throw notFound('checkpointId', 'Checkpoint', args.checkpointId);
    if (checkpoint.runId !== run.id) throw badInput('checkpointId', `checkpoint ${checkpointId} belongs to another run`);
    const updated = await store.setBestCheckpoint(tx, run.id, checkpoint.id);
    await announceRunChanged(tx, updated);
    return updated;
  });
}
