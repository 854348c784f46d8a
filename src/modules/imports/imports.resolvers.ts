import type { Resolvers } from '../../graphql/generated/resolvers.js';
import * as service from './imports.service.js';
import { principalOf } from '../../graphql/permissions.js';

export const importResolvers: Resolvers = {
  Mutation: {
    beginImport: (_, args, ctx) => service.beginImport(ctx, principalOf(ctx), args.input) as never,
    importLoss: (_, args, ctx) => service.importLoss(ctx, principalOf(ctx), args),
    importLossColumns: (_, args, ctx) => service.importLossColumns(ctx, principalOf(ctx), args),
    importLossText: (_, args, ctx) => service.importLossText(ctx, principalOf(ctx), args),
    importFiles: (_, args, ctx) => service.importFiles(ctx, principalOf(ctx), args) as never,
    beginImportUpload: (_, args, ctx) =>
      ctx.artifacts.beginRunUploadAuthorizedBy(principalOf(ctx), args, ctx.origin, service.authorizeImportUpload(principalOf(ctx), args.runId, args.leaseToken)),
    beginImportUploads: (_, args, ctx) =>
      ctx.artifacts.beginRunUploadsAuthorizedBy(principalOf(ctx), args, ctx.origin, service.authorizeImportUpload(principalOf(ctx), args.runId, args.leaseToken)),
    finishImport: (_, args, ctx) => service.finishImport(ctx, principalOf(ctx), args),
  },
  Run: {
    importedFrom: (run) => run.importedFrom ?? null,
  },
};
