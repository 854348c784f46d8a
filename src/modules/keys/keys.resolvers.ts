import type { Resolvers } from '../../graphql/generated/resolvers.js';
import * as service from './keys.service.js';

export const keyResolvers: Resolvers = {
  Query: {
    viewer: (_, __, ctx) => ({ role: ctx.principal!.role, name: ctx.principal!.name, agent: null }),
  },
  Mutation: {
    createApiKey: (_, { role, name }, ctx) => service.createApiKey(ctx.db.orm, role, name),
    revokeApiKey: (_, { id }, ctx) => service.revokeApiKey(ctx.db.orm, id),
  },
};
