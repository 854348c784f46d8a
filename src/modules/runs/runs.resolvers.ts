import type { Resolvers } from '../../graphql/generated/resolvers.js';
import { storedHyperparameters } from './hyperparameters.js';
import { requireLoaded } from '../checkpoints/checkpoints.resolvers.js';
import { bestCheckpoint } from '../checkpoints/checkpoints.service.js';
import * as events from './events.store.js';
import * as service from './runs.service.js';
import type { RunOrderField, RunRecord, RunSummaryRecord } from './runs.store.js';

const ACTIVE = new Set(['QUEUED', 'CLAIMED', 'RUNNING', 'CANCELLING']);

/** Nulls sort last: the first run by a metric is only the best when it has that metric. */
const metricOf: Partial<Record<RunOrderField, (run: RunRecord, summary: RunSummaryRecord | null) => unknown>> = {
  MIN_LOSS: (_, s) => s?.minLoss,
  LAST_LOSS: (_, s) => s?.lastLoss,
  EMA_LOSS: (_, s) => s?.emaLoss,
  BEST_RATING: (_, s) => s?.bestMeanRating,
  COST_USD: (run) => run.costUsd,
  FINISHED_AT: (run) => run.finishedAt,
};

export const runResolvers: Resolvers = {
  Query: {
    runs: (_, args, ctx) => service.listRuns(ctx.db.orm, args, ctx.readScope),
    run: (_, { id }, ctx) => service.getRun(ctx.db.orm, id, ctx.readScope),
    sweep: (_, { id }, ctx) => service.getSweep(ctx.db.orm, id),
  },
  Mutation: {
    queueRun: (_, { input }, ctx) => service.queueRun(ctx.db, input),
    queueSweep: (_, { input }, ctx) => service.queueSweep(ctx.db, input),
  },
  Run: {
    experiment: async (run, _, ctx) => requireLoaded(await ctx.loaders.experiment.load(run.experimentId), 'experiment'),
    dataset: async (run, _, ctx) => requireLoaded(await ctx.loaders.dataset.load(run.datasetId), 'dataset'),
    captionStrategy: async (run, _, ctx) =>
      requireLoaded(await ctx.loaders.captionStrategy.load(run.captionStrategyId), 'caption strategy'),
    hyperparameters: (run) => storedHyperparameters(run.hyperparameters),
    requirements: (run) => ({ minVramMb: run.minVramMb, gpuCount: run.gpuCount, labels: run.labels }),
    agent: (run, _, ctx) => (run.agentId ? ctx.loaders.agent.load(run.agentId) : null),
    progress: (run) => {
      if (run.progressStep == null) return null;
      const totalSteps = run.progressTotal ?? run.steps;
      const eta = run.secondsPerStep != null && ACTIVE.has(run.status) ? Math.max(0, totalSteps - run.progressStep) * run.secondsPerStep : null;
      return {
        step: run.progressStep,
        totalSteps,
        secondsPerStep: run.secondsPerStep,
        etaSeconds: eta,
        vramUsedMb: run.vramUsedMb,
        gpuUtilization: run.gpuUtilization,
      };
    },
    lossSummary: async (run, _, ctx) => {
      const s = await ctx.loaders.runSummary.load(run.id);
      return {
        points: s?.points ?? 0,
        lastStep: s?.lastStep ?? null,
        lastLoss: s?.lastLoss ?? null,
        minLoss: s?.minLoss ?? null,
        minLossStep: s?.minLossStep ?? null,
        emaLoss: s?.emaLoss ?? null,
      };
    },
    checkpoints: (run, _, ctx) => ctx.loaders.checkpointsByRun.load(run.id),
    samples: async (run, { step }, ctx) => {
      const all = await ctx.loaders.samplesByRun.load(run.id);
      return step == null ? all : all.filter((s) => s.step === step);
    },
    events: (run, { first }, ctx) => events.listEvents(ctx.db.orm, run.id, Math.min(Math.max(first ?? 100, 0), 1000)),
    bestCheckpoint: (run, _, ctx) => bestCheckpoint(run, ctx.loaders),
    error: (run) => (run.errorCode ? { code: run.errorCode, message: run.errorMessage ?? '', logTail: run.errorLogTail } : null),
    trainerConfig: async (run, _, ctx) => {
      // An imported run trained with the config its folder holds, not one rendered from its hyperparameters.
      if (run.importedFrom != null) return requireLoaded(await ctx.loaders.runImport.load(run.id), 'import').trainerConfig;
      return service.trainerConfigOf(run, requireLoaded(await ctx.loaders.captionStrategy.load(run.captionStrategyId), 'caption strategy'));
    },
    sweep: (run, _, ctx) => (run.sweepId ? ctx.loaders.sweep.load(run.sweepId) : null),
  },
  RunEvent: {
    id: (e) => String(e.id),
  },
  Sweep: {
    experiment: async (sweep, _, ctx) => requireLoaded(await ctx.loaders.experiment.load(sweep.experimentId), 'experiment'),
    base: (sweep) => storedHyperparameters(sweep.base),
    runs: (sweep, _, ctx) => ctx.loaders.runsBySweep.load(sweep.id),
    queued: async (sweep, _, ctx) => (await ctx.loaders.runsBySweep.load(sweep.id)).filter((r) => r.status === 'QUEUED').length,
    running: async (sweep, _, ctx) =>
      (await ctx.loaders.runsBySweep.load(sweep.id)).filter((r) => ['CLAIMED', 'RUNNING', 'CANCELLING'].includes(r.status)).length,
    bestRun: async (sweep, { by }, ctx) => {
      const [best] = (await service.listRuns(ctx.db.orm, { filter: { sweepId: sweep.id }, orderBy: { field: by ?? 'EMA_LOSS', direction: by === 'BEST_RATING' ? 'DESC' : 'ASC' }, first: 1 })).edges;
      const run = best?.node ?? null;
      const metric = metricOf[by ?? 'EMA_LOSS'];
      if (!run || !metric) return run;
      return metric(run, await ctx.loaders.runSummary.load(run.id)) != null ? run : null;
    },
    done: async (sweep, _, ctx) =>
      (await ctx.loaders.runsBySweep.load(sweep.id)).filter((r) => ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(r.status)).length,
  },
};
