import type { Resolvers } from '../../graphql/generated/resolvers.js';
import { selectedFields } from '../../graphql/selection.js';
import * as service from './compare.service.js';

export const compareResolvers: Resolvers = {
  Query: {
    compareRuns: (_, args, ctx, info) => service.compareRuns(ctx, args, selectedFields(info).has('runs')),
    checkpointMatrix: (_, args, ctx) => service.checkpointMatrix(ctx, args),
  },
  RunGroupKey: {
    captionStrategy: (key, _, ctx) => (key.captionStrategyId == null ? null : ctx.loaders.captionStrategy.load(key.captionStrategyId)),
    dataset: (key, _, ctx) => (key.datasetId == null ? null : ctx.loaders.dataset.load(key.datasetId)),
  },
};
