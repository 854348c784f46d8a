// Who may call which root field, in one place. Fields not listed need any valid key (read access).
import type { GraphQLFieldResolver } from 'graphql';
import type { ApiRole } from '../modules/keys/keys.service.js';
import { forbidden, unauthenticated } from './errors.js';
import type { Context } from './context.js';

type Requirement = 'READ' | 'EDITOR' | 'ADMIN' | 'AGENT' | 'AGENT_OR_ADMIN' | 'UPLOADER';

const allowed: Record<Requirement, ApiRole[]> = {
  READ: ['VIEWER', 'EDITOR', 'ADMIN', 'AGENT'],
  EDITOR: ['EDITOR', 'ADMIN'],
  ADMIN: ['ADMIN'],
  AGENT: ['AGENT'],
  AGENT_OR_ADMIN: ['AGENT', 'ADMIN'],
  // Whoever may begin an upload (an agent for its runs, an editor for datasets) completes it.
  UPLOADER: ['AGENT', 'EDITOR', 'ADMIN'],
};

export const rootFieldRequirements: Record<string, Requirement> = {
  'Mutation.createExperiment': 'EDITOR',
  'Mutation.createDataset': 'EDITOR',
  'Mutation.createCaptionStrategy': 'EDITOR',
  'Mutation.setCaptions': 'EDITOR',
  'Mutation.queueRun': 'EDITOR',
  'Mutation.queueSweep': 'EDITOR',
  'Mutation.cancelRun': 'EDITOR',
  'Mutation.retryRun': 'EDITOR',
  'Mutation.rateCheckpoint': 'EDITOR',
  'Mutation.promoteCheckpoint': 'EDITOR',
  'Mutation.createApiKey': 'ADMIN',
  'Mutation.revokeApiKey': 'ADMIN',
  'Mutation.registerAgent': 'AGENT',
  'Mutation.claimRun': 'AGENT',
  'Mutation.startRun': 'AGENT',
  'Mutation.heartbeat': 'AGENT',
  'Mutation.reportLoss': 'AGENT',
  'Mutation.reportLossColumns': 'AGENT',
  'Mutation.reportCheckpoint': 'AGENT',
  'Mutation.reportSample': 'AGENT',
  'Mutation.completeRun': 'AGENT',
  'Mutation.setAgentDraining': 'AGENT_OR_ADMIN',
  'Mutation.beginRunUpload': 'AGENT',
  'Mutation.beginDatasetUpload': 'EDITOR',
  'Mutation.completeUpload': 'UPLOADER',
  'Mutation.pruneArtifacts': 'EDITOR',
};

export function requirementOf(typeName: string, fieldName: string): Requirement {
  return rootFieldRequirements[`${typeName}.${fieldName}`] ?? 'READ';
}

export function assertAllowed(ctx: Pick<Context, 'principal'>, requirement: Requirement, field: string) {
  if (!ctx.principal) throw unauthenticated();
  if (!allowed[requirement].includes(ctx.principal.role)) {
    throw forbidden(`${field} needs a ${allowed[requirement].join(' or ')} key; this key is ${ctx.principal.role}`);
  }
}

/** Wraps every root resolver of `resolvers` with its requirement. */
export function guardRootFields(resolvers: Record<string, Record<string, unknown>>) {
  for (const typeName of ['Query', 'Mutation', 'Subscription']) {
    const fields = resolvers[typeName];
    if (!fields) continue;
    for (const [fieldName, resolver] of Object.entries(fields)) {
      const requirement = requirementOf(typeName, fieldName);
      const field = `${typeName}.${fieldName}`;
      if (typeof resolver === 'function') {
        const inner = resolver as GraphQLFieldResolver<unknown, Context>;
        fields[fieldName] = (parent: unknown, args: unknown, ctx: Context, info: never) => {
          assertAllowed(ctx, requirement, field);
          return inner(parent, args as never, ctx, info);
        };
      } else if (resolver && typeof resolver === 'object' && 'subscribe' in resolver) {
        const sub = resolver as { subscribe: GraphQLFieldResolver<unknown, Context>; resolve?: unknown };
        const inner = sub.subscribe;
        fields[fieldName] = {
          ...sub,
          subscribe: (parent: unknown, args: unknown, ctx: Context, info: never) => {
            assertAllowed(ctx, requirement, field);
            return inner(parent, args as never, ctx, info);
          },
        };
      }
    }
  }
  return resolvers;
}
