import type { Resolvers } from '../../graphql/generated/resolvers.js';
import * as service from './agents.service.js';
import * as store from './agents.store.js';

export const agentResolvers: Resolvers = {
  Query: {
    agents: (_, __, ctx) => store.listAgents(ctx.db.orm, ctx.readScope),
  },
  Mutation: {
    registerAgent: (_, { input }, ctx) => service.registerAgent(ctx.db.orm, ctx.principal!, input),
    setAgentDraining: (_, { agentId, draining }, ctx) => service.setAgentDraining(ctx.db.orm, ctx.principal!, agentId, draining),
  },
  Agent: {
    status: async (agent, _, ctx) => {
      // Agents heartbeat at a third of the lease: three missed beats is one lease.
      const offlineAfterMs = ctx.config.leaseTtlSeconds * 1000;
      if (Date.now() - agent.lastSeenAt.getTime() > offlineAfterMs) return 'OFFLINE';
      if (agent.draining) return 'DRAINING';
      return (await ctx.loaders.activeRunsByAgent.load(agent.id)).length > 0 ? 'BUSY' : 'IDLE';
    },
    currentRun: async (agent, _, ctx) => (await ctx.loaders.activeRunsByAgent.load(agent.id))[0] ?? null,
    gpus: (agent) => agent.gpus,
  },
};
