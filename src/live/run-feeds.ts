// Live run updates and run events: NOTIFY on write, one load per notification per process.
import type { Logger } from 'pino';
import type { Executor } from '../db/client.js';
import { KeyedFeed } from './feed.js';
import { sql } from 'drizzle-orm';
import { Channels, notifyEach, notifyExpression, type Notifier } from './notify.js';
import { badInput, notFound } from '../graphql/errors.js';
import { isId } from '../graphql/ids.js';
import { LiveQueue } from './live-queue.js';
import type { EventNote, RunNote } from './notes.js';
import { CatchUp } from './catch-up.js';
import { findEventsByIds, lastEventOf, listEventsAfter, type RunEventRecord } from '../modules/runs/events.store.js';
import { findRunsByIds, findRunsOfExperiment, type RunRecord } from '../modules/runs/runs.store.js';


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

/**
 * Events per note: an event is about 60 bytes of JSON (a quoted uuid and an id), so a full note
 * stays under MAX_NOTE_BYTES.
 */
const EVENTS_PER_NOTE = 100;

/** Tells subscribers that events were appended: one statement, one NOTIFY per EVENTS_PER_NOTE events. */
export async function announceEvents(tx: Executor, events: { runId: string; id: number }[]) {
  const notes: EventNote[] = [];
  for (let i = 0; i < events.length; i += EVENTS_PER_NOTE) notes.push({ events: events.slice(i, i + EVENTS_PER_NOTE).map((e) => [e.runId, e.id]) });
  await notifyEach(tx, Channels.runEvent, notes);
}

/** The NOTIFY for the events inserted by insertEventsCte(name) (events.store); null when it inserted none. */
export const announceEventsExpression = (name: string) =>
  sql`(select ${notifyExpression(Channels.runEvent, sql`json_build_object('events', json_agg(json_build_array(e.run_id, e.id)))`)}
       from ${sql.identifier(name)} e having count(*) > 0)`;

const experimentKey = (id: string) => `experiment:${id}`;

/**
 * A run as read at one moment. `seq` numbers the reads in the order they were started, so that a
 * subscriber never replaces a newer read of a run with an older one (a live load and a catch-up
 * can finish in either order). The last change to a run is always followed by a read started
 * after it: its own notification's, or the catch-up's when that notification was lost.
 */
export interface RunRead {
  run: RunRecord;
  seq: number;
}
let reads = 0;
const nextRead = () => ++reads;

export function createRunFeed(db: Executor, notifier: Notifier, log: Logger) {
  return new KeyedFeed<typeof Channels.runChanged, RunRead>(
    notifier,
    Channels.runChanged,
    (note) => [note.runId, experimentKey(note.experimentId)],
    async (note) => {
      const seq = nextRead();
      const [run] = await findRunsByIds(db, [note.runId]);
      return run ? { run, seq } : null;
    },
    (err) => log.error({ err }, 'run feed failed'),
  );
}
export type RunFeed = ReturnType<typeof createRunFeed>;

export function createEventFeed(db: Executor, notifier: Notifier, log: Logger) {
  return new KeyedFeed<typeof Channels.runEvent, RunEventRecord[]>(
    notifier,
    Channels.runEvent,
    (note) => [...new Set(note.events.map(([runId]) => runId))],
    async (note) => findEventsByIds(db, note.events.map(([, id]) => id)),
    (err) => log.error({ err }, 'event feed failed'),
  );
}
export type EventFeed = ReturnType<typeof createEventFeed>;

const MAX_PENDING = 1000;
/** Runs read per query when an experiment's subscribers catch up. */
const CATCH_UP_PAGE = 200;

/**
 * runUpdated: one run, or every run of an experiment; a waiting subscriber keeps only a run's latest
 * state. Catching up after lost notifications sends the current state of every run it watches.
 */
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
  const newest = new Map<string, number>();
  const deliver = ({ run, seq }: RunRead) => {
    if (seq <= (newest.get(run.id) ?? 0)) return;
    newest.set(run.id, seq);
    queue.push(run);
  };
  const catchUp = new CatchUp<RunRead>({
    async replay() {
      if (args.runId) {
        const seq = nextRead();
        const [run] = await findRunsByIds(db, [key]);
        if (run) deliver({ run, seq });
        return;
      }
      for (let after: string | null = null; ; ) {
        if (!(await queue.roomFor(MAX_PENDING / 2))) return;
        const seq = nextRead();
        const page = await findRunsOfExperiment(db, args.experimentId!.toLowerCase(), { after, limit: CATCH_UP_PAGE });
        for (const run of page) deliver({ run, seq });
        if (page.length < CATCH_UP_PAGE) return;
        after = page.at(-1)!.id;
      }
    },
    deliver,
    fail: (error) => queue.fail(error),
    maxHeld: MAX_PENDING,
    ended: () => queue.ended,
  });
  const unsubscribe = await feed.subscribe(key, { deliver: (read) => catchUp.live(read), catchUp: () => catchUp.start() });
  return queue;
}

/**
 * runEvents: live from the subscription on. Each run's events are written under its row's lock,
 * so their ids grow in the order they commit, and the last id delivered is the subscriber's mark.
 */
export async function subscribeRunEvents(db: Executor, feed: EventFeed, args: { runId: string }) {
  const last = isId(args.runId) ? await lastEventOf(db, args.runId) : undefined;
  if (last === undefined) throw notFound('runId', 'Run', args.runId);
  const runId = args.runId.toLowerCase();
  let mark = last ?? 0;
  const queue: LiveQueue<RunEventRecord> = new LiveQueue<RunEventRecord>({ maxPending: MAX_PENDING, onClose: () => unsubscribe() });
  const deliver = (events: RunEventRecord[]) => {
    for (const e of events) {
      if (e.runId !== runId || e.id <= mark) continue;
      mark = e.id;
      queue.push(e);
    }
  };
  const catchUp = new CatchUp<RunEventRecord[]>({
    async replay() {
      for (;;) {
        if (!(await queue.roomFor(MAX_PENDING / 2))) return;
        const page = await listEventsAfter(db, runId, mark, CATCH_UP_PAGE);
        deliver(page);
        if (page.length < CATCH_UP_PAGE) return;
      }
    },
    deliver,
    fail: (error) => queue.fail(error),
    maxHeld: MAX_PENDING,
    ended: () => queue.ended,
  });
  const unsubscribe = await feed.subscribe(runId, { deliver: (events) => catchUp.live(events), catchUp: () => catchUp.start() });
  return queue;
}
