// Live run updates and run events: NOTIFY on write, one load per notification per process.
import type { Logger } from 'pino';
import type { Executor } from '../../db/client.js';
import { KeyedFeed } from '../../db/feed.js';
import { sql } from 'drizzle-orm';
import { Channels, notifyEach, notifyExpression, type Notifier } from '../../db/notify.js';
import { notFound } from '../../graphql/errors.js';
import { isId } from '../../graphql/ids.js';
import { LiveQueue } from '../../graphql/live-queue.js';
import { badInput } from '../../graphql/errors.js';
import { findEventsByIds, type RunEventRecord } from './events.store.js';
import { findRunsByIds, type RunRecord } from './runs.store.js';

export interface RunNote {
  runId: string;
  experimentId: string;
  status: string;
}

/** Tells subscribers that runs changed (status, progress, checkpoints, samples); sent after COMMIT. */
export const announceRunsChanged = (tx: Executor, runs: Pick<RunRecord, 'id' | 'experimentId' | 'status'>[]) =>
  notifyEach(
    tx,
    Channels.runChanged,
    runs.map((run) => ({ runId: run.id, experimentId: run.experimentId, status: run.status }) satisfies RunNote),
  );

export const announceRunChanged = (tx: Executor, run: Pick<RunRecord, 'id' | 'experimentId' | 'status'>) => announceRunsChanged(tx, [run]);

/** announceRunChanged inside a statement, for each row of `alias` (a CTE of runs rows). */
export const announceRunChangedExpression = (alias: string) =>
  notifyExpression(
    Channels.runChanged,
    sql`json_build_object('runId', ${sql.identifier(alias)}.id, 'experimentId', ${sql.identifier(alias)}.experiment_id, 'status', ${sql.identifier(alias)}.status)`,
  );

const experimentKey = (id: string) => `experiment:${id}`;

export function createRunFeed(db: Executor, notifier: Notifier, log: Logger) {
  return new KeyedFeed<RunNote, RunRecord>(
    notifier,
    Channels.runChanged,
    (note) => [note.runId, experimentKey(note.experimentId)],
    async (note) => (await findRunsByIds(db, [note.runId]))[0] ?? null,
    (err) => log.error({ err }, 'run feed failed'),
  );
}
export type RunFeed = ReturnType<typeof createRunFeed>;

export interface EventNote {
  events: [runId: string, eventId: number][];
}

export function createEventFeed(db: Executor, notifier: Notifier, log: Logger) {
  return new KeyedFeed<EventNote, RunEventRecord[]>(
    notifier,
    Channels.runEvent,
    (note) => [...new Set(note.events.map(([runId]) => runId))],
    async (note) => findEventsByIds(db, note.events.map(([, id]) => id)),
    (err) => log.error({ err }, 'event feed failed'),
  );
}
export type EventFeed = ReturnType<typeof createEventFeed>;

const MAX_PENDING = 1000;

/** runUpdated: one run, or every run of an experiment; a waiting subscriber keeps only a run's latest state. */
export async function subscribeRunUpdated(db: Executor, feed: RunFeed, args: { runId?: string | null; experimentId?: string | null }) {
  if (!args.runId === !args.experimentId) throw badInput(args.runId ? 'experimentId' : 'runId', 'give either runId or experimentId');
  const key = args.runId ? args.runId.toLowerCase() : experimentKey(args.experimentId!.toLowerCase());
  if (args.runId && (!isId(args.runId) || (await findRunsByIds(db, [args.runId])).length === 0)) throw notFound('runId', 'Run', args.runId);
  if (args.experimentId && !isId(args.experimentId)) throw notFound('experimentId', 'Experiment', args.experimentId);
  const queue: LiveQueue<RunRecord> = new LiveQueue<RunRecord>({
    maxPending: MAX_PENDING,
    coalesce: (pending, next) => (pending.id === next.id ? next : null),
    onClose: () => unsubscribe(),
  });
  const unsubscribe = await feed.subscribe(key, (run) => queue.push(run));
  return queue;
}

export async function subscribeRunEvents(db: Executor, feed: EventFeed, args: { runId: string }) {
  if (!isId(args.runId) || (await findRunsByIds(db, [args.runId])).length === 0) throw notFound('runId', 'Run', args.runId);
  const runId = args.runId.toLowerCase();
  const queue: LiveQueue<RunEventRecord> = new LiveQueue<RunEventRecord>({ maxPending: MAX_PENDING, onClose: () => unsubscribe() });
  const unsubscribe = await feed.subscribe(runId, (events) => {
    for (const e of events) if (e.runId === runId) queue.push(e);
  });
  return queue;
}
