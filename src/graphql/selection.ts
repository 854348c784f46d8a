import { Kind, type FieldNode, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

/**
 * The names of the fields a resolver's caller selected below it (or below its child `path`, e.g.
 * lossCurves' `buckets`), through fragments and inline fragments. @skip/@include are not
 * evaluated: a field they may drop still counts, so the answer is never short of what is asked.
 */
export function selectedFields(info: GraphQLResolveInfo, path: string[] = []): Set<string> {
  let sets = info.fieldNodes.map((node) => node.selectionSet).filter((s): s is SelectionSetNode => s != null);
  for (const name of path) {
    const next: SelectionSetNode[] = [];
    for (const set of sets) forEachField(info, set, (field) => field.name.value === name && field.selectionSet && next.push(field.selectionSet));
    sets = next;
  }
  const names = new Set<string>();
  for (const set of sets) forEachField(info, set, (field) => names.add(field.name.value));
  return names;
}

function forEachField(info: GraphQLResolveInfo, set: SelectionSetNode, visit: (field: FieldNode) => unknown) {
  for (const selection of set.selections) {
    if (selection.kind === Kind.FIELD) visit(selection);
    else if (selection.kind === Kind.INLINE_FRAGMENT) forEachField(info, selection.selectionSet, visit);
    else {
      const fragment = info.fragments[selection.name.value];
      if (fragment) forEachField(info, fragment.selectionSet, visit);
    }
  }
}
