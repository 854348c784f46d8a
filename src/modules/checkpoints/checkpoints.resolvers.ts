import type { Resolvers } from '../../graphql/generated/resolvers.js';
import { requireLoaded } from '../../graphql/require-loaded.js';
import type { Context } from '../../graphql/context.js';
import { sampleSlot, storedHyperparameters } from '../runs/hyperparameters.js';
import type { SampleRecord } from './checkpoints.store.js';
import { meanScore } from './checkpoints.service.js';
import { promoteCheckpoint, rateCheckpoint } from './ratings.service.js';
import { reportCheckpoint, reportSample } from './reporting.service.js';
import { principalOf } from '../../graphql/permissions.js';

/** The prompt and strength of a sample: the trainer's sample number read with the run's sampleStrengths. */
async function slot(s: SampleRecord, ctx: Context) {
  const run = requireLoaded(await ctx.loaders.run.load(s.runId), 'run');
  return sampleSlot(storedHyperparameters(run.hyperparameters), s.promptIndex);
}

export const checkpointResolvers: Resolvers = {
  Mutation: {
    reportCheckpoint: (_, args, ctx) => reportCheckpoint(ctx, principalOf(ctx), args),
    reportSample: (_, args, ctx) => reportSample(ctx, principalOf(ctx), args),
    rateCheckpoint: (_, args, ctx) => rateCheckpoint(ctx, principalOf(ctx), args),
    promoteCheckpoint: (_, args, ctx) => promoteCheckpoint(ctx, args),
  },
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
