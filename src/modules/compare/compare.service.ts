import { badInput } from '../../graphql/errors.js';
import type { CheckpointRecord } from '../checkpoints/checkpoints.store.js';
import type { RunRecord } from '../runs/runs.store.js';
import { toRunConditions } from '../runs/runs.service.js';
import * as store from './compare.store.js';
import type { ServiceDeps } from '../service-deps.js';

// What compareRuns and checkpointMatrix hand to GraphQL is plain data, complete before execution
// starts: a 1,400-group answer resolves about 18,000 fields, and a closure, promise or loader hop
// per group or cell is paid that many times over.

/** A group's key; a grouped-by caption strategy or dataset is its id (RunGroupKey's resolvers load it). */
export interface RunGroupKeyRecord {
  rank: number | null;
  learningRate: number | null;
  steps: number | null;
  captionStrategyId: string | null;
  datasetId: string | null;
  optimizer: string | null;
  batchSize: number | null;
  baseModel: string | null;
}

const parseIds = (ids: string[] | string): string[] =>
  Array.isArray(ids) ? ids : ids.replace(/^\{|\}$/g, '').split(',').filter(Boolean);

/** `withRuns`: whether the client asked for each group's runs (they cost an ordered aggregate and a second statement). */
export async function compareRuns({ db: { orm: db } }: ServiceDeps, args: { filter?: unknown; groupBy: store.RunDimension[] }, withRuns = true) {
  if (args.groupBy.length > 8) throw badInput('groupBy', 'at most 8 dimensions');
  const groupBy = new Set(args.groupBy);
  const groups = await store.compareRuns(db, toRunConditions(args.filter), [...groupBy], withRuns);
  const runIds = groups.map((g) => (g.run_ids == null ? [] : parseIds(g.run_ids)));
  const runsById = withRuns ? new Map((await store.compareGroupRuns(db, runIds.flat())).map((r) => [r.id, r])) : null;
  const [rank, learningRate, steps, captionStrategy, dataset, optimizer, batchSize, baseModel] = (
    ['RANK', 'LEARNING_RATE', 'STEPS', 'CAPTION_STRATEGY', 'DATASET', 'OPTIMIZER', 'BATCH_SIZE', 'BASE_MODEL'] as const
  ).map((d) => groupBy.has(d));
  return groups.map((g, i) => ({
    key: {
      rank: rank ? g.rank! : null,
      learningRate: learningRate ? g.learning_rate! : null,
      steps: steps ? g.steps! : null,
      captionStrategyId: captionStrategy ? g.caption_strategy_id! : null,
      datasetId: dataset ? g.dataset_id! : null,
      optimizer: optimizer ? g.optimizer! : null,
      batchSize: batchSize ? g.batch_size! : null,
      baseModel: baseModel ? g.base_model! : null,
    } satisfies RunGroupKeyRecord,
    runCount: g.run_count,
    succeeded: g.succeeded,
    meanLastLoss: g.mean_last_loss,
    minLoss: g.min_loss,
    meanEmaLoss: g.mean_ema_loss,
    bestMeanRating: g.best_mean_rating,
    meanCostUsd: g.mean_cost_usd,
    meanDurationSeconds: g.mean_duration_seconds,
    // A run deleted since the aggregate read it is left out, as the run loader would have.
    runs: runsById ? runIds[i]!.map((id) => runsById.get(id)).filter((r): r is RunRecord => r != null) : [],
  }));
}

export async function checkpointMatrix({ db: { orm: db } }: ServiceDeps, args: { filter?: unknown }) {
  const runs = await store.matrixRuns(db, toRunConditions(args.filter));
  const found = runs.length ? await store.matrixCheckpoints(db, runs.map((r) => r.id)) : [];
  const steps = [...new Set(found.map((c) => c.checkpoint.step))].sort((a, b) => a - b);
  const column = new Map(steps.map((s, i) => [s, i]));
  type Cell = { step: number; checkpoint: CheckpointRecord; meanRating: number | null; emaLoss: number | null };
  const cellsByRun = new Map(runs.map((r) => [r.id, new Array<Cell | null>(steps.length).fill(null)]));
  for (const { checkpoint, meanRating } of found) {
    cellsByRun.get(checkpoint.runId)![column.get(checkpoint.step)!] = { step: checkpoint.step, checkpoint, meanRating, emaLoss: checkpoint.emaLoss };
  }
  return { steps, rows: runs.map((run) => ({ run, cells: cellsByRun.get(run.id)! })) };
}
