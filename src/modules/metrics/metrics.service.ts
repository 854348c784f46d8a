import type { Database } from '../../db/client.js';
import { Channels } from '../../live/notify.js';
import type { LossNote } from '../../live/notes.js';
import { apiError, badInput, notFound } from '../../graphql/errors.js';
import { isId, parseId } from '../../graphql/ids.js';
import type { Principal } from '../keys/keys.service.js';
import { explainFencedMiss } from '../dispatch/dispatch.service.js';
import { findRunsByIds } from '../runs/runs.store.js';
import * as store from './metrics.store.js';
import type { LossBucket } from '../../graphql/generated/resolvers.js';
import { batchFacts, type LossColumns } from './loss-batch.js';
import { countLossPoints } from '../../telemetry/metrics.js';
import type { ServiceDeps } from '../service-deps.js';

export const MAX_POINTS_PER_REPORT = 5000;
export const MAX_CURVE_POINTS = 10_000;
/**
 * The largest loss (and learning rate) taken, either sign: float32's largest finite value. A
 * trainer computes loss in float32 or narrower (bf16's range is float32's), so anything larger is
 * not a loss it printed. The bound also keeps every aggregate of float8 sums (loss blocks, curve
 * means, the EMA) far from overflow: it would take 10^269 points.
 */
export const MAX_LOSS = 3.4028234663852886e38;

export interface LossPointOut {
  step: number;
  loss: number;
  lr: number | null;
  recordedAt: unknown;
}

/**
 * Writes a checked batch. A batch that only appends steps after the run's last one (nearly all of
 * them) is one statement; otherwise, and only then, a second round trip writes it by the general
 * path in one transaction (see metrics.store: appendLossBatch, recordLossBatch, afterLossBatch).
 */
async function record(db: Database, principal: Principal, runId: string, leaseToken: string, columns: LossColumns) {
  const fence = { runId, leaseToken, apiKeyId: principal.keyId };
  const missed = () => explainFencedMiss(db.orm, principal, runId, leaseToken, 'report loss for');
  if (columns.steps.length) {
    const append = store.appendedLoss(await db.prepared(store.appendLossBatch(fence, columns, batchFacts(columns))));
    if (append.appended) {
      await db.notifyAfterCommit(Channels.lossReported, append.note!);
      return { accepted: countLossPoints(columns.steps.length), duplicates: 0 };
    }
    if (!append.leaseHeld) return missed();
  }
  // A batch that rewrites or fills in steps (or an empty one, which still learns whether the lease holds).
  const [, recorded] = await db.batch([
    store.lockLossSummary(runId),
    store.recordLossBatch(fence, columns),
    ...store.afterLossBatch(runId),
  ]);
  const result = store.recordedLoss(recorded!);
  if (!result) return missed();
  const note = result.note ?? (result.written === 0 && columns.steps.length ? resentNote(runId, result.attempt, columns.steps) : null);
  if (note) await db.notifyAfterCommit(Channels.lossReported, note);
  return { accepted: countLossPoints(result.written), duplicates: columns.steps.length - result.written };
}

/**
 * The note for a batch sent again whose points were all recorded already: nearly always an agent
 * retrying a batch it got no answer for. Where that answer was lost because the server stopped
 * between the commit and the NOTIFY, no subscriber heard of those points, and an agent sends its
 * batches in order, so this one comes before the next. Subscribers drop whatever they already have
 * (their high-water mark), so a retry after a mere lost answer costs them nothing.
 */
function resentNote(runId: string, attempt: number, steps: number[]) {
  let from = steps[0]!;
  let to = from;
  for (const step of steps) {
    if (step < from) from = step;
    if (step > to) to = step;
  }
  const note: LossNote = { runId, attempt, from, to };
  return JSON.stringify(note);
}

function checkCount(n: number, field: string) {
  if (n > MAX_POINTS_PER_REPORT) {
    throw apiError('PAYLOAD_TOO_LARGE', `${field}: at most ${MAX_POINTS_PER_REPORT} per call, got ${n}`, { field });
  }
}

const OUT_OF_RANGE = `must be a finite number between -${MAX_LOSS} and ${MAX_LOSS} (float32's range, what a trainer prints)`;

/** The step of the first repeated step, or null. Steps usually arrive in order: checked in one pass then. */
function repeatedStep(steps: number[]) {
  let ascending = true;
  for (let i = 1; i < steps.length && ascending; i++) ascending = steps[i]! > steps[i - 1]!;
  if (ascending) return null;
  const seen = new Set<number>();
  for (const step of steps) {
    if (seen.has(step)) return step;
    seen.add(step);
  }
  return null;
}

/**
 * The rules GraphQL's types cannot state, for both input forms: `field(name, i)` names point i's
 * step, loss or lr as the client sent it, `batch` the whole list. The hot path of ingestion:
 * GraphQL has already checked the types (Int!, Float!), so a plain loop checks the rest instead of
 * a schema validator per point.
 */
function checkColumns(columns: LossColumns, field: (name: 'step' | 'loss' | 'lr', i: number) => string, batch: string) {
  const { steps, losses, lrs } = columns;
  for (let i = 0; i < steps.length; i++) {
    if (steps[i]! < 0) throw badInput(field('step', i), 'must be 0 or more');
    if (!(Math.abs(losses[i]!) <= MAX_LOSS)) throw badInput(field('loss', i), OUT_OF_RANGE);
    if (lrs[i] != null && !(Math.abs(lrs[i]!) <= MAX_LOSS)) throw badInput(field('lr', i), OUT_OF_RANGE);
  }
  const repeated = repeatedStep(steps);
  if (repeated != null) throw badInput(batch, `step ${repeated} appears twice in this batch`);
}

export async function reportLoss({ db }: ServiceDeps, principal: Principal, args: { runId: string; leaseToken: string; points: unknown[] }) {
  checkCount(args.points.length, 'points');
  const runId = parseId(args.runId, 'runId');
  const n = args.points.length;
  const columns: LossColumns = { steps: new Array(n), losses: new Array(n), lrs: new Array(n) };
  for (let i = 0; i < n; i++) {
    const p = args.points[i] as { step: number; loss: number; lr?: number | null };
    columns.steps[i] = p.step;
    columns.losses[i] = p.loss;
    columns.lrs[i] = p.lr ?? null;
  }
  checkColumns(columns, (name, i) => `points.${i}.${name}`, 'points');
  return record(db, principal, runId, args.leaseToken, columns);
}

const COLUMN_OF = { step: 'steps', loss: 'losses', lr: 'lrs' } as const;

/** reportLoss with the points as parallel lists (schema: reportLossColumns); the same checks. */
export async function reportLossColumns(
  { db }: ServiceDeps,
  principal: Principal,
  args: { runId: string; leaseToken: string; steps: number[]; losses: number[]; lrs?: (number | null | undefined)[] | null },
) {
  const { steps, losses } = args;
  checkCount(Math.max(steps.length, losses.length, args.lrs?.length ?? 0), 'steps');
  const runId = parseId(args.runId, 'runId');
  if (losses.length !== steps.length) {
    throw badInput(losses.length < steps.length ? 'losses' : 'steps', `steps and losses must be as long (${steps.length} and ${losses.length})`);
  }
  if (args.lrs != null && args.lrs.length !== steps.length) throw badInput('lrs', `must be as long as steps (${steps.length}), got ${args.lrs.length}`);
  const lrs: (number | null)[] = new Array(steps.length);
  for (let i = 0; i < steps.length; i++) lrs[i] = args.lrs?.[i] ?? null;
  const columns = { steps, losses, lrs };
  checkColumns(columns, (name, i) => `${COLUMN_OF[name]}.${i}`, 'steps');
  return record(db, principal, runId, args.leaseToken, columns);
}

export const toPoint = (r: store.LossPointRow & { attempt: number }) => ({ step: r.step, loss: r.loss, lr: r.lr, recordedAt: r.recorded_at, attempt: r.attempt });

export async function lossPoints({ db: { orm: db } }: ServiceDeps, runId: string, args: { afterStep?: number | null; first?: number | null }) {
  const first = args.first ?? 1000;
  if (first < 0 || first > MAX_CURVE_POINTS) throw badInput('first', `must be between 0 and ${MAX_CURVE_POINTS}`);
  return (await store.listLossPoints(db, runId, { afterStep: args.afterStep ?? -1, limit: first })).map(toPoint);
}

function checkCurveArgs(args: { maxPoints?: number | null; fromStep?: number | null; toStep?: number | null }) {
  const maxPoints = args.maxPoints ?? 1000;
  if (maxPoints < 1 || maxPoints > MAX_CURVE_POINTS) throw badInput('maxPoints', `must be between 1 and ${MAX_CURVE_POINTS}`);
  if (args.fromStep != null && args.fromStep < 0) throw badInput('fromStep', 'must be 0 or more');
  if (args.fromStep != null && args.toStep != null && args.toStep < args.fromStep) throw badInput('toStep', 'must not be below fromStep');
  return maxPoints;
}

/**
 * A run's curve. One statement when it can be served from loss blocks (long runs: the case that
 * must be fast), sent through db.prepared so that it is prepared once per connection and costs one
 * round trip, without the BEGIN and COMMIT of db.batch around it; otherwise a second one folds the
 * points.
 */
async function curveOf(
  db: Database,
  runId: string,
  args: { maxPoints: number; fromStep?: number | null; toStep?: number | null },
  fields: store.BucketFields,
): Promise<LossBucket[]> {
  const lo = args.fromStep ?? 0;
  const [found] = await db.prepared(store.curveFromBlocks(runId, { maxPoints: args.maxPoints, lo, toStep: args.toStep ?? null, fields }));
  const range = found as unknown as store.BlockCurveRow | undefined;
  if (!range) return [];
  if (range.blocks >= args.maxPoints) {
    return selectedOnly(store.bucketsFromParts(fields, range, lo, args.maxPoints));
  }
  const buckets: store.CurveBucket[] = [];
  for (const slice of curveSlices(db, { maxPoints: args.maxPoints, lo, hi: range.hi })) {
    buckets.push(...(await store.curveFromPoints(db.orm, runId, { maxPoints: args.maxPoints, lo, hi: range.hi, slice, fields })));
  }
  return selectedOnly(buckets);
}

/** Steps folded by one statement on PGlite (see curveSlices). */
const SLICE_STEPS = 2000;

/**
 * The step ranges a curve from points is folded in, each a whole number of its buckets. On
 * PostgreSQL, one: statements of other requests run beside it. PGlite runs one statement at a
 * time, inside the event loop: a curve of 10,000 buckets over 100,000 points in one statement
 * would hold every other request (and /healthz) for its whole length, so it goes in slices of
 * about SLICE_STEPS steps, and other requests' statements take their turns between them.
 */
function* curveSlices(db: Database, c: { maxPoints: number; lo: number; hi: number }) {
  const width = c.hi - c.lo + 1;
  if (db.kind !== 'pglite' || width <= SLICE_STEPS) {
    yield { from: c.lo, to: c.hi };
    return;
  }
  // Bucket b starts at the first step s with ⌊(s - lo) · maxPoints / width⌋ = b.
  const start = (bucket: number) => c.lo + Math.ceil((bucket * width) / c.maxPoints);
  const perSlice = Math.max(1, Math.floor((SLICE_STEPS * c.maxPoints) / width));
  for (let bucket = 0; bucket < c.maxPoints; bucket += perSlice) {
    const end = Math.min(c.maxPoints, bucket + perSlice);
    yield { from: start(bucket), to: end === c.maxPoints ? c.hi : start(end) - 1 };
  }
}

export async function lossCurve(
  { db }: ServiceDeps,
  runId: string,
  args: { maxPoints?: number | null; fromStep?: number | null; toStep?: number | null },
  selected?: ReadonlySet<string>,
) {
  const maxPoints = checkCurveArgs(args);
  return curveOf(db, runId, { ...args, maxPoints }, bucketFields(selected));
}

/** Buckets carry the fields their query selected, the only ones GraphQL reads of them. */
const selectedOnly = (buckets: store.CurveBucket[]) => buckets as LossBucket[];

/** The LossBucket fields a selection asks for; every one without a selection. */
const bucketFields = (selected: ReadonlySet<string> | undefined): store.BucketFields =>
  selected ? new Set(store.BUCKET_FIELDS.filter((f) => selected.has(f))) : store.ALL_BUCKET_FIELDS;

/** Several runs' curves in one request; each run's aggregate runs on its own (they run in parallel on PostgreSQL). */
export async function lossCurves({ db }: ServiceDeps, args: { runIds: string[]; maxPoints?: number | null }, selected?: ReadonlySet<string>) {
  const maxPoints = checkCurveArgs(args);
  if (args.runIds.length > 100) throw badInput('runIds', 'at most 100 runs at once');
  const ids = [...new Set(args.runIds.map((id, i) => parseId(id, `runIds.${i}`)))];
  const runs = await findRunsByIds(db.orm, ids);
  const found = new Map(runs.map((r) => [r.id, r]));
  const present = ids.filter((id) => found.has(id));
  const fields = bucketFields(selected);
  const curves = await Promise.all(present.map((id) => curveOf(db, id, { maxPoints }, fields)));
  return present.map((id, i) => ({ run: found.get(id)!, buckets: curves[i]! }));
}
