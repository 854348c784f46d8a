import type { Resolvers } from '../../graphql/generated/resolvers.js';
import * as service from './keys.service.js';
import { agentOfKey } from '../agents/agents.service.js';
import { principalOf } from '../../graphql/permissions.js';

export const keyResolvers: Resolvers = {
  Query: {
    viewer: async (_, __, ctx) => ({
      role: principalOf(ctx).role,
      name: principalOf(ctx).name,
      agent: await agentOfKey(ctx, principalOf(ctx)),
    }),
  },
  Mutation: {
    createApiKey: (_, { role, name }, ctx) => service.createApiKey(ctx, role, name),
    revokeApiKey: (_, { id }, ctx) => service.revokeApiKey(ctx, id),
  },
};
