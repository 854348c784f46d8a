import type { Resolvers } from '../../graphql/generated/resolvers.js';
import { storedHyperparameters } from './hyperparameters.js';
import { requireLoaded } from '../../graphql/require-loaded.js';
import { createLoaders } from '../../graphql/loaders.js';
import type { Context } from '../../graphql/context.js';
import { bestCheckpoint } from '../checkpoints/checkpoints.service.js';
import { subscribeRunEvents, subscribeRunUpdated } from '../../live/run-feeds.js';
import * as service from './runs.service.js';
import { isFinished, isHeld } from './lifecycle.js';
import type { RunRecord } from './runs.store.js';

export const runResolvers: Resolvers = {
  Query: {
    runs: (_, args, ctx) => service.listRuns(ctx, args, ctx.readScope),
    run: (_, { id }, ctx) => service.getRun(ctx, id, ctx.readScope),
    sweep: (_, { id }, ctx) => service.getSweep(ctx, id),
  },
  Mutation: {
    queueRun: (_, { input }, ctx) => service.queueRun(ctx, input),
    queueSweep: (_, { input }, ctx) => service.queueSweep(ctx, input),
    continueRun: (_, args, ctx) => service.continueRun(ctx, args),
  },
  Subscription: {
    runUpdated: {
      subscribe: (_, args, ctx) => subscribeRunUpdated(ctx.db.orm, ctx.feeds.runs, args) as never,
      // graphql-ws makes one context per subscription: fresh loaders per event, or nested fields
      // (checkpoints, summary) would be read from the first event's cache forever.
      resolve: (run: RunRecord, _args: unknown, ctx: Context) => {
        ctx.loaders = createLoaders(ctx.db.orm);
        return run;
      },
    },
    runEvents: {
      subscribe: (_, args, ctx) => subscribeRunEvents(ctx.db.orm, ctx.feeds.events, args) as never,
      resolve: (event: unknown) => event as never,
    },
  },
  Run: {
    experiment: async (run, _, ctx) => requireLoaded(await ctx.loaders.experiment.load(run.experimentId), 'experiment'),
    dataset: async (run, _, ctx) => requireLoaded(await ctx.loaders.dataset.load(run.datasetId), 'dataset'),
    captionStrategy: async (run, _, ctx) =>
      requireLoaded(await ctx.loaders.captionStrategy.load(run.captionStrategyId), 'caption strategy'),
    hyperparameters: (run) => storedHyperparameters(run.hyperparameters),
    requirements: (run) => ({ minVramMb: run.minVramMb, gpuCount: run.gpuCount, labels: run.labels }),
    agent: (run, _, ctx) => (run.agentId ? ctx.loaders.agent.load(run.agentId) : null),
    progress: (run) => service.progressOf(run),
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
    events: (run, { first }, ctx) => service.eventsOf(ctx, run.id, first),
    bestCheckpoint: (run, _, ctx) => bestCheckpoint(run, ctx.loaders),
    error: (run) => (run.errorCode ? { code: run.errorCode, message: run.errorMessage ?? '', logTail: run.errorLogTail } : null),
    trainerConfig: async (run, _, ctx) => {
      // An imported run trained with the config its folder holds, not one rendered from its hyperparameters.
      if (run.importedFrom != null) return requireLoaded(await ctx.loaders.runImport.load(run.id), 'import').trainerConfig;
      return service.trainerConfigOf(run, requireLoaded(await ctx.loaders.captionStrategy.load(run.captionStrategyId), 'caption strategy'));
    },
    sweep: (run, _, ctx) => (run.sweepId ? ctx.loaders.sweep.load(run.sweepId) : null),
    resumedFrom: (run, _, ctx) => (run.resumedFromCheckpointId ? ctx.loaders.checkpoint.load(run.resumedFromCheckpointId) : null),
    // An AGENT key reads only runs its agents held: a parent or continuation outside that reads as none.
    parent: async (run, _, ctx) => {
      if (!run.parentRunId) return null;
      return ctx.readScope ? service.parentInScope(ctx, run.parentRunId, ctx.readScope) : ctx.loaders.run.load(run.parentRunId);
    },
    continuations: (run, _, ctx) => (ctx.readScope ? service.continuationsInScope(ctx, run.id, ctx.readScope) : ctx.loaders.continuationsByRun.load(run.id)),
    resumedSteps: (run) => run.resumedSteps,
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
      (await ctx.loaders.runsBySweep.load(sweep.id)).filter((r) => isHeld(r.status)).length,
    bestRun: (sweep, { by }, ctx) => service.bestRunOfSweep(ctx, sweep.id, by ?? 'EMA_LOSS', (id) => ctx.loaders.runSummary.load(id)),
    done: async (sweep, _, ctx) =>
      (await ctx.loaders.runsBySweep.load(sweep.id)).filter((r) => isFinished(r.status)).length,
  },
};
