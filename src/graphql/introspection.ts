// Introspection (the whole schema: every field, argument and description) answers signed-in keys
// only: codegen and IDEs send a key anyway, and a stranger learns nothing before signing in.
// `__typename` alone stays open: it tells nothing about the schema.
import { Kind, type DocumentNode, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';
import type { ApolloServerPlugin } from '@apollo/server';
import type { Context } from './context.js';
import { unauthenticated } from './errors.js';

/** Whether the operation asks for `__schema` or `__type` at its root, directly or through fragments. */
export function asksForIntrospection(document: DocumentNode, operation: OperationDefinitionNode) {
  const fragments = new Map(
    document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d.selectionSet] as const),
  );
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode): boolean =>
    set.selections.some((selection) => {
      if (selection.kind === Kind.FIELD) return selection.name.value === '__schema' || selection.name.value === '__type';
      if (selection.kind === Kind.INLINE_FRAGMENT) return walk(selection.selectionSet);
      const name = selection.name.value;
      if (seen.has(name)) return false;
      seen.add(name);
      const fragment = fragments.get(name);
      return fragment ? walk(fragment) : false;
    });
  return walk(operation.selectionSet);
}

export const introspectionNeedsKeyPlugin: ApolloServerPlugin<Context> = {
  async requestDidStart() {
    return {
      async didResolveOperation({ contextValue, document, operation }) {
        if (!contextValue.principal && operation && asksForIntrospection(document, operation)) {
          throw unauthenticated('Introspection needs an API key: send "Authorization: Bearer <key>"');
        }
      },
    };
  },
};
