// Grouped comparison and the checkpoint matrix, read from run summaries and checkpoints: neither
// ever scans loss_points, so comparing thousands of runs stays cheap.
import { asc, getTableColumns, sql, type SQL } from 'drizzle-orm';
import { rows, type Executor } from '../../db/client.js';
import { checkpoints, runs } from '../../db/schema.js';
import { runWhere, type RunConditions } from '../runs/runs.store.js';

export type RunDimension = 'RANK' | 'LEARNING_RATE' | 'STEPS' | 'CAPTION_STRATEGY' | 'DATASET' | 'OPTIMIZER' | 'BATCH_SIZE' | 'BASE_MODEL';

const dimensionColumns: Record<RunDimension, { column: SQL; alias: string }> = {
  RANK: { column: sql`runs.rank`, alias: 'rank' },
  LEARNING_RATE: { column: sql`runs.learning_rate`, alias: 'learning_rate' },
  STEPS: { column: sql`runs.steps`, alias: 'steps' },
  CAPTION_STRATEGY: { column: sql`runs.caption_strategy_id`, alias: 'caption_strategy_id' },
  DATASET: { column: sql`runs.dataset_id`, alias: 'dataset_id' },
  OPTIMIZER: { column: sql`runs.optimizer`, alias: 'optimizer' },
  BATCH_SIZE: { column: sql`runs.batch_size`, alias: 'batch_size' },
  BASE_MODEL: { column: sql`runs.base_model`, alias: 'base_model' },
};

export interface GroupRow {
  rank?: number;
  learning_rate?: number;
  steps?: number;
  caption_strategy_id?: string;
  dataset_id?: string;
  optimizer?: string;
  batch_size?: number;
  base_model?: string;
  run_count: number;
  succeeded: number;
  mean_last_loss: number | null;
  min_loss: number | null;
  mean_ema_loss: number | null;
  best_mean_rating: number | null;
  mean_cost_usd: number | null;
  mean_duration_seconds: number | null;
  run_ids?: string[] | string;
}

/* compareRuns: one GROUP BY over runs ⋈ run_summaries. */
export function compareRuns(db: Executor, where: RunConditions, groupBy: RunDimension[], withRunIds: boolean) {
  const dims = groupBy.map((d) => dimensionColumns[d]);
  const keyColumns = dims.map((d) => sql`${d.column} as ${sql.identifier(d.alias)}`);
  const groupColumns = dims.length ? sql.join(dims.map((d) => d.column), sql`, `) : sql`()`;
  const condition = runWhere(where);
  return rows<GroupRow>(
    db,
    sql`/* compareRuns */
    select ${sql.join([...keyColumns, sql`count(*)::int as run_count`], sql`, `)},
      count(*) filter (where runs.status = 'SUCCEEDED')::int as succeeded,
      avg(s.last_loss)::float8 as mean_last_loss,
      min(s.min_loss) as min_loss,
      avg(s.ema_loss)::float8 as mean_ema_loss,
      max(s.best_mean_rating) as best_mean_rating,
      avg(runs.cost_usd)::float8 as mean_cost_usd,
      (avg(extract(epoch from runs.finished_at - runs.started_at))
        filter (where runs.finished_at is not null and runs.started_at is not null))::float8 as mean_duration_seconds
      ${withRunIds ? sql`, array_agg(runs.id order by runs.queued_at, runs.id) as run_ids` : sql``}
    from runs join run_summaries s on s.run_id = runs.id
    ${condition ? sql`where ${condition}` : sql``}
    group by ${groupColumns}
    order by ${dims.length ? sql.join(dims.map((d) => sql`${d.column} nulls last`), sql`, `) : sql`1`}`,
  );
}

/**
 * compareGroupRuns: the runs of every group in one statement. The ids travel as one array
 * parameter: the run loader's `in (...)` would bind one parameter per run (2,000 for a large
 * comparison) and hand each group its runs through a promise per run.
 */
export function compareGroupRuns(db: Executor, ids: string[]) {
  return db.select().from(runs).where(sql`${runs.id} = any(${sql.param(ids)}::uuid[])`);
}

export const MATRIX_MAX_RUNS = 500;

/* matrixRuns: the runs of a checkpoint matrix, oldest first, as whole records (no loader hop per row). */
export function matrixRuns(db: Executor, where: RunConditions) {
  return db.select().from(runs).where(runWhere(where)).orderBy(asc(runs.queuedAt), asc(runs.id)).limit(MATRIX_MAX_RUNS);
}

/**
 * matrixCheckpoints: every checkpoint of the runs with its mean rating, in one statement. The mean
 * is a subquery per checkpoint on ratings_checkpoint_idx, so it reads only these checkpoints' ratings.
 */
export function matrixCheckpoints(db: Executor, runIds: string[]) {
  return db
    .select({
      checkpoint: getTableColumns(checkpoints),
      // Spelled out: drizzle writes a column of the only table unqualified, which here would be r.id.
      meanRating: sql<number | null>`(select avg(r.score)::float8 from ratings r where r.checkpoint_id = checkpoints.id)`,
    })
    .from(checkpoints)
    .where(sql`${checkpoints.runId} = any(${sql.param(runIds)}::uuid[])`)
    .orderBy(asc(checkpoints.runId), asc(checkpoints.step));
}
