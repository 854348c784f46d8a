import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { mergeResolvers } from '@graphql-tools/merge';
import type { Resolvers } from './generated/resolvers.js';
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
  const typeDefs = loadTypeDefs();
  // The argument types the input checks walk; the resolvers are wrapped before the schema is built.
  const types = makeExecutableSchema({ typeDefs });
  return guardFields(makeExecutableSchema({ typeDefs, resolvers: guardInputValues(types, resolvers) as never }));
}
