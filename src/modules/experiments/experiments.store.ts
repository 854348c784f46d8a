import { and, count, desc, eq, ilike, inArray, lt, or, sql, type SQL } from 'drizzle-orm';
import { experiments } from '../../db/schema.js';
import type { Executor } from '../../db/client.js';

export type ExperimentRecord = typeof experiments.$inferSelect & { cursorTs?: string };

export async function insertExperiment(db: Executor, values: typeof experiments.$inferInsert) {
  const [row] = await db.insert(experiments).values(values).returning();
  return row!;
}

export function findExperimentsByIds(db: Executor, ids: readonly string[]) {
  return db.select().from(experiments).where(inArray(experiments.id, [...ids]));
}

const searchCondition = (search: string | undefined) =>
  search ? ilike(experiments.name, `%${search.replace(/[\\%_]/g, '\\$&')}%`) : undefined;

/** Newest first; `after` is the (created_at as text, id) of the last row seen. */
export function listExperiments(db: Executor, opts: { limit: number; after: [string, string] | null; search?: string }) {
  let keyset: SQL | undefined;
  if (opts.after) {
    const [ts, id] = opts.after;
    keyset = or(lt(experiments.createdAt, sql`${ts}::timestamptz`), and(eq(experiments.createdAt, sql`${ts}::timestamptz`), lt(experiments.id, id)));
  }
  return db
    .select({ ...cols, cursorTs: sql<string>`${experiments.createdAt}::text` })
    .from(experiments)
    .where(and(searchCondition(opts.search), keyset))
    .orderBy(desc(experiments.createdAt), desc(experiments.id))
    .limit(opts.limit);
}

export async function countExperiments(db: Executor, search?: string) {
  const [row] = await db.select({ n: count() }).from(experiments).where(searchCondition(search));
  return row!.n;
}

const cols = {
  id: experiments.id,
  name: experiments.name,
  goal: experiments.goal,
  description: experiments.description,
  tags: experiments.tags,
  createdAt: experiments.createdAt,
};
