import type { Resolvers } from '../../graphql/generated/resolvers.js';
import * as service from './agents.service.js';
import { principalOf } from '../../graphql/permissions.js';

export const agentResolvers: Resolvers = {
  Query: {
    agents: (_, __, ctx) => service.listAgents(ctx, ctx.readScope),
  },
  Mutation: {
    registerAgent: (_, { input }, ctx) => service.registerAgent(ctx, principalOf(ctx), input),
    setAgentDraining: (_, { agentId, draining }, ctx) => service.setAgentDraining(ctx, principalOf(ctx), agentId, draining),
  },
  Agent: {
    status: async (agent, _, ctx) => service.statusOf(agent, ctx.config.leaseTtlSeconds, await ctx.loaders.activeRunsByAgent.load(agent.id)),
    currentRun: async (agent, _, ctx) => (await ctx.loaders.activeRunsByAgent.load(agent.id))[0] ?? null,
    gpus: (agent) => agent.gpus,
  },
};
