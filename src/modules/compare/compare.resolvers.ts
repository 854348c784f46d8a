import type { Resolvers } from '../../graphql/generated/resolvers.js';
import { promoteCheckpoint, rateCheckpoint } from '../checkpoints/ratings.service.js';
import * as service from './compare.service.js';

export const compareResolvers: Resolvers = {
  Query: {
    compareRuns: (_, args, ctx) => service.compareRuns(ctx.db.orm, ctx.loaders, args) as never,
    checkpointMatrix: (_, args, ctx) => service.checkpointMatrix(ctx.db.orm, ctx.loaders, args) as never,
  },
  Mutation: {
    rateCheckpoint: (_, args, ctx) => rateCheckpoint(ctx.db, ctx.principal!, args),
    promoteCheckpoint: (_, args, ctx) => promoteCheckpoint(ctx.db, args),
  },
};
