import type { Resolvers } from '../../graphql/generated/resolvers.js';
import { createLoaders } from '../../graphql/loaders.js';
import type { Context } from '../../graphql/context.js';
import { selectedFields } from '../../graphql/selection.js';
import type { RunRecord } from '../runs/runs.store.js';
import { subscribeRunEvents, subscribeRunUpdated } from '../runs/run-feeds.js';
import * as service from './metrics.service.js';

export const metricsResolvers: Resolvers = {
  Query: {
    lossCurves: (_, args, ctx, info) => service.lossCurves(ctx.db, args, selectedFields(info, ['buckets'])),
  },
  Mutation: {
    reportLoss: (_, args, ctx) => service.reportLoss(ctx.db, ctx.principal!, args),
    reportLossColumns: (_, args, ctx) => service.reportLossColumns(ctx.db, ctx.principal!, args),
  },
  Run: {
    lossCurve: (run, args, ctx, info) => service.lossCurve(ctx.db, run.id, args, selectedFields(info)),
    lossPoints: async (run, args, ctx) => (await service.lossPoints(ctx.db.orm, run.id, args)) as never,
  },
  Subscription: {
    runLoss: {
      subscribe: (_, args, ctx) => service.subscribeRunLoss(ctx.db.orm, ctx.feeds.loss, args) as never,
      resolve: (batch: unknown) => batch as never,
    },
    runUpdated: {
      subscribe: (_, args, ctx) => subscribeRunUpdated(ctx.db.orm, ctx.feeds.runs, args) as never,
      // graphql-ws makes one context per subscription: fresh loaders per event, or nested fields
      // (checkpoints, summary) would be read from the first event's cache forever.
      resolve: (run: RunRecord, _args: unknown, ctx: Context) => {
        ctx.loaders = createLoaders(ctx.db.orm);
        return run;
      },
    },
    runEvents: {
      subscribe: (_, args, ctx) => subscribeRunEvents(ctx.db.orm, ctx.feeds.events, args) as never,
      resolve: (event: unknown) => event as never,
    },
  },
};
