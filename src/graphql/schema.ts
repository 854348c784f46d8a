import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { buildASTSchema, isObjectType, isScalarType, parse, type GraphQLScalarType, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import { mergeResolvers } from '@graphql-tools/merge';
import type { Resolvers } from './generated/resolvers.js';
import type { Connection } from './connection.js';
import { DateTime, JSONScalar } from './scalars.js';
import { guardFields } from './permissions.js';
import { guardInputValues } from './input-values.js';
import { keyResolvers } from '../modules/keys/keys.resolvers.js';
import { experimentResolvers } from '../modules/experiments/experiments.resolvers.js';
import { datasetResolvers } from '../modules/datasets/datasets.resolvers.js';
import { captionResolvers } from '../modules/captions/captions.resolvers.js';
import { runResolvers } from '../modules/runs/runs.resolvers.js';
import { agentResolvers } from '../modules/agents/agents.resolvers.js';
import { checkpointResolvers } from '../modules/checkpoints/checkpoints.resolvers.js';
import { metricsResolvers } from '../modules/metrics/metrics.resolvers.js';
import { compareResolvers } from '../modules/compare/compare.resolvers.js';
import { dispatchResolvers } from '../modules/dispatch/dispatch.resolvers.js';
import { artifactResolvers } from '../modules/artifacts/artifacts.resolvers.js';
import { importResolvers } from '../modules/imports/imports.resolvers.js';

export const SCHEMA_DIR = fileURLToPath(new URL('../../schema', import.meta.url));

export function loadTypeDefs() {
  return readdirSync(SCHEMA_DIR)
    .filter((f) => f.endsWith('.graphql'))
    .sort()
    .map((f) => readFileSync(path.join(SCHEMA_DIR, f), 'utf8'));
}

export function buildSchema() {
  const resolvers = mergeResolvers([
    { DateTime, JSON: JSONScalar },
    keyResolvers,
    experimentResolvers,
    datasetResolvers,
    captionResolvers,
    runResolvers,
    agentResolvers,
    checkpointResolvers,
    dispatchResolvers,
    metricsResolvers,
    compareResolvers,
    artifactResolvers,
    importResolvers,
  ] as Resolvers[]) as Record<string, Record<string, unknown>>;
  // Built once from all the files as one document (graphql-js applies each file's `extend type`),
  // then the resolvers are set on its fields in place. graphql-tools' makeExecutableSchema rebuilt
  // every type to do the same, twice over: a third of a restart's CPU (bench/startup.ts).
  // The SDL is checked as a document by the tests (test/layout.test.ts) and by codegen, so a start
  // skips that (a twentieth of a restart); graphql-js still validates the schema it builds.
  const schema = buildASTSchema(parse(loadTypeDefs().join('\n'), { noLocation: true }), { assumeValidSDL: true });
  return guardFields(attachResolvers(schema, { ...guardInputValues(schema, resolvers), ...countResolvers(schema) }));
}

/**
 * A connection's totalCount is counted only when asked for: toConnection (connection.ts) gives it
 * as a function. graphql-js's default resolver would call it; graphql-jit (executor.ts) reads a
 * field without a resolver as a plain property, so each connection's count gets one.
 */
function countResolvers(schema: GraphQLSchema) {
  const countOf = { totalCount: (connection: Connection<unknown>) => connection.totalCount() };
  return Object.fromEntries(
    Object.values(schema.getTypeMap())
      .filter((type) => isObjectType(type) && type.name.endsWith('Connection') && type.getFields().totalCount)
      .map((type) => [type.name, countOf]),
  );
}

/** Sets `resolvers` on `schema`'s scalars and fields; one naming a type or field the SDL lacks is a programming error. */
function attachResolvers(schema: GraphQLSchema, resolvers: Record<string, Record<string, unknown>>) {
  for (const [typeName, entries] of Object.entries(resolvers)) {
    const type = schema.getType(typeName);
    if (isScalarType(type)) {
      const { serialize, parseValue, parseLiteral } = entries as unknown as GraphQLScalarType;
      Object.assign(type, { serialize, parseValue, parseLiteral });
      continue;
    }
    if (!isObjectType(type)) throw new Error(`resolvers name ${typeName}, which the schema has no object type for`);
    const fields = type.getFields();
    for (const [fieldName, resolver] of Object.entries(entries)) {
      const field = fields[fieldName];
      if (!field) throw new Error(`resolvers name ${typeName}.${fieldName}, which the schema does not declare`);
      if (typeof resolver === 'function') field.resolve = resolver as GraphQLFieldResolver<unknown, unknown>;
      else {
        const { resolve, subscribe } = resolver as { resolve?: GraphQLFieldResolver<unknown, unknown>; subscribe?: GraphQLFieldResolver<unknown, unknown> };
        if (resolve) field.resolve = resolve;
        if (subscribe) field.subscribe = subscribe;
      }
    }
  }
  return schema;
}
