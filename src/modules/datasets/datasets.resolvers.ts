import type { Resolvers } from '../../graphql/generated/resolvers.js';
import { isId } from '../../graphql/ids.js';
import { renderCaption } from '../captions/render.js';
import { captionDiff } from '../captions/captions.service.js';
import * as service from './datasets.service.js';

export const datasetResolvers: Resolvers = {
  Query: {
    datasets: (_, args, ctx) => service.listDatasets(ctx, args, ctx.readScope),
    dataset: (_, { id }, ctx) => service.getDataset(ctx, id, ctx.readScope),
  },
  Mutation: {
    createDataset: (_, { input }, ctx) => service.createDataset(ctx, input),
  },
  Dataset: {
    images: (dataset, args, ctx) => service.listImages(ctx, dataset, args),
    captionDiff: (dataset, { strategyA, strategyB }, ctx) => captionDiff(ctx, dataset.id, strategyA, strategyB),
  },
  DatasetImage: {
    sourceCaption: (image) => image.caption,
    caption: async (image, { strategyId }, ctx) => {
      if (!isId(strategyId)) return null;
      const strategy = await ctx.loaders.captionStrategy.load(strategyId);
      if (!strategy) return null;
      const stored = strategy.kind === 'STORED' ? await ctx.loaders.storedCaption.load({ imageId: image.id, strategyId: strategy.id }) : null;
      return renderCaption(strategy, stored);
    },
    storedCaption: async (image, { strategyId }, ctx) => {
      if (!isId(strategyId)) return null;
      const strategy = await ctx.loaders.captionStrategy.load(strategyId);
      if (strategy?.kind !== 'STORED') return null;
      return (await ctx.loaders.storedCaption.load({ imageId: image.id, strategyId: strategy.id })) ?? null;
    },
  },
};
