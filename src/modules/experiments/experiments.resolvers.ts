import type { Resolvers } from '../../graphql/generated/resolvers.js';
import * as service from './experiments.service.js';
import * as runs from '../runs/runs.service.js';

export const experimentResolvers: Resolvers = {
  Query: {
    experiments: (_, args, ctx) => service.listExperiments(ctx, args),
    experiment: (_, { id }, ctx) => service.getExperiment(ctx, id),
  },
  Mutation: {
    createExperiment: (_, { input }, ctx) => service.createExperiment(ctx, input),
  },
  Experiment: {
    runs: (experiment, args, ctx) =>
      runs.listRuns(ctx, { ...args, filter: { ...args.filter, experimentId: experiment.id } }),
    sweeps: (experiment, _, ctx) => ctx.loaders.sweepsByExperiment.load(experiment.id),
  },
};
