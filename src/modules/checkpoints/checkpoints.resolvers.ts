import type { Resolvers } from '../../graphql/generated/resolvers.js';
import type { Context } from '../../graphql/context.js';
import { sampleSlot, storedHyperparameters } from '../runs/hyperparameters.js';
import type { SampleRecord } from './checkpoints.store.js';
import { meanScore } from './checkpoints.service.js';
import { reportCheckpoint, reportSample } from './reporting.service.js';

const requireLoaded = <T>(value: T | null, what: string): T => {
  if (value == null) throw new Error(`${what} vanished while it was being read`);
  return value;
};

/** The prompt and strength of a sample: the trainer's sample number read with the run's sampleStrengths. */
async function slot(s: SampleRecord, ctx: Context) {
  const run = requireLoaded(await ctx.loaders.run.load(s.runId), 'run');
  return sampleSlot(storedHyperparameters(run.hyperparameters), s.promptIndex);
}

export const checkpointResolvers: Resolvers = {
  Checkpoint: {
    run: async (c, _, ctx) => requireLoaded(await ctx.loaders.run.load(c.runId), 'run'),
    samples: async (c, _, ctx) => (await ctx.loaders.samplesByRun.load(c.runId)).filter((s) => s.step === c.step),
    ratings: (c, _, ctx) => ctx.loaders.ratingsByCheckpoint.load(c.id),
    meanRating: async (c, _, ctx) => meanScore(await ctx.loaders.ratingsByCheckpoint.load(c.id)),
  },
  Sample: {
    run: async (s, _, ctx) => requireLoaded(await ctx.loaders.run.load(s.runId), 'run'),
    promptIndex: async (s, _, ctx) => (await slot(s, ctx)).promptIndex,
    strength: async (s, _, ctx) => (await slot(s, ctx)).strength,
  },
  Rating: {
    checkpoint: async (r, _, ctx) => requireLoaded(await ctx.loaders.checkpoint.load(r.checkpointId), 'checkpoint'),
  },
};

export { requireLoaded };

export const checkpointReportingResolvers: Resolvers = {
  Mutation: {
    reportCheckpoint: (_, args, ctx) => reportCheckpoint(ctx.db, ctx.principal!, args),
    reportSample: (_, args, ctx) => reportSample(ctx.db, ctx.principal!, args),
  },
};
