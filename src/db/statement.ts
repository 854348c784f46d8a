// Hot statements whose SQL text is built once per process, not on every call.
import { is, Placeholder, sql, SQL } from 'drizzle-orm';
import type { PgDialect } from 'drizzle-orm/pg-core';

/** A statement with its values, for Database.prepared and Database.batch. */
export interface BoundStatement {
  /** The statement as drizzle builds it from the values (PGlite runs this). */
  sql(): SQL;
  /** The SQL text, built once per statement, and this call's parameters in its order. */
  query(dialect: PgDialect): { sql: string; params: unknown[] };
}

export type Statement = SQL | BoundStatement;

export const isBound = (statement: Statement): statement is BoundStatement => !is(statement, SQL);

/**
 * compile(build) for a statement whose text does not depend on its values: `build` only places
 * each value in a sql`` template as a parameter (no JavaScript decisions on them, no arrays, which
 * drizzle would expand into lists). The text is built once, with a placeholder per value, and each
 * call only lays its values into the parameter list. drizzle otherwise rebuilds and walks the
 * whole template on every call: about 8 % of the server's CPU on the claim path, for CTEs of a
 * few hundred chunks.
 */
export function compile<Values extends object>(build: (values: Values) => SQL) {
  let compiled: { sql: string; params: unknown[]; slots: (string | null)[] } | undefined;
  const placeholders = new Proxy({}, { get: (_, name) => sql.placeholder(String(name)) }) as Values;
  return (values: Values): BoundStatement => ({
    sql: () => build(values),
    query(dialect) {
      if (!compiled) {
        const query = dialect.sqlToQuery(build(placeholders));
        compiled = { sql: query.sql, params: query.params, slots: query.params.map((p) => (is(p, Placeholder) ? p.name : null)) };
      }
      const { params, slots } = compiled;
      return { sql: compiled.sql, params: slots.map((name, i) => (name === null ? params[i] : ((values as Record<string, unknown>)[name] ?? null))) };
    },
  });
}
