import type { Resolvers } from '../../graphql/generated/resolvers.js';
import { selectedFields } from '../../graphql/selection.js';
import { subscribeRunLoss } from '../../live/loss-feed.js';
import * as service from './metrics.service.js';
import { principalOf } from '../../graphql/permissions.js';

export const metricsResolvers: Resolvers = {
  Query: {
    lossCurves: (_, args, ctx, info) => service.lossCurves(ctx, args, selectedFields(info, ['buckets'])),
  },
  Mutation: {
    reportLoss: (_, args, ctx) => service.reportLoss(ctx, principalOf(ctx), args),
    reportLossColumns: (_, args, ctx) => service.reportLossColumns(ctx, principalOf(ctx), args),
  },
  Run: {
    lossCurve: (run, args, ctx, info) => service.lossCurve(ctx, run.id, args, selectedFields(info)),
    lossPoints: async (run, args, ctx) => (await service.lossPoints(ctx, run.id, args)) as never,
  },
  Subscription: {
    runLoss: {
      subscribe: (_, args, ctx) => subscribeRunLoss(ctx.db.orm, ctx.feeds.loss, args) as never,
      resolve: (batch: unknown) => batch as never,
    },
  },
};
