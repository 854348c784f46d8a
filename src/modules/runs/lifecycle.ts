// A run's statuses and every move between them, named once. The sets below are what the rest of
// the code tests a status against (in TypeScript, and in SQL through the fragments made from them);
// TRANSITIONS is the table the stores' statements implement and test/run-lifecycle.test.ts walks
// through the API, one row at a time.
//
//   QUEUED ─claim→ CLAIMED ─start→ RUNNING ─complete→ SUCCEEDED | FAILED | CANCELLED
//     │              │  └───────────cancel──┴→ CANCELLING ─complete / lease expired→ CANCELLED
//     └─cancel→ CANCELLED        lease expired (attempts left) → QUEUED, (none left) → FAILED
//   FAILED | CANCELLED ─retry→ QUEUED
import { sql, type SQL } from 'drizzle-orm';

export const RUN_STATUSES = ['QUEUED', 'CLAIMED', 'RUNNING', 'CANCELLING', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Held by an agent under a lease: the lease fence accepts writes only for these. */
export const HELD_STATUSES = ['CLAIMED', 'RUNNING', 'CANCELLING'] as const satisfies readonly RunStatus[];
/** Not finished yet: queued or held. */
export const ACTIVE_STATUSES = ['QUEUED', ...HELD_STATUSES] as const satisfies readonly RunStatus[];
/** Final until someone retries the run; also the outcomes an agent reports. */
export const FINISHED_STATUSES = ['SUCCEEDED', 'FAILED', 'CANCELLED'] as const satisfies readonly RunStatus[];
export type RunOutcome = (typeof FINISHED_STATUSES)[number];

export const isHeld = (status: string) => (HELD_STATUSES as readonly string[]).includes(status);
export const isActive = (status: string) => (ACTIVE_STATUSES as readonly string[]).includes(status);
export const isFinished = (status: string): status is RunOutcome => (FINISHED_STATUSES as readonly string[]).includes(status);

export type RunEventName = 'claim' | 'releaseClaim' | 'start' | 'complete' | 'cancel' | 'retry' | 'leaseExpired';

export interface Transition {
  on: RunEventName;
  from: RunStatus;
  to: RunStatus;
  /** When the move also depends on something besides the status. */
  when?: string;
}

const each = (on: RunEventName, from: readonly RunStatus[], to: RunStatus, when?: string): Transition[] =>
  from.map((f) => ({ on, from: f, to, ...(when ? { when } : {}) }));

export const TRANSITIONS: readonly Transition[] = [
  ...each('claim', ['QUEUED'], 'CLAIMED', 'the agent has room and its labels fit, backoff over'),
  ...each('releaseClaim', ['CLAIMED'], 'QUEUED', 'the long poll that claimed it lost its client before answering'),
  ...each('start', ['CLAIMED'], 'RUNNING'),
  // The agent reports how its trainer ended, whatever it held the run as.
  ...FINISHED_STATUSES.flatMap((outcome) => each('complete', HELD_STATUSES, outcome, `outcome ${outcome}`)),
  ...each('cancel', ['QUEUED'], 'CANCELLED'),
  ...each('cancel', ['CLAIMED', 'RUNNING'], 'CANCELLING', 'delivered on the next heartbeat'),
  ...each('retry', ['FAILED', 'CANCELLED'], 'QUEUED', 'with a new attempt budget'),
  ...each('leaseExpired', ['CLAIMED', 'RUNNING'], 'QUEUED', 'attempts left; claimable after a backoff'),
  ...each('leaseExpired', ['CLAIMED', 'RUNNING'], 'FAILED', 'no attempts left (LEASE_EXPIRED)'),
  ...each('leaseExpired', ['CANCELLING'], 'CANCELLED'),
];

/** The statuses an event moves a run out of. */
export const sourcesOf = (on: RunEventName) => [...new Set(TRANSITIONS.filter((t) => t.on === on).map((t) => t.from))];

/** `('A', 'B')`: a set as SQL, for `status in …`. Statuses are constants, never input. */
export const sqlSet = (statuses: readonly RunStatus[]): SQL => sql.raw(`(${statuses.map((s) => `'${s}'`).join(', ')})`);

/** A status column's next value under an event whose target depends only on the current status. */
export function sqlNextStatus(on: RunEventName, column = 'status'): SQL {
  const moves = TRANSITIONS.filter((t) => t.on === on);
  if (new Set(moves.map((t) => t.from)).size !== moves.length) throw new Error(`${on}: the target depends on more than the status`);
  return sql.raw(`case ${column} ${moves.map((t) => `when '${t.from}' then '${t.to}'`).join(' ')} end`);
}

export const HELD_SQL = sqlSet(HELD_STATUSES);
export const FINISHED_SQL = sqlSet(FINISHED_STATUSES);
