import { and, asc, desc, eq, gt, inArray, sql, type SQL } from 'drizzle-orm';
import { runEvents } from '../../db/schema.js';
import { rows, type Executor } from '../../db/client.js';
import { announceEvents } from '../../live/run-feeds.js';

export type RunEventRecord = typeof runEvents.$inferSelect;

export interface NewRunEvent {
  runId: string;
  type: string;
  message?: string | null;
  data?: unknown;
}

/** Appends events and announces them (delivered after COMMIT). */
export async function appendEvents(db: Executor, events: NewRunEvent[]) {
  if (events.length === 0) return;
  const inserted = await db
    .insert(runEvents)
    .values(events.map((e) => ({ runId: e.runId, type: e.type, message: e.message ?? null, data: e.data ?? null })))
    .returning({ id: runEvents.id, runId: runEvents.runId });
  await announceEvents(db, inserted);
}

/**
 * appendEvents inside a statement: `select <events>` is a query yielding (run_id, type, message,
 * data) rows. Reference the returned name as a CTE of the inserted rows, and put
 * announceEventsExpression(name) in the statement's result so the NOTIFY runs.
 */
export const insertEventsCte = (name: string, events: SQL) =>
  sql`${sql.identifier(name)} as (insert into run_events (run_id, type, message, data) ${events} returning id, run_id)`;

export function listEvents(db: Executor, runId: string, first: number) {
  return db.select().from(runEvents).where(eq(runEvents.runId, runId)).orderBy(desc(runEvents.id)).limit(first);
}

/** The id of the run's last event (null when it has none); undefined when the run does not exist. */
export async function lastEventOf(db: Executor, runId: string): Promise<number | null | undefined> {
  const [row] = await rows<{ last: string | number | null }>(
    db,
    sql`/* lastEventOf */ select (select max(id) from run_events where run_id = r.id) as last from runs r where r.id = ${runId}`,
  );
  return row === undefined ? undefined : row.last === null ? null : Number(row.last);
}

export function listEventsAfter(db: Executor, runId: string, afterId: number, limit: number) {
  return db
    .select()
    .from(runEvents)
    .where(and(eq(runEvents.runId, runId), gt(runEvents.id, afterId)))
    .orderBy(asc(runEvents.id))
    .limit(limit);
}

export function findEventsByIds(db: Executor, ids: number[]) {
  return db.select().from(runEvents).where(inArray(runEvents.id, ids)).orderBy(asc(runEvents.id));
}
