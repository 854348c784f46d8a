// Rules on input values that GraphQL's types cannot state, checked for every argument of every
// field before its resolver runs, so no field can forget them:
//
// - Text never holds NUL (\u0000): PostgreSQL cannot store it in text or jsonb and would fail the
//   whole statement. Text people send is refused, naming the field; text a trainer wrote (its
//   error message, log tail, sample prompt, file paths), which an agent passes on as it came, is
//   cleaned instead: a trainer's output is never a reason to lose a run's outcome.
// - JSON values are at most MAX_JSON_DEPTH levels deep and MAX_JSON_BYTES long.
import {
  getNamedType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isScalarType,
  type GraphQLArgument,
  type GraphQLFieldResolver,
  type GraphQLInputType,
  type GraphQLSchema,
} from 'graphql';
import { badInput } from './errors.js';

export const MAX_JSON_DEPTH = 32;
export const MAX_JSON_BYTES = 64 * 1024;

/** Input fields whose text comes from the trainer: cleaned, never refused. */
export const TRAINER_TEXT = new Set(['RunErrorInput.message', 'RunErrorInput.logTail', 'SampleInput.prompt', 'SampleInput.path', 'CheckpointInput.path']);

const NUL = /\u0000/g;
/** What a NUL in trainer text becomes: the replacement character, so the text shows something was there. */
export const cleanTrainerText = (text: string) => text.replace(NUL, '\uFFFD');

const TEXT_SCALARS = new Set(['String', 'ID']);

const textHolders = new WeakMap<object, boolean>();

/** Whether values of `type` can hold text or JSON (else they need no walk). */
function holdsText(type: GraphQLInputType): boolean {
  const named = getNamedType(type);
  let known = textHolders.get(named);
  if (known === undefined) textHolders.set(named, (known = findsText(named, new Set())));
  return known;
}

function findsText(type: GraphQLInputType, seen: Set<string>): boolean {
  const named = getNamedType(type);
  if (isScalarType(named)) return TEXT_SCALARS.has(named.name) || named.name === 'JSON';
  if (!isInputObjectType(named) || seen.has(named.name)) return false;
  seen.add(named.name);
  return Object.values(named.getFields()).some((f) => findsText(f.type, seen));
}

function checkJson(value: unknown, field: string) {
  const depth = (v: unknown, level: number): void => {
    if (level > MAX_JSON_DEPTH) throw badInput(field, `is nested deeper than ${MAX_JSON_DEPTH} levels`);
    if (typeof v === 'string') {
      if (v.includes('\u0000')) throw badInput(field, 'must not contain NUL characters (\\u0000)');
    } else if (Array.isArray(v)) {
      for (const item of v) depth(item, level + 1);
    } else if (v !== null && typeof v === 'object') {
      for (const [key, item] of Object.entries(v)) {
        if (key.includes('\u0000')) throw badInput(field, 'must not contain NUL characters (\\u0000)');
        depth(item, level + 1);
      }
    }
  };
  depth(value, 0);
  if (Buffer.byteLength(JSON.stringify(value) ?? '') > MAX_JSON_BYTES) throw badInput(field, `must be at most ${MAX_JSON_BYTES / 1024} KB as JSON`);
}

/**
 * Checks (and for trainer text, cleans in place) `value` of `type`; `field` is its path
 * ("input.images.3.fileName") and `coordinate` the input field it sits in ("RunErrorInput.message").
 */
function checkValue(value: unknown, type: GraphQLInputType, field: string, coordinate: string | null): unknown {
  if (value == null) return value;
  if (isNonNullType(type)) return checkValue(value, type.ofType, field, coordinate);
  if (isListType(type)) {
    if (Array.isArray(value)) for (let i = 0; i < value.length; i++) value[i] = checkValue(value[i], type.ofType, `${field}.${i}`, coordinate);
    return value;
  }
  if (isInputObjectType(type)) {
    const object = value as Record<string, unknown>;
    for (const f of Object.values(type.getFields())) {
      if (f.name in object && holdsText(f.type)) object[f.name] = checkValue(object[f.name], f.type, `${field}.${f.name}`, `${type.name}.${f.name}`);
    }
    return value;
  }
  if (type.name === 'JSON') {
    checkJson(value, field);
    return value;
  }
  if (typeof value === 'string' && value.includes('\u0000')) {
    if (coordinate !== null && TRAINER_TEXT.has(coordinate)) return cleanTrainerText(value);
    throw badInput(field, 'must not contain NUL characters (\\u0000)');
  }
  return value;
}

function checkArgs(args: Record<string, unknown>, defs: readonly GraphQLArgument[]) {
  for (const def of defs) if (def.name in args) args[def.name] = checkValue(args[def.name], def.type, def.name, null);
}

/**
 * Wraps the resolver (and subscribe) of every field in `resolvers` that takes text or JSON, as the
 * field is typed in `schema`. Applied inside the permission guard: a caller without the right key
 * learns that first.
 */
export function guardInputValues(schema: GraphQLSchema, resolvers: Record<string, Record<string, unknown>>) {
  for (const [typeName, fields] of Object.entries(resolvers)) {
    const type = schema.getType(typeName);
    if (!type || !('getFields' in type) || isInputObjectType(type)) continue;
    const typeFields = type.getFields();
    for (const [fieldName, resolver] of Object.entries(fields)) {
      const args = typeFields[fieldName]?.args.filter((a) => holdsText(a.type)) ?? [];
      if (args.length === 0) continue;
      const guard = (inner: GraphQLFieldResolver<unknown, unknown>) => (parent: unknown, given: Record<string, unknown>, ctx: unknown, info: never) => {
        checkArgs(given, args);
        return inner(parent, given, ctx, info);
      };
      if (typeof resolver === 'function') fields[fieldName] = guard(resolver as GraphQLFieldResolver<unknown, unknown>);
      else if (resolver && typeof resolver === 'object' && 'subscribe' in resolver) {
        const sub = resolver as { subscribe: GraphQLFieldResolver<unknown, unknown> };
        fields[fieldName] = { ...sub, subscribe: guard(sub.subscribe) };
      }
    }
  }
  return resolvers;
}
