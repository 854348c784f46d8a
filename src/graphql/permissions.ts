// Who may call which field, in one place. A root field not listed is for people's keys (VIEWER and
// up): a new field is closed to AGENT keys until someone decides what an agent may see of it.
// Fields an AGENT key may use (SCOPED_READ) answer it only with what its agents hold (read-scope.ts).
import { defaultFieldResolver, getNamedType, isObjectType, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import type { ApiRole, Principal } from '../modules/keys/keys.service.js';
import { assertSubscriptionInScope } from '../modules/agents/read-scope.js';
import { forbidden, unauthenticated } from './errors.js';
import type { Context } from './context.js';

type Requirement = 'READ' | 'SCOPED_READ' | 'EDITOR' | 'ADMIN' | 'AGENT' | 'AGENT_OR_ADMIN' | 'UPLOADER';

const allowed: Record<Requirement, ApiRole[]> = {
  READ: ['VIEWER', 'EDITOR', 'ADMIN'],
  SCOPED_READ: ['VIEWER', 'EDITOR', 'ADMIN', 'AGENT'],
  EDITOR: ['EDITOR', 'ADMIN'],
  ADMIN: ['ADMIN'],
  AGENT: ['AGENT'],
  AGENT_OR_ADMIN: ['AGENT', 'ADMIN'],
  // Whoever may begin an upload (an agent for its runs, an editor for datasets) completes it.
  UPLOADER: ['AGENT', 'EDITOR', 'ADMIN'],
};

export const rootFieldRequirements: Record<string, Requirement> = {
  'Query.viewer': 'SCOPED_READ',
  'Query.agents': 'SCOPED_READ',
  'Query.runs': 'SCOPED_READ',
  'Query.run': 'SCOPED_READ',
  'Query.datasets': 'SCOPED_READ',
  'Query.dataset': 'SCOPED_READ',
  'Query.captionStrategies': 'SCOPED_READ',
  'Subscription.runLoss': 'SCOPED_READ',
  'Subscription.runUpdated': 'SCOPED_READ',
  'Subscription.runEvents': 'SCOPED_READ',
  'Mutation.createExperiment': 'EDITOR',
  'Mutation.createDataset': 'EDITOR',
  'Mutation.createCaptionStrategy': 'EDITOR',
  'Mutation.setCaptions': 'EDITOR',
  'Mutation.queueRun': 'EDITOR',
  'Mutation.continueRun': 'EDITOR',
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
  'Mutation.completeUploads': 'UPLOADER',
  'Mutation.pruneArtifacts': 'EDITOR',
  'Mutation.beginImport': 'EDITOR',
  'Mutation.importLoss': 'EDITOR',
  'Mutation.importLossColumns': 'EDITOR',
  'Mutation.importLossText': 'EDITOR',
  'Mutation.importFiles': 'EDITOR',
  'Mutation.beginImportUpload': 'EDITOR',
  'Mutation.beginImportUploads': 'EDITOR',
  'Mutation.finishImport': 'EDITOR',
};

/** Records an AGENT key never reads, wherever a field leads to them (Run.experiment, Run.sweep). */
const peopleOnlyTypes = new Set(['Experiment', 'Sweep']);

/** Fields below the root that read beyond the record they hang on. */
const nestedFieldRequirements: Record<string, Requirement> = {
  // Captions of the dataset under any strategy, not only the one its run trains with.
  'Dataset.captionDiff': 'READ',
  'DatasetImage.caption': 'READ',
};

const ROOT_TYPES = new Set(['Query', 'Mutation', 'Subscription']);

export function requirementOf(typeName: string, fieldName: string, returnType: string): Requirement | null {
  const field = `${typeName}.${fieldName}`;
  if (ROOT_TYPES.has(typeName)) return rootFieldRequirements[field] ?? 'READ';
  return nestedFieldRequirements[field] ?? (peopleOnlyTypes.has(returnType) ? 'READ' : null);
}

export function assertAllowed(ctx: Pick<Context, 'principal'>, requirement: Requirement, field: string) {
  if (!ctx.principal) throw unauthenticated();
  if (!allowed[requirement].includes(ctx.principal.role)) {
    throw forbidden(`${field} needs a ${allowed[requirement].join(' or ')} key; this key is ${ctx.principal.role}`);
  }
}

/**
 * The calling key, for a resolver behind a requirement: guardFields has already refused a request
 * without one, so this only turns that guarantee into a type (and refuses, should a field lose its
 * requirement).
 */
export function principalOf(ctx: Pick<Context, 'principal'>): Principal {
  if (!ctx.principal) throw unauthenticated();
  return ctx.principal;
}

/** Wraps every field that has a requirement with its check; returns the schema. */
export function guardFields(schema: GraphQLSchema) {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      const requirement = requirementOf(type.name, field.name, getNamedType(field.type).name);
      if (!requirement) continue;
      const name = `${type.name}.${field.name}`;
      if (type.name === 'Subscription') {
        const subscribe = field.subscribe!;
        field.subscribe = async (parent, args, ctx: Context, info) => {
          assertAllowed(ctx, requirement, name);
          await assertSubscriptionInScope(ctx.db.orm, ctx.readScope, args);
          return subscribe(parent, args, ctx, info);
        };
        continue;
      }
      const resolve: GraphQLFieldResolver<unknown, Context> = field.resolve ?? defaultFieldResolver;
      field.resolve = (parent, args, ctx: Context, info) => {
        assertAllowed(ctx, requirement, name);
        return resolve(parent, args, ctx, info);
      };
    }
  }
  return schema;
}
