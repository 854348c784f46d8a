import type { Resolvers } from '../../graphql/generated/resolvers.js';
import * as service from './dispatch.service.js';
import { principalOf } from '../../graphql/permissions.js';

export const dispatchResolvers: Resolvers = {
  Mutation: {
    claimRun: async (_, args, ctx) => {
      const assignment = await service.claimRun(ctx, principalOf(ctx), args, ctx.signal);
      // The claim read the run's strategy and dataset: its run { captionStrategy dataset } need no query.
      if (assignment) {
        ctx.loaders.captionStrategy.prime(assignment.strategy.id, assignment.strategy);
        ctx.loaders.dataset.prime(assignment.dataset.id, assignment.dataset);
      }
      return assignment;
    },
    startRun: (_, args, ctx) => service.startRun(ctx, principalOf(ctx), args),
    heartbeat: (_, args, ctx) => service.heartbeat(ctx, principalOf(ctx), args),
    completeRun: (_, args, ctx) => service.completeRun(ctx, principalOf(ctx), args),
    cancelRun: (_, { id }, ctx) => service.cancelRun(ctx, id),
    retryRun: (_, { id }, ctx) => service.retryRun(ctx, id),
  },
  RunAssignment: {
    trainerConfig: (assignment) => service.trainerConfigOfAssignment(assignment),
    captions: (assignment) => service.captionsOfAssignment(assignment),
    resume: (assignment, _, ctx) => service.resumePointOf(ctx, assignment),
  },
};
