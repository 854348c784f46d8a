// What each channel's NOTIFY carries, named once. A note is small (ids, step ranges, at most a few
// thousand bytes of points) and is JSON text; the writer builds it (in TypeScript or, on the hot
// paths, in SQL inside the writing statement) and each process's feed reads it back.

/**
 * PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more; every note stays at or below this,
 * which leaves room to spare.
 */
export const MAX_NOTE_BYTES = 7900;

/** runQueued: runs were queued (or requeued); waiting claimRun long polls try again. */
export interface RunQueuedNote {
  count: number;
}

/** runChanged: a run's status, progress, checkpoints or samples changed. */
export interface RunNote {
  runId: string;
  experimentId: string;
  status: string;
}

/** runEvent: events were appended, as [runId, eventId] pairs. */
export interface EventNote {
  events: [runId: string, eventId: number][];
}

/**
 * lossReported: which attempt wrote which steps, and for a small batch the points themselves
 * ([step, loss, lr]) with the time they were recorded.
 */
export interface LossNote {
  runId: string;
  attempt: number;
  from: number;
  to: number;
  at?: string;
  points?: [step: number, loss: number, lr: number | null][] | null;
}

/** keyRevoked: every process forgets the key at once. */
export interface KeyRevokedNote {
  keyId: string;
}
