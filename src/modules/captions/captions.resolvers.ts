import type { Resolvers } from '../../graphql/generated/resolvers.js';
import * as service from './captions.service.js';

export const captionResolvers: Resolvers = {
  Query: {
    captionStrategies: (_, __, ctx) => service.listCaptionStrategies(ctx, ctx.readScope),
  },
  Mutation: {
    createCaptionStrategy: (_, { input }, ctx) => service.createCaptionStrategy(ctx, input),
    setCaptions: (_, args, ctx) => service.setCaptions(ctx, args),
  },
};
