import { and, asc, count, desc, eq, gt, gte, ilike, inArray, isNull, lte, or, sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import { runs, runSummaries, sweeps } from '../../db/schema.js';
import { rows, type Executor } from '../../db/client.js';
import { runInScope, type ReadScope } from '../agents/read-scope.js';
import type { Hyperparameters } from './hyperparameters.js';

export type RunRecord = typeof runs.$inferSelect;
export type SweepRecord = typeof sweeps.$inferSelect;
export type RunSummaryRecord = typeof runSummaries.$inferSelect;
export type NewRun = typeof runs.$inferInsert;

/**
 * A run's hyperparameters, and the ones lists filter and sort by copied into their own columns:
 * whoever writes a run's hyperparameters writes these together.
 */
export const hyperparameterColumns = (hp: Hyperparameters) => ({
  hyperparameters: hp,
  baseModel: hp.baseModel,
  rank: hp.rank,
  alpha: hp.alpha,
  learningRate: hp.learningRate,
  steps: hp.steps,
  batchSize: hp.batchSize,
  optimizer: hp.optimizer,
});

export type RunOrderField =
  | 'QUEUED_AT'
  | 'FINISHED_AT'
  | 'MIN_LOSS'
  | 'LAST_LOSS'
  | 'EMA_LOSS'
  | 'BEST_RATING'
  | 'RANK'
  | 'LEARNING_RATE'
  | 'STEPS'
  | 'PRIORITY'
  | 'COST_USD';

export interface NumberCondition {
  eq?: number | null;
  in?: number[] | null;
  gte?: number | null;
  lte?: number | null;
}

export interface RunConditions {
  ids?: string[];
  agentId?: string;
  experimentId?: string;
  datasetId?: string;
  captionStrategyId?: string;
  captionStrategyIds?: string[];
  sweepId?: string;
  status?: RunRecord['status'][];
  rank?: NumberCondition;
  alpha?: NumberCondition;
  learningRate?: NumberCondition;
  steps?: NumberCondition;
  batchSize?: NumberCondition;
  priority?: NumberCondition;
  optimizer?: string[];
  baseModel?: string[];
  tags?: string[];
  search?: string;
  /** Only the runs this key may read. */
  readScope?: ReadScope;
}

/** Sort expressions; timestamps travel in cursors as text so their microseconds survive. */
const orderColumns: Record<RunOrderField, { expr: SQLWrapper; cursor: SQL; needsSummary?: boolean }> = {
  QUEUED_AT: { expr: runs.queuedAt, cursor: sql`${runs.queuedAt}::text` },
  FINISHED_AT: { expr: runs.finishedAt, cursor: sql`${runs.finishedAt}::text` },
  MIN_LOSS: { expr: runSummaries.minLoss, cursor: sql`${runSummaries.minLoss}`, needsSummary: true },
  LAST_LOSS: { expr: runSummaries.lastLoss, cursor: sql`${runSummaries.lastLoss}`, needsSummary: true },
  EMA_LOSS: { expr: runSummaries.emaLoss, cursor: sql`${runSummaries.emaLoss}`, needsSummary: true },
  BEST_RATING: { expr: runSummaries.bestMeanRating, cursor: sql`${runSummaries.bestMeanRating}`, needsSummary: true },
  RANK: { expr: runs.rank, cursor: sql`${runs.rank}` },
  LEARNING_RATE: { expr: runs.learningRate, cursor: sql`${runs.learningRate}` },
  STEPS: { expr: runs.steps, cursor: sql`${runs.steps}` },
  PRIORITY: { expr: runs.priority, cursor: sql`${runs.priority}` },
  COST_USD: { expr: runs.costUsd, cursor: sql`${runs.costUsd}` },
};

function numberCondition(column: SQLWrapper, c: NumberCondition | undefined): SQL | undefined {
  if (!c) return undefined;
  return and(
    c.eq != null ? sql`${column} = ${c.eq}` : undefined,
    c.in != null ? (c.in.length ? sql`${column} = any(${sql.param(c.in)}::float8[])` : sql`false`) : undefined,
    c.gte != null ? gte(column as never, c.gte) : undefined,
    c.lte != null ? lte(column as never, c.lte) : undefined,
  );
}

export function runWhere(f: RunConditions): SQL | undefined {
  return and(
    f.ids ? (f.ids.length ? inArray(runs.id, f.ids) : sql`false`) : undefined,
    f.agentId ? eq(runs.agentId, f.agentId) : undefined,
    f.experimentId ? eq(runs.experimentId, f.experimentId) : undefined,
    f.datasetId ? eq(runs.datasetId, f.datasetId) : undefined,
    f.captionStrategyId ? eq(runs.captionStrategyId, f.captionStrategyId) : undefined,
    f.captionStrategyIds ? (f.captionStrategyIds.length ? inArray(runs.captionStrategyId, f.captionStrategyIds) : sql`false`) : undefined,
    f.sweepId ? eq(runs.sweepId, f.sweepId) : undefined,
    f.status ? (f.status.length ? inArray(runs.status, f.status) : sql`false`) : undefined,
    numberCondition(runs.rank, f.rank),
    numberCondition(runs.alpha, f.alpha),
    numberCondition(runs.learningRate, f.learningRate),
    numberCondition(runs.steps, f.steps),
    numberCondition(runs.batchSize, f.batchSize),
    numberCondition(runs.priority, f.priority),
    f.optimizer ? inArray(runs.optimizer, f.optimizer) : undefined,
    f.baseModel ? inArray(runs.baseModel, f.baseModel) : undefined,
    f.tags?.length ? sql`${runs.tags} @> ${sql.param(f.tags)}::text[]` : undefined,
    f.search ? ilike(runs.name, `%${f.search.replace(/[\\%_]/g, '\\$&')}%`) : undefined,
    runInScope(f.readScope ?? null, runs.agentId),
  );
}

/**
 * One page of runs in any order, nulls last, ties broken by id. `after` is the cursor key
 * [sort value, id] of the last row seen: the keyset condition below continues right after it.
 */
export function listRuns(
  db: Executor,
  opts: { where: RunConditions; order: RunOrderField; direction: 'ASC' | 'DESC'; limit: number; after: [unknown, string] | null },
) {
  const column = orderColumns[opts.order];
  let keyset: SQL | undefined;
  if (opts.after) {
    const [value, id] = opts.after;
    const beyond = opts.direction === 'ASC' ? sql`${column.expr} > ${value}` : sql`${column.expr} < ${value}`;
    keyset =
      value == null
        ? and(isNull(column.expr as never), sql`${runs.id} > ${id}`)
        : or(beyond, and(sql`${column.expr} = ${value}`, sql`${runs.id} > ${id}`), isNull(column.expr as never));
  }
  const query = db
    .select({ run: runs, sortKey: sql<unknown>`${column.cursor}`.as('sort_key') })
    .from(runs)
    .$dynamic();
  if (column.needsSummary) query.leftJoin(runSummaries, eq(runSummaries.runId, runs.id));
  return query
    .where(and(runWhere(opts.where), keyset))
    .orderBy(
      opts.direction === 'ASC' ? sql`${column.expr} asc nulls last` : sql`${column.expr} desc nulls last`,
      asc(runs.id),
    )
    .limit(opts.limit);
}

export async function countRuns(db: Executor, where: RunConditions) {
  const [row] = await db.select({ n: count() }).from(runs).where(runWhere(where));
  return row!.n;
}

export function findRunsByIds(db: Executor, ids: readonly string[], readScope: ReadScope = null) {
  return db.select().from(runs).where(and(inArray(runs.id, [...ids]), runInScope(readScope, runs.agentId)));
}

/** An experiment's runs in id order, a page at a time (after: the last id of the page before). */
export function findRunsOfExperiment(db: Executor, experimentId: string, page: { after: string | null; limit: number }) {
  return db
    .select()
    .from(runs)
    .where(and(eq(runs.experimentId, experimentId), page.after ? gt(runs.id, page.after) : undefined))
    .orderBy(asc(runs.id))
    .limit(page.limit);
}

export function findRunsByIdempotencyKeys(db: Executor, keys: string[]) {
  return db.select().from(runs).where(inArray(runs.idempotencyKey, keys));
}

/**
 * Inserts runs with their (empty) summaries. Runs whose idempotency key already exists are skipped
 * and left out of the result; the caller then reads them back by key.
 */
export async function insertRuns(db: Executor, values: NewRun[]) {
  const inserted = await db.insert(runs).values(values).onConflictDoNothing({ target: runs.idempotencyKey }).returning();
  if (inserted.length) await db.insert(runSummaries).values(inserted.map((r) => ({ runId: r.id })));
  return inserted;
}

export async function insertSweep(db: Executor, values: typeof sweeps.$inferInsert) {
  const [row] = await db.insert(sweeps).values(values).returning();
  return row!;
}

export function findSweepsByIds(db: Executor, ids: readonly string[]) {
  return db.select().from(sweeps).where(inArray(sweeps.id, [...ids]));
}

export function findSweepsByExperiments(db: Executor, experimentIds: readonly string[]) {
  return db
    .select()
    .from(sweeps)
    .where(inArray(sweeps.experimentId, [...experimentIds]))
    .orderBy(desc(sweeps.createdAt), asc(sweeps.id));
}

export function findRunsBySweeps(db: Executor, sweepIds: readonly string[]) {
  return db
    .select()
    .from(runs)
    .where(inArray(runs.sweepId, [...sweepIds]))
    .orderBy(asc(runs.queuedAt), asc(runs.name));
}

export function findSummariesByRuns(db: Executor, runIds: readonly string[]) {
  return db.select().from(runSummaries).where(inArray(runSummaries.runId, [...runIds]));
}

/**
 * Whether checkpoint `ck`'s bytes are in the store (uploaded, verified, not pruned): a run can start
 * from it. A checkpoint's artifact is in slot `step:<step>` (artifacts.service slotOf), which
 * artifacts_run_slot_idx finds directly.
 */
export const storedCheckpoint = (ck: SQL) => sql`exists (
  select 1 from artifacts ca where ca.run_id = ${ck}.run_id and ca.kind = 'CHECKPOINT' and ca.slot = 'step:' || ${ck}.step
    and ca.stored_at is not null and ca.pruned_at is null)`;

export interface CheckpointToContinue {
  id: string;
  runId: string;
  step: number;
  isFinal: boolean;
  stored: boolean;
}

/** A checkpoint by id, with whether its bytes are stored; null when there is none. */
export async function checkpointToContinue(db: Executor, checkpointId: string): Promise<CheckpointToContinue | null> {
  const [row] = await rows<{ id: string; run_id: string; step: number; is_final: boolean; stored: boolean }>(
    db,
    sql`/* checkpointToContinue */ select ck.id, ck.run_id, ck.step, ck.is_final, ${storedCheckpoint(sql`ck`)} as stored from checkpoints ck where ck.id = ${checkpointId}`,
  );
  return row ? { id: row.id, runId: row.run_id, step: row.step, isFinal: row.is_final, stored: row.stored } : null;
}

/** continueRun's default: the run's final checkpoint when stored, else its newest stored one. */
export async function defaultCheckpointToContinue(db: Executor, runId: string): Promise<CheckpointToContinue | null> {
  const [row] = await rows<{ id: string; run_id: string; step: number; is_final: boolean }>(
    db,
    sql`/* defaultCheckpointToContinue */ select ck.id, ck.run_id, ck.step, ck.is_final from checkpoints ck
      where ck.run_id = ${runId} and ${storedCheckpoint(sql`ck`)}
      order by ck.is_final desc, ck.step desc limit 1`,
  );
  return row ? { id: row.id, runId: row.run_id, step: row.step, isFinal: row.is_final, stored: true } : null;
}

/** Runs continued from these (continueRun), oldest first. */
export function findContinuationsOf(db: Executor, parentIds: readonly string[], readScope: ReadScope = null) {
  return db
    .select()
    .from(runs)
    .where(and(inArray(runs.parentRunId, [...parentIds]), runInScope(readScope, runs.agentId)))
    .orderBy(asc(runs.queuedAt), asc(runs.id));
}
