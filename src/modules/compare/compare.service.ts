import type { Executor } from '../../db/client.js';
import { badInput } from '../../graphql/errors.js';
import type { Loaders } from '../../graphql/loaders.js';
import { toRunConditions } from '../runs/runs.service.js';
import * as store from './compare.store.js';

const parseIds = (ids: string[] | string): string[] =>
  Array.isArray(ids) ? ids : ids.replace(/^\{|\}$/g, '').split(',').filter(Boolean);

/** `withRuns`: whether the client asked for each group's runs (their ids cost an ordered aggregate). */
export async function compareRuns(db: Executor, loaders: Loaders, args: { filter?: unknown; groupBy: store.RunDimension[] }, withRuns = true) {
  if (args.groupBy.length > 8) throw badInput('groupBy', 'at most 8 dimensions');
  const groupBy = [...new Set(args.groupBy)];
  const groups = await store.compareRuns(db, toRunConditions(args.filter), groupBy, withRuns);
  const has = (d: store.RunDimension) => groupBy.includes(d);
  return groups.map((g) => {
    const runIds = g.run_ids == null ? [] : parseIds(g.run_ids);
    return {
      key: {
        rank: has('RANK') ? g.rank : null,
        learningRate: has('LEARNING_RATE') ? g.learning_rate : null,
        steps: has('STEPS') ? g.steps : null,
        captionStrategy: has('CAPTION_STRATEGY') ? () => loaders.captionStrategy.load(g.caption_strategy_id!) : null,
        dataset: has('DATASET') ? () => loaders.dataset.load(g.dataset_id!) : null,
        optimizer: has('OPTIMIZER') ? g.optimizer : null,
        batchSize: has('BATCH_SIZE') ? g.batch_size : null,
        baseModel: has('BASE_MODEL') ? g.base_model : null,
      },
      runCount: g.run_count,
      succeeded: g.succeeded,
      meanLastLoss: g.mean_last_loss,
      minLoss: g.min_loss,
      meanEmaLoss: g.mean_ema_loss,
      bestMeanRating: g.best_mean_rating,
      meanCostUsd: g.mean_cost_usd,
      meanDurationSeconds: g.mean_duration_seconds,
      runs: async () => (await loaders.run.loadMany(runIds)).filter((r) => r && !(r instanceof Error)),
    };
  });
}

export async function checkpointMatrix(db: Executor, loaders: Loaders, args: { filter?: unknown }) {
  const runIds = await store.matrixRunIds(db, toRunConditions(args.filter));
  const checkpoints = runIds.length ? await store.matrixCheckpoints(db, runIds) : [];
  const steps = [...new Set(checkpoints.map((c) => c.step))].sort((a, b) => a - b);
  const column = new Map(steps.map((s, i) => [s, i]));
  const cellsByRun = new Map(runIds.map((id) => [id, new Array(steps.length).fill(null)]));
  for (const c of checkpoints) {
    cellsByRun.get(c.run_id)![column.get(c.step)!] = {
      step: c.step,
      checkpoint: () => loaders.checkpoint.load(c.id),
      meanRating: c.mean_rating,
      emaLoss: c.ema_loss,
    };
  }
  return {
    steps,
    rows: runIds.map((id) => ({ run: () => loaders.run.load(id), cells: cellsByRun.get(id)! })),
  };
}
