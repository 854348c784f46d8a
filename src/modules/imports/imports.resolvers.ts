import type { Resolvers } from '../../graphql/generated/resolvers.js';
import * as service from './imports.service.js';

export const importResolvers: Resolvers = {
  Mutation: {
    beginImport: (_, args, ctx) => service.beginImport(ctx, ctx.principal!, args.input) as never,
    importLoss: (_, args, ctx) => service.importLoss(ctx, ctx.principal!, args),
    importFiles: (_, args, ctx) => service.importFiles(ctx, ctx.principal!, args) as never,
    beginImportUpload: (_, args, ctx) =>
      ctx.artifacts.beginRunUploadAuthorizedBy(ctx.principal!, args, ctx.origin, service.authorizeImportUpload(ctx.principal!, args.runId, args.leaseToken)),
    finishImport: (_, args, ctx) => service.finishImport(ctx, ctx.principal!, args),
  },
  Run: {
    importedFrom: (run) => run.importedFrom ?? null,
  },
};
