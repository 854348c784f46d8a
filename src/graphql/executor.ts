// How queries are executed: compiled once per document by graphql-jit, then run as plain functions.
//
// graphql-js completes an answer field by field through generic code: a curve of 10,000 buckets
// cost it ~15 ms of one uninterrupted task, the largest answer the cost budget admits (40,000
// buckets) four times that, and no other request was read meanwhile (bench/fairness.ts). graphql-jit
// compiles an operation into code that builds the same answer 10–20× faster.
//
// Only queries go through it. Mutations are small answers whose effects must follow one another as
// graphql-js orders them; introspection, and any document graphql-jit declines to compile, stay
// with graphql-js, which defines them. Subscriptions never come here (graphql-ws runs them).
//
// Apollo Server takes another executor only through its gateway interface; this is a gateway of
// one local schema that never changes.
import type { GatewayExecutor, GatewayInterface } from '@apollo/server-gateway-interface';
import { execute, GraphQLError, Kind, locatedError, type DocumentNode, type GraphQLSchema, type SelectionSetNode } from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';

/** Operations compiled per document (Apollo hands every request of one query text the same one). */
type Plans = Map<string, CompiledQuery | null>;

export function localGateway(schema: GraphQLSchema): GatewayInterface {
  return {
    onSchemaLoadOrUpdate(callback) {
      callback({ apiSchema: schema, coreSupergraphSdl: '' });
      return () => {};
    },
    async load() {
      return { executor: queryExecutor(schema) };
    },
    async stop() {},
  };
}

function queryExecutor(schema: GraphQLSchema): GatewayExecutor {
  const plans = new WeakMap<DocumentNode, Plans>();
  return async ({ document, operation, operationName, context, request }) => {
    const variableValues = request.variables ?? {};
    let forDocument = plans.get(document);
    if (!forDocument) plans.set(document, (forDocument = new Map()));
    const key = operationName ?? '';
    let plan = forDocument.get(key);
    if (plan === undefined) {
      plan = null;
      if (operation.operation === 'query' && !asksForIntrospection(document, operation.selectionSet)) {
        // Stack traces of resolvers' errors are never sent (includeStacktraceInErrorResponses: false).
        const compiled = compileQuery(schema, document, operationName ?? undefined, { disablingCapturingStackErrors: true });
        if (isCompiledQuery(compiled)) plan = compiled;
      }
      forDocument.set(key, plan);
    }
    if (!plan) return execute({ schema, document, contextValue: context, variableValues, operationName });
    const result = await plan.query(undefined, context, variableValues);
    return result.errors ? { ...result, errors: result.errors.map(asGraphqlJsError) } : result;
  };
}

/**
 * graphql-jit's errors as graphql-js makes them: an error a resolver threw keeps its own code
 * (a GraphQLError of ours is given its path), and every error has extensions,
 * which Apollo reads.
 */
function asGraphqlJsError(error: GraphQLError): GraphQLError {
  const original = error.originalError;
  const converted = original ? locatedError(original, undefined, error.path) : new GraphQLError(error.message, { path: error.path });
  if (error.locations) Object.assign(converted, { locations: error.locations });
  return converted;
}

/** Whether an operation reads __schema or __type (at its root, as those fields can only be). */
function asksForIntrospection(document: DocumentNode, selectionSet: SelectionSetNode, seen = new Set<string>()): boolean {
  return selectionSet.selections.some((selection) => {
    if (selection.kind === Kind.FIELD) return selection.name.value === '__schema' || selection.name.value === '__type';
    if (selection.kind === Kind.INLINE_FRAGMENT) return asksForIntrospection(document, selection.selectionSet, seen);
    const name = selection.name.value;
    if (seen.has(name)) return false;
    seen.add(name);
    const fragment = document.definitions.find((d) => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === name);
    return fragment?.kind === Kind.FRAGMENT_DEFINITION && asksForIntrospection(document, fragment.selectionSet, seen);
  });
}
