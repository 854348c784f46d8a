// Raw SQL (CTEs, SKIP LOCKED, unnest) returns snake_case rows with driver-specific values; this maps
// them through drizzle's own column decoders into the same records the query builder returns.
import { getTableColumns, type Table } from 'drizzle-orm';

export function mapRow<T extends Table>(table: T, raw: Record<string, unknown>): T['$inferSelect'] {
  const out: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(getTableColumns(table))) {
    const value = raw[column.name];
    out[key] = value == null ? null : column.mapFromDriverValue(value);
  }
  return out as T['$inferSelect'];
}
