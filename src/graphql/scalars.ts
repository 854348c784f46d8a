import { GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { badInput } from './errors.js';

export const DateTime: GraphQLScalarType<Date, string> = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  description: 'ISO-8601 date and time',
  serialize: (value) => toDate(value).toISOString(),
  parseValue(value) {
    const date = new Date(String(value));
    if (Number.isNaN(date.getTime())) throw badInput('DateTime', `not an ISO-8601 time: ${String(value)}`);
    return date;
  },
  parseLiteral(ast): Date {
    if (ast.kind !== Kind.STRING) throw badInput('DateTime', 'must be a string');
    return DateTime.parseValue(ast.value) as Date;
  },
});

function literalToJson(ast: ValueNode, variables?: Record<string, unknown> | null): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map((v) => literalToJson(v, variables));
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((f) => [f.name.value, literalToJson(f.value, variables)]));
    case Kind.VARIABLE:
      return variables?.[ast.name.value];
    default:
      return undefined;
  }
}

export const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  description: 'Any JSON value',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: literalToJson,
});

/**
 * Timestamps from raw SQL arrive as Date (PGlite) or as Postgres text (postgres.js, whose date
 * parsers drizzle replaces), e.g. "2026-11-27 12:00:00.123+00".
 */
export function toDate(value: unknown): Date {
  if (value instanceof Date) return value;
  const text = String(value);
  const iso = text.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00');
  return new Date(iso);
}
