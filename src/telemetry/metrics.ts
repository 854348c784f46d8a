// The server's Prometheus series that count events as they happen. They live in one registry per
// process (like prom-client's default one): the code that sees an event calls one function here,
// whichever server instance it belongs to. Gauges read from the database are collected per server
// at scrape time instead (collectors.ts), so that nothing polls the database between scrapes.
import { Counter, Histogram, Registry } from 'prom-client';

export const eventRegistry = new Registry();

/** Latency buckets (seconds) from a fast claim (ms) to a long poll or a large compare (tens of s). */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export const httpDuration = new Histogram({
  name: 'loralab_http_request_duration_seconds',
  help: 'HTTP requests by route (a fixed set: graphql, healthz, metrics, artifacts, web) and status code',
  labelNames: ['route', 'method', 'code'] as const,
  buckets: DURATION_BUCKETS,
  registers: [eventRegistry],
});

export const graphqlDuration = new Histogram({
  name: 'loralab_graphql_request_duration_seconds',
  help: 'GraphQL operations over HTTP by operation name (long polls included: claimRun with waitSeconds waits here)',
  labelNames: ['operation'] as const,
  buckets: DURATION_BUCKETS,
  registers: [eventRegistry],
});

export const graphqlErrors = new Counter({
  name: 'loralab_graphql_errors_total',
  help: 'Errors answered to clients (HTTP and WebSocket) by extensions.code',
  labelNames: ['code'] as const,
  registers: [eventRegistry],
});

export const reaperActions = new Counter({
  name: 'loralab_reaper_actions_total',
  help: 'Runs the reaper moved after their lease expired, by what became of them (requeued, failed, cancelled)',
  labelNames: ['action'] as const,
  registers: [eventRegistry],
});

export const lossPointsIngested = new Counter({
  name: 'loralab_loss_points_ingested_total',
  help: 'Loss points written by reportLoss (duplicates of a retried batch not counted)',
  registers: [eventRegistry],
});

export const artifactBytes = new Counter({
  name: 'loralab_artifact_bytes_total',
  help: 'Artifact bytes in (verified by completeUpload, either store) and out (served by the embedded file store; an S3 store serves its own)',
  labelNames: ['direction'] as const,
  registers: [eventRegistry],
});

export const artifactVerifications = new Counter({
  name: 'loralab_artifact_verifications_total',
  help: 'Uploads whose sha256 completeUpload checked: as the bytes arrived (embedded store, every part received by this process) or by reading the object back',
  labelNames: ['how'] as const,
  registers: [eventRegistry],
});

export const liveLag = new Histogram({
  name: 'loralab_live_lag_seconds',
  help: 'Loss reports from the writing transaction (NOTIFY) to delivery to this process\'s subscribers',
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [eventRegistry],
});

// Label values stay a bounded set: an operation name is the client's to choose.
const MAX_OPERATION_NAMES = 200;
const OPERATION_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,63}$/;
const seenOperations = new Set<string>();

/** The `operation` label for a client's operation name: anonymous, the name, or other past the cap. */
export function operationLabel(name: string | null | undefined) {
  if (!name) return 'anonymous';
  if (!OPERATION_NAME.test(name)) return 'other';
  if (seenOperations.has(name)) return name;
  if (seenOperations.size >= MAX_OPERATION_NAMES) return 'other';
  seenOperations.add(name);
  return name;
}

/** Counts one error the client is answered with; returns it unchanged. */
export function countError<E extends { extensions?: { code?: unknown } }>(error: E): E {
  const code = error.extensions?.code;
  graphqlErrors.inc({ code: typeof code === 'string' ? code : 'UNKNOWN' });
  return error;
}

/** The reaper's sweep: each run's new status says what was done to it. */
export function countReaped(reaped: { status: string }[]) {
  for (const r of reaped) reaperActions.inc({ action: r.status === 'QUEUED' ? 'requeued' : r.status === 'FAILED' ? 'failed' : 'cancelled' });
}

/** Counts points written; returns the count. */
export function countLossPoints(n: number) {
  if (n > 0) lossPointsIngested.inc(n);
  return n;
}

export const countArtifactBytes = (direction: 'in' | 'out', bytes: number) => {
  if (bytes > 0) artifactBytes.inc({ direction }, bytes);
};

export const countArtifactVerification = (how: 'as_received' | 'read_back') => artifactVerifications.inc({ how });

/**
 * The loss feed's loader, timing each notification from its writing transaction's time (the
 * NOTIFY's `at`) to the moment its batch is ready, which the feed hands to subscribers at once.
 */
export function observeLiveLag<Note extends { at?: string }, Data>(load: (note: Note) => Promise<Data>) {
  return async (note: Note) => {
    const data = await load(note);
    const sent = note.at ? Date.parse(note.at) : NaN;
    if (Number.isFinite(sent)) liveLag.observe(Math.max(0, (Date.now() - sent) / 1000));
    return data;
  };
}
