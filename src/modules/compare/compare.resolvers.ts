import { Kind, type GraphQLResolveInfo } from 'graphql';
import type { Resolvers } from '../../graphql/generated/resolvers.js';
import { promoteCheckpoint, rateCheckpoint } from '../checkpoints/ratings.service.js';
import * as service from './compare.service.js';

/** Whether the selection asks for the groups' runs; a fragment might, so it counts as yes. */
function selectsRuns(info: GraphQLResolveInfo) {
  return info.fieldNodes.some((node) =>
    (node.selectionSet?.selections ?? []).some((s) => s.kind !== Kind.FIELD || s.name.value === 'runs'),
  );
}

export const compareResolvers: Resolvers = {
  Query: {
    compareRuns: (_, args, ctx, info) => service.compareRuns(ctx.db.orm, ctx.loaders, args, selectsRuns(info)) as never,
    checkpointMatrix: (_, args, ctx) => service.checkpointMatrix(ctx.db.orm, ctx.loaders, args) as never,
  },
  Mutation: {
    rateCheckpoint: (_, args, ctx) => rateCheckpoint(ctx.db, ctx.principal!, args),
    promoteCheckpoint: (_, args, ctx) => promoteCheckpoint(ctx.db, args),
  },
};
