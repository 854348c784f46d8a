import { z } from 'zod';
import type { Executor } from '../../db/client.js';
import { Channels, notify } from '../../live/notify.js';
import { cursorParts, decodeCursor, pageSize, toConnection, type CursorPart } from '../../graphql/connection.js';
import { badInput, notFound } from '../../graphql/errors.js';
import { isId, parseId } from '../../graphql/ids.js';
import { findDatasetsByIds } from '../datasets/datasets.store.js';
import { findExperimentsByIds } from '../experiments/experiments.store.js';
import { findStrategiesByIds, type CaptionStrategyRecord } from '../captions/captions.store.js';
import { name, optionalText, parseInput, tags } from '../validation.js';
import { appendEvents } from './events.store.js';
import { announceRunsChanged } from '../../live/run-feeds.js';
import { NAME_TAG, NAME_TAG_IN_CAPTIONS_REFUSED, NAME_TAG_REFUSED } from './ai-toolkit.js';
import { hyperparametersInput, storedHyperparameters, withoutNulls, type Hyperparameters } from './hyperparameters.js';
import { renderTrainerConfig } from './trainer-config.js';
import { assertDatasetComplete } from '../artifacts/dataset-readiness.js';
import * as store from './runs.store.js';
import * as events from './events.store.js';
import { isActive, RUN_STATUSES } from './lifecycle.js';
import type { ReadScope } from '../agents/read-scope.js';
import type { ServiceDeps } from '../service-deps.js';

export const MAX_SWEEP_RUNS = 1000;

const requirementsInput = z.object({
  minVramMb: z.number().int().min(0, 'must be between 0 and 2,000,000').max(2_000_000, 'must be between 0 and 2,000,000').nullish(),
  gpuCount: z.number().int().min(1, 'must be between 1 and 64').max(64, 'must be between 1 and 64').nullish(),
  labels: z.array(z.string().trim().min(1, 'a label must not be empty').max(100)).max(50).nullish(),
});

const queueInput = z.object({
  experimentId: z.string(),
  datasetId: z.string(),
  captionStrategyId: z.string(),
  name: name.nullish(),
  hyperparameters: z.record(z.string(), z.unknown()).nullish(),
  requirements: requirementsInput.nullish(),
  priority: z.number().int().min(-1000, 'must be between -1000 and 1000').max(1000, 'must be between -1000 and 1000').nullish(),
  maxAttempts: z.number().int().min(1, 'must be between 1 and 100').max(100, 'must be between 1 and 100').nullish(),
  tags,
  notes: optionalText,
  idempotencyKey: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters').nullish(),
});

type QueueInput = z.output<typeof queueInput>;

/** Parses and checks a QueueRunInput against the database; throws before anything is written. */
async function resolveQueueInput(db: Executor, raw: unknown, root: string) {
  const input = parseInput(queueInput, raw, root);
  const hp = parseInput(hyperparametersInput, withoutNulls(input.hyperparameters), `${root}.hyperparameters`);
  const experimentId = parseId(input.experimentId, `${root}.experimentId`);
  const datasetId = parseId(input.datasetId, `${root}.datasetId`);
  const strategyId = parseId(input.captionStrategyId, `${root}.captionStrategyId`);
  const [[experiment], [dataset], [strategy]] = await Promise.all([
    findExperimentsByIds(db, [experimentId]),
    findDatasetsByIds(db, [datasetId]),
    findStrategiesByIds(db, [strategyId]),
  ]);
  if (!experiment) throw notFound(`${root}.experimentId`, 'Experiment', input.experimentId);
  if (!dataset) throw notFound(`${root}.datasetId`, 'Dataset', input.datasetId);
  await assertDatasetComplete(db, dataset, `${root}.datasetId`);
  if (!strategy) throw notFound(`${root}.captionStrategyId`, 'Caption strategy', input.captionStrategyId);
  checkTrainable(strategy, `${root}.captionStrategyId`);
  return { input, hp, experiment, dataset, strategy };
}

/**
 * A strategy whose trigger word or caption template holds [name]: ai-toolkit would read the trigger
 * word as the job name and the captions with the trigger word in its place. (Strategies made before
 * createCaptionStrategy refused it may still hold one.)
 */
function checkTrainable(strategy: CaptionStrategyRecord, field: string) {
  if (strategy.triggerWord?.includes(NAME_TAG)) throw badInput(field, `its trigger word ${NAME_TAG_REFUSED}`);
  if (strategy.template?.includes(NAME_TAG)) throw badInput(field, `its caption template ${NAME_TAG_IN_CAPTIONS_REFUSED}`);
}

const formatLr = (lr: number) => lr.toExponential();

/** Generated names (a sweep's prefix, a long strategy name) are held to the 200 characters a given name may have. */
const fitName = (name: string) => (name.length <= 200 ? name : `${name.slice(0, 199)}…`);

function defaultRunName(hp: Hyperparameters, strategy: CaptionStrategyRecord) {
  return `r${hp.rank} lr${formatLr(hp.learningRate)} ${hp.steps} steps · ${strategy.name}`;
}

function runValues(
  input: QueueInput,
  hp: Hyperparameters,
  refs: { experimentId: string; datasetId: string; strategy: CaptionStrategyRecord },
  extra: { name?: string; idempotencyKey?: string | null; sweepId?: string },
): store.NewRun {
  return {
    name: fitName(extra.name ?? input.name ?? defaultRunName(hp, refs.strategy)),
    experimentId: refs.experimentId,
    datasetId: refs.datasetId,
    captionStrategyId: refs.strategy.id,
    sweepId: extra.sweepId ?? null,
    ...store.hyperparameterColumns(hp),
    minVramMb: input.requirements?.minVramMb ?? 0,
    gpuCount: input.requirements?.gpuCount ?? 1,
    labels: [...new Set(input.requirements?.labels ?? [])],
    priority: input.priority ?? 0,
    status: 'QUEUED',
    maxAttempts: input.maxAttempts ?? 3,
    tags: input.tags,
    notes: input.notes ?? null,
    idempotencyKey: extra.idempotencyKey === undefined ? (input.idempotencyKey ?? null) : extra.idempotencyKey,
  };
}

/** Records the queueing of new runs and wakes agents waiting in claimRun (after COMMIT). */
async function announceQueued(tx: Executor, queued: store.RunRecord[]) {
  if (queued.length === 0) return;
  await appendEvents(
    tx,
    queued.map((r) => ({ runId: r.id, type: 'QUEUED', message: 'Queued', data: { priority: r.priority } })),
  );
  await announceRunsChanged(tx, queued);
  await notify(tx, Channels.runQueued, { count: queued.length });
}

export async function queueRun({ db }: ServiceDeps, raw: unknown) {
  return db.transaction(async (tx) => {
    const { input, hp, experiment, dataset, strategy } = await resolveQueueInput(tx, raw, 'input');
    const values = runValues(input, hp, { experimentId: experiment.id, datasetId: dataset.id, strategy }, {});
    const [inserted] = await store.insertRuns(tx, [values]);
    if (inserted) {
      await announceQueued(tx, [inserted]);
      return inserted;
    }
    // The idempotency key was used before: answer with the run that call queued.
    const [existing] = await store.findRunsByIdempotencyKeys(tx, [values.idempotencyKey!]);
    return existing!;
  });
}

const continueInput = z.object({
  steps: z.number().int().min(1, 'must be positive').max(100_000, 'must be at most 100,000'),
});

/**
 * continueRun: a new run with the parent's settings, dataset and caption strategy and `steps` total
 * steps, whose first attempt starts from one of the parent's stored checkpoints (the claim hands the
 * agent its bytes). Checked before anything is written.
 */
export async function continueRun({ db }: ServiceDeps, args: { runId: string; checkpointId?: string | null; steps: number }) {
  const runId = parseId(args.runId, 'runId');
  const { steps } = parseInput(continueInput, { steps: args.steps }, '');
  return db.transaction(async (tx) => {
    const [parent] = await store.findRunsByIds(tx, [runId]);
    if (!parent) throw notFound('runId', 'Run', args.runId);
    let checkpoint: store.CheckpointToContinue | null;
    if (args.checkpointId != null) {
      const checkpointId = parseId(args.checkpointId, 'checkpointId');
      checkpoint = await store.checkpointToContinue(tx, checkpointId);
      if (!checkpoint) throw notFound('checkpointId', 'Checkpoint', args.checkpointId);
      if (checkpoint.runId !== parent.id) throw badInput('checkpointId', `checkpoint ${checkpoint.id} belongs to another run, not ${parent.id}`);
      if (!checkpoint.stored) throw badInput('checkpointId', `checkpoint ${checkpoint.id} (step ${checkpoint.step}) has no stored bytes to train on from (not uploaded yet, or pruned)`);
    } else {
      checkpoint = await store.defaultCheckpointToContinue(tx, parent.id);
      if (!checkpoint) throw badInput('runId', `run ${parent.id} has no checkpoint with stored bytes to train on from`);
    }
    if (steps <= checkpoint.step) throw badInput('steps', `must exceed the checkpoint's step (${checkpoint.step})`);
    const [[dataset], [strategy]] = await Promise.all([findDatasetsByIds(tx, [parent.datasetId]), findStrategiesByIds(tx, [parent.captionStrategyId])]);
    await assertDatasetComplete(tx, dataset!, 'runId');
    checkTrainable(strategy!, 'runId');
    const hp: Hyperparameters = { ...storedHyperparameters(parent.hyperparameters), steps };
    const [inserted] = await store.insertRuns(tx, [
      {
        name: fitName(`${parent.name} → ${steps} steps`),
        experimentId: parent.experimentId,
        datasetId: parent.datasetId,
        captionStrategyId: parent.captionStrategyId,
        ...store.hyperparameterColumns(hp),
        minVramMb: parent.minVramMb,
        gpuCount: parent.gpuCount,
        labels: parent.labels,
        priority: parent.priority,
        status: 'QUEUED',
        maxAttempts: parent.maxAttempts,
        tags: parent.tags,
        parentRunId: parent.id,
        continuedFromCheckpointId: checkpoint.id,
        resumedFromCheckpointId: checkpoint.id,
      },
    ]);
    await appendEvents(tx, [
      { runId: parent.id, type: 'CONTINUED', message: `Continued from step ${checkpoint.step} to ${steps} steps as run “${inserted!.name}” (${inserted!.id})`, data: { runId: inserted!.id, fromStep: checkpoint.step, steps } },
    ]);
    await announceQueued(tx, [inserted!]);
    return inserted!;
  });
}

const gridInput = z.object({
  rank: z.array(z.number()).min(1, 'must not be empty').nullish(),
  learningRate: z.array(z.number()).min(1, 'must not be empty').nullish(),
  steps: z.array(z.number()).min(1, 'must not be empty').nullish(),
  captionStrategyId: z.array(z.string()).min(1, 'must not be empty').nullish(),
});

function checkDistinct(values: unknown[] | null | undefined, field: string) {
  const seen = new Set<unknown>();
  values?.forEach((v, i) => {
    if (seen.has(v)) throw badInput(`${field}.${i}`, `${JSON.stringify(v)} appears twice`);
    seen.add(v);
  });
}

/** The grid's product of runs over the base, with a Sweep record, in one transaction. */
export async function queueSweep({ db }: ServiceDeps, raw: { base: unknown; grid: unknown }) {
  const grid = parseInput(gridInput, raw.grid, 'input.grid');
  for (const key of ['rank', 'learningRate', 'steps', 'captionStrategyId'] as const) checkDistinct(grid[key], `input.grid.${key}`);
  const size = (grid.rank?.length ?? 1) * (grid.learningRate?.length ?? 1) * (grid.steps?.length ?? 1) * (grid.captionStrategyId?.length ?? 1);
  if (size > MAX_SWEEP_RUNS) throw badInput('input.grid', `makes ${size} runs; a sweep may have at most ${MAX_SWEEP_RUNS}`);

  return db.transaction(async (tx) => {
    const { input, hp, experiment, dataset, strategy } = await resolveQueueInput(tx, raw.base, 'input.base');
    const strategies = [strategy];
    if (grid.captionStrategyId) {
      const ids = grid.captionStrategyId.map((id, i) => parseId(id, `input.grid.captionStrategyId.${i}`));
      const found = await findStrategiesByIds(tx, ids);
      const byId = new Map(found.map((s) => [s.id, s]));
      strategies.length = 0;
      ids.forEach((id, i) => {
        const s = byId.get(id);
        if (!s) throw notFound(`input.grid.captionStrategyId.${i}`, 'Caption strategy', grid.captionStrategyId![i]!);
        checkTrainable(s, `input.grid.captionStrategyId.${i}`);
        strategies.push(s);
      });
    }

    const baseHp = withoutNulls((raw.base as { hyperparameters?: Record<string, unknown> })?.hyperparameters);
    const combos: { hp: Hyperparameters; strategy: CaptionStrategyRecord }[] = [];
    for (const rank of grid.rank ?? [hp.rank])
      for (const learningRate of grid.learningRate ?? [hp.learningRate])
        for (const steps of grid.steps ?? [hp.steps])
          for (const s of strategies) {
            // Each point re-validates, so a grid value out of range names the grid field.
            const pointHp = parseInput(
              hyperparametersInput,
              { ...baseHp, rank, learningRate, steps },
              'input.grid',
            );
            combos.push({ hp: pointHp, strategy: s });
          }

    const key = input.idempotencyKey ?? null;
    if (key) {
      const existing = await store.findRunsByIdempotencyKeys(tx, [`${key}#0`]);
      if (existing[0]?.sweepId) return store.findRunsBySweeps(tx, [existing[0].sweepId]);
    }
    const sweep = await store.insertSweep(tx, {
      experimentId: experiment.id,
      base: hp,
      grid: { ...grid, size },
    });
    const prefix = input.name ?? null;
    const values = combos.map((c, i) => {
      const pointName = defaultRunName(c.hp, c.strategy);
      return runValues(
        input,
        c.hp,
        { experimentId: experiment.id, datasetId: dataset.id, strategy: c.strategy },
        { name: prefix ? `${prefix} · ${pointName}` : pointName, idempotencyKey: key ? `${key}#${i}` : null, sweepId: sweep.id },
      );
    });
    const inserted = await store.insertRuns(tx, values);
    await announceQueued(tx, inserted);
    return inserted;
  });
}

const numberFilter = z.object({
  eq: z.number().nullish(),
  in: z.array(z.number()).max(1000).nullish(),
  gte: z.number().nullish(),
  lte: z.number().nullish(),
});

/** A value an integer column can be compared with: a whole number that fits in 32 bits. */
const intValue = z
  .number()
  .int('must be a whole number for this integer column')
  .min(-2_147_483_648, 'must fit in a 32-bit integer')
  .max(2_147_483_647, 'must fit in a 32-bit integer');
const intFilter = z.object({
  eq: intValue.nullish(),
  in: z.array(intValue).max(1000).nullish(),
  gte: intValue.nullish(),
  lte: intValue.nullish(),
});

const runFilterInput = z.object({
  ids: z.array(z.string()).max(1000).nullish(),
  agentId: z.string().nullish(),
  experimentId: z.string().nullish(),
  datasetId: z.string().nullish(),
  captionStrategyId: z.string().nullish(),
  captionStrategyIds: z.array(z.string()).max(1000).nullish(),
  sweepId: z.string().nullish(),
  status: z.array(z.enum(RUN_STATUSES)).nullish(),
  rank: intFilter.nullish(),
  alpha: intFilter.nullish(),
  learningRate: numberFilter.nullish(),
  steps: intFilter.nullish(),
  batchSize: intFilter.nullish(),
  priority: intFilter.nullish(),
  optimizer: z.array(z.string()).nullish(),
  baseModel: z.array(z.string()).nullish(),
  tags: z.array(z.string()).nullish(),
  search: z.string().max(200).nullish(),
});

/** A RunFilter as store conditions; ids are checked so that a malformed one names its field. */
export function toRunConditions(raw: unknown, root = 'filter'): store.RunConditions {
  const f = parseInput(runFilterInput, raw ?? {}, root);
  const id = (value: string | null | undefined, field: string) => (value ? parseId(value, `${root}.${field}`) : undefined);
  const numbers = (c: z.output<typeof numberFilter> | null | undefined) => c ?? undefined;
  return {
    ids: f.ids?.map((s, i) => parseId(s, `${root}.ids.${i}`)),
    agentId: id(f.agentId, 'agentId'),
    experimentId: id(f.experimentId, 'experimentId'),
    datasetId: id(f.datasetId, 'datasetId'),
    captionStrategyId: id(f.captionStrategyId, 'captionStrategyId'),
    captionStrategyIds: f.captionStrategyIds?.map((s, i) => parseId(s, `${root}.captionStrategyIds.${i}`)),
    sweepId: id(f.sweepId, 'sweepId'),
    status: f.status ?? undefined,
    rank: numbers(f.rank),
    alpha: numbers(f.alpha),
    learningRate: numbers(f.learningRate),
    steps: numbers(f.steps),
    batchSize: numbers(f.batchSize),
    priority: numbers(f.priority),
    optimizer: f.optimizer ?? undefined,
    baseModel: f.baseModel ?? undefined,
    tags: f.tags ?? undefined,
    search: f.search?.trim() || undefined,
  };
}

/** What a cursor's sort key may be, by the order it was made for (runs.store: orderColumns). */
const SORT_KEY: Record<store.RunOrderField, CursorPart> = {
  QUEUED_AT: cursorParts.time,
  FINISHED_AT: cursorParts.nullable(cursorParts.time),
  MIN_LOSS: cursorParts.nullable(cursorParts.number),
  LAST_LOSS: cursorParts.nullable(cursorParts.number),
  EMA_LOSS: cursorParts.nullable(cursorParts.number),
  BEST_RATING: cursorParts.nullable(cursorParts.number),
  COST_USD: cursorParts.nullable(cursorParts.number),
  RANK: cursorParts.int,
  LEARNING_RATE: cursorParts.number,
  STEPS: cursorParts.int,
  PRIORITY: cursorParts.int,
};

export async function listRuns(
  { db: { orm: db } }: ServiceDeps,
  args: {
    filter?: unknown;
    orderBy?: { field: store.RunOrderField; direction: 'ASC' | 'DESC' } | null;
    first?: number | null;
    after?: string | null;
  },
  readScope: ReadScope = null,
) {
  const first = pageSize(args.first);
  const order = args.orderBy ?? { field: 'QUEUED_AT', direction: 'DESC' };
  const after = decodeCursor(args.after, [SORT_KEY[order.field], cursorParts.id]) as [unknown, string] | null;
  const where = { ...toRunConditions(args.filter), readScope };
  const found = await store.listRuns(db, { where, order: order.field, direction: order.direction, limit: first + 1, after });
  return toConnection(
    found,
    first,
    (r) => [r.sortKey, r.run.id],
    () => store.countRuns(db, where),
    after != null,
    (r) => r.run,
  );
}

export async function getRun({ db: { orm: db } }: ServiceDeps, id: string, readScope: ReadScope = null) {
  if (!isId(id)) return null;
  const [row] = await store.findRunsByIds(db, [id], readScope);
  return row ?? null;
}

/**
 * Run.parent and Run.continuations for a key that reads only some runs (an AGENT key: the runs its
 * agents held); a parent or continuation outside that reads as none. Everyone else reads them
 * through the request's loaders.
 */
export async function parentInScope({ db }: ServiceDeps, parentRunId: string, readScope: NonNullable<ReadScope>) {
  return (await store.findRunsByIds(db.orm, [parentRunId], readScope))[0] ?? null;
}
export const continuationsInScope = ({ db }: ServiceDeps, runId: string, readScope: NonNullable<ReadScope>) => store.findContinuationsOf(db.orm, [runId], readScope);

/** Run.events: the run's latest events, newest first, `first` of them (100 unless asked, at most 1,000). */
export const eventsOf = ({ db }: ServiceDeps, runId: string, first?: number | null) =>
  events.listEvents(db.orm, runId, Math.min(Math.max(first ?? 100, 0), 1000));

export async function getSweep({ db: { orm: db } }: ServiceDeps, id: string) {
  if (!isId(id)) return null;
  const [row] = await store.findSweepsByIds(db, [id]);
  return row ?? null;
}

export function trainerConfigOf(run: store.RunRecord, strategy: CaptionStrategyRecord) {
  return renderTrainerConfig(run, storedHyperparameters(run.hyperparameters), strategy);
}

/** Run.progress: the last heartbeat's figures, and the time left while the run is not finished. */
export function progressOf(run: store.RunRecord) {
  if (run.progressStep == null) return null;
  const totalSteps = run.progressTotal ?? run.steps;
  const eta = run.secondsPerStep != null && isActive(run.status) ? Math.max(0, totalSteps - run.progressStep) * run.secondsPerStep : null;
  return {
    step: run.progressStep,
    totalSteps,
    secondsPerStep: run.secondsPerStep,
    etaSeconds: eta,
    vramUsedMb: run.vramUsedMb,
    gpuUtilization: run.gpuUtilization,
  };
}

/** Nulls sort last: the first run by a metric is only the best when it has that metric. */
const metricOf: Partial<Record<store.RunOrderField, (run: store.RunRecord, summary: store.RunSummaryRecord | null) => unknown>> = {
  MIN_LOSS: (_, s) => s?.minLoss,
  LAST_LOSS: (_, s) => s?.lastLoss,
  EMA_LOSS: (_, s) => s?.emaLoss,
  BEST_RATING: (_, s) => s?.bestMeanRating,
  COST_USD: (run) => run.costUsd,
  FINISHED_AT: (run) => run.finishedAt,
};

/** Sweep.bestRun: the sweep's first run by `by`, when it has that figure. */
export async function bestRunOfSweep(deps: ServiceDeps, sweepId: string, by: store.RunOrderField, summaryOf: (runId: string) => Promise<store.RunSummaryRecord | null>) {
  const [best] = (await listRuns(deps, { filter: { sweepId }, orderBy: { field: by, direction: by === 'BEST_RATING' ? 'DESC' : 'ASC' }, first: 1 })).edges;
  const run = best?.node ?? null;
  const metric = metricOf[by];
  if (!run || !metric) return run;
  return metric(run, await summaryOf(run.id)) != null ? run : null;
}
