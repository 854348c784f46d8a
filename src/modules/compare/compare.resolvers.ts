import { Kind, type GraphQLResolveInfo } from 'graphql';
import type { Resolvers } from '../../graphql/generated/resolvers.js';
import * as service from './compare.service.js';

/** Whether the selection asks for the groups' runs; a fragment might, so it counts as yes. */
function selectsRuns(info: GraphQLResolveInfo) {
  return info.fieldNodes.some((node) =>
    (node.selectionSet?.selections ?? []).some((s) => s.kind !== Kind.FIELD || s.name.value === 'runs'),
  );
}

export const compareResolvers: Resolvers = {
  Query: {
    compareRuns: (_, args, ctx, info) => service.compareRuns(ctx.db.orm, args, selectsRuns(info)),
    checkpointMatrix: (_, args, ctx) => service.checkpointMatrix(ctx.db.orm, args),
  },
  RunGroupKey: {
    captionStrategy: (key, _, ctx) => (key.captionStrategyId == null ? null : ctx.loaders.captionStrategy.load(key.captionStrategyId)),
    dataset: (key, _, ctx) => (key.datasetId == null ? null : ctx.loaders.dataset.load(key.datasetId)),
  },
};
