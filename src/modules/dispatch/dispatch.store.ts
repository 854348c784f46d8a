// Every statement that moves a run through its lifecycle. Each write by an agent is ONE statement
// fenced by the run's lease token (`where lease_token = $token`): a zombie agent whose lease was
// requeued and handed to someone else matches no row, so it can never overwrite a newer attempt.
import { sql, type SQL } from 'drizzle-orm';
import { rows, type Database, type Executor } from '../../db/client.js';
import { compile, type BoundStatement } from '../../db/statement.js';
import { mapRow } from '../../db/map-row.js';
import { captionStrategies, datasets, runs } from '../../db/schema.js';
import type { CaptionStrategyRecord } from '../captions/captions.store.js';
import type { DatasetRecord } from '../datasets/datasets.store.js';
import { insertEventsCte } from '../runs/events.store.js';
import { announceEventsExpression, announceRunChangedExpression } from '../../live/run-feeds.js';
import { storedCheckpoint, type RunRecord } from '../runs/runs.store.js';
import { fencedBy, type LeaseFence } from './fence.js';
import { HELD_SQL, sourcesOf, sqlNextStatus, sqlSet, type RunOutcome } from '../runs/lifecycle.js';


const toRuns = (raw: Record<string, unknown>[]) => raw.map((r) => mapRow(runs, r));

export interface ClaimingAgent {
  agentId: string;
  /** The calling key: it may claim only for agents it registered, unless it may act as any agent. */
  apiKeyId: string;
  actsAsAnyAgent: boolean;
}

/**
 * claimRun as two statements for Database.batch, which sends them in one round trip:
 *
 * 1. Touch the agent (a claim is a sign of life). Its row lock serializes one agent's claims, and
 *    because the claim is the NEXT statement, its snapshot is taken after the lock was granted: it
 *    sees the run a concurrent claim by the same agent took and cannot give away its last GPU twice.
 *    (In one statement the wait would happen after the snapshot, too late.) It answers whether
 *    the agent exists and whether the calling key may act as it; it touches only then.
 *    It also rules out sorting for the rest of the transaction. The claim must walk
 *    runs_dispatch_idx in order and stop at the first fitting run, but the planner cannot know how
 *    many queued runs fit (it guesses the labels test at 0.5 %), and after a large sweep its
 *    statistics still say few runs are queued: it then fetched every queued run and sorted them,
 *    which grows with the queue (bench/dispatch.ts).
 * 2. The claim, with everything the assignment needs, in one statement:
 *    - SKIP LOCKED lets concurrent agents pass over a run another claimer is taking instead of
 *      queueing behind its lock: 20 claimers each get a different run in one round trip.
 *    - The agent's capacity is computed once (a materialized CTE read through scalar subqueries),
 *      so the candidate scan walks the index in order and stops at the first fitting run.
 *    - The CLAIMED event, both NOTIFYs, the caption strategy, the dataset and its images with their
 *      stored captions ride along, so the claim costs no further round trip (the strategy and the
 *      dataset also answer the assignment's run { captionStrategy dataset }).
 */
export function claimStatements(agent: ClaimingAgent, leaseToken: string, ttlSeconds: number): [touch: BoundStatement, claim: BoundStatement] {
  const values = { ...agent, leaseToken, ttlSeconds };
  return [touchAgent(values), claimRunStatement(values)];
}

type ClaimValues = ClaimingAgent & { leaseToken: string; ttlSeconds: number };

const mayAct = (agent: ClaimValues) => sql`(a.api_key_id = ${agent.apiKeyId} or ${agent.actsAsAnyAgent})`;

const touchAgent = compile(
  (agent: ClaimValues) => sql`/* touchAgent */
    update agents a set last_seen_at = case when ${mayAct(agent)} then now() else a.last_seen_at end
    where a.id = ${agent.agentId}
    returning ${mayAct(agent)} as may_act, set_config('enable_sort', 'off', true) as sort_ruled_out`,
);

const claimRunStatement = compile(
  (agent: ClaimValues) => sql`/* claimRun */
    with agent as materialized (
      select a.max_gpu_memory_mb, a.labels,
        a.gpu_count - coalesce((
          select sum(h.gpu_count) from runs h where h.agent_id = a.id and h.status in ${HELD_SQL}
        ), 0) as free_gpus
      from agents a
      where a.id = ${agent.agentId} and not a.draining and ${mayAct(agent)}
    ),
    candidate as (
      select r.id from runs r
      where r.status = 'QUEUED'
        and (r.not_before is null or r.not_before <= now())
        and r.min_vram_mb <= (select max_gpu_memory_mb from agent)
        and r.gpu_count <= (select free_gpus from agent)
        and r.labels <@ (select labels from agent)
      -- "nulls last" as in the index: with Postgres' default (nulls first) it could not serve the order.
      order by r.priority desc nulls last, r.queued_at, r.id
      limit 1
      for update of r skip locked
    ),
    -- Where the attempt starts: the run's newest checkpoint whose bytes are stored, else (a
    -- continued run's first attempts) the parent's checkpoint continueRun named.
    resume as (
      select c.id as run_id, coalesce((
        select ck.id from checkpoints ck
        where ck.run_id = c.id and ${storedCheckpoint(sql`ck`)}
        order by ck.step desc limit 1
      ), (select r.continued_from_checkpoint_id from runs r where r.id = c.id)) as checkpoint_id
      from candidate c
    ),
    claimed as (
      update runs r set
        status = 'CLAIMED',
        agent_id = ${agent.agentId},
        lease_token = ${agent.leaseToken},
        lease_expires_at = now() + make_interval(secs => ${agent.ttlSeconds}),
        attempt = r.attempt + 1,
        claimed_at = now(),
        started_at = null,
        not_before = null,
        progress_step = null, progress_total = null, seconds_per_step = null, vram_used_mb = null, gpu_utilization = null,
        resumed_from_checkpoint_id = (select checkpoint_id from resume),
        resumed_steps = r.resumed_steps + coalesce((select ck.step from checkpoints ck where ck.id = (select checkpoint_id from resume)), 0)
      from candidate c
      where r.id = c.id
      returning r.*
    ),
    resumed as (
      select cl.id as run_id, cl.attempt, ck.id as checkpoint_id, ck.step, ck.run_id as checkpoint_run_id,
        exists (select 1 from artifacts o where o.run_id = ck.run_id and o.kind = 'OPTIMIZER_STATE' and o.slot = 'step:' || ck.step
          and o.stored_at is not null and o.pruned_at is null) as with_optimizer
      from claimed cl join checkpoints ck on ck.id = cl.resumed_from_checkpoint_id
    ),
    ${insertEventsCte(
      'event',
      sql`select id, 'CLAIMED', 'Claimed by agent ' || ${agent.agentId}, jsonb_build_object('agentId', ${agent.agentId}::text, 'attempt', attempt) from claimed
        union all
        select run_id, 'RESUMED',
          'Attempt ' || attempt || ' resumes from step ' || step
            || case when checkpoint_run_id <> run_id then ' of the run it continues' else '' end
            || case when with_optimizer then ' with its optimizer state'
                    else ', weights only: the optimizer state saved with that checkpoint is not stored' end,
          jsonb_build_object('fromStep', step, 'checkpointId', checkpoint_id::text, 'checkpointRunId', checkpoint_run_id::text,
            'attempt', attempt, 'weightsOnly', not with_optimizer)
        from resumed`,
    )}
    select c.*,
      to_jsonb(s) as strategy,
      (select to_jsonb(d) from datasets d where d.id = c.dataset_id) as dataset,
      -- TRIGGER_ONLY captions every image; STORED those with a text; NONE and FILES write none.
      (select coalesce(jsonb_agg(jsonb_build_array(i.file_name, t.text) order by i.position), '[]')
         from dataset_images i left join captions t on t.image_id = i.id and t.strategy_id = s.id
         where i.dataset_id = c.dataset_id and s.kind in ('TRIGGER_ONLY', 'STORED')) as images,
      ${announceRunChangedExpression('c')} as announced,
      ${announceEventsExpression('event')} as events_announced
    from claimed c join caption_strategies s on s.id = c.caption_strategy_id`,
);

export interface ClaimedRow {
  run: RunRecord;
  strategy: CaptionStrategyRecord;
  dataset: DatasetRecord;
  /** Every image of the dataset as [file name, stored caption text for the strategy or null]. */
  images: [fileName: string, storedText: string | null][];
}

export const claimedRow = (raw: Record<string, unknown>): ClaimedRow => ({
  run: mapRow(runs, raw),
  strategy: mapRow(captionStrategies, raw.strategy as Record<string, unknown>),
  dataset: mapRow(datasets, raw.dataset as Record<string, unknown>),
  images: raw.images as ClaimedRow['images'],
});

/** The client of a long poll left before it got its run: hand the claim back as if never made. */
export async function releaseClaim(db: Executor, runId: string, leaseToken: string) {
  const released = await rows(
    db,
    sql`/* releaseClaim */
    update runs set status = 'QUEUED', lease_token = null, lease_expires_at = null, claimed_at = null,
      attempt = attempt - 1,
      resumed_steps = resumed_steps - coalesce((select c.step from checkpoints c where c.id = resumed_from_checkpoint_id), 0)
    where id = ${runId} and lease_token = ${leaseToken} and status = 'CLAIMED'
    returning id`,
  );
  return released.length > 0;
}


/** startRun, with its STARTED event and announcement the first time (a retried start changes nothing). */
export async function startRun(db: Database, fence: LeaseFence, ttlSeconds: number) {
  const started = await db.prepared(startRunStatement({ ...fence, ttlSeconds }));
  return started.length ? toRuns(started)[0]! : null;
}

const startRunStatement = compile(
  (v: LeaseFence & { ttlSeconds: number }) => sql`/* startRun */
    with started as (
      update runs r set
        status = case when status = 'CLAIMED' then 'RUNNING' else status end,
        started_at = coalesce(started_at, now()),
        lease_expires_at = now() + make_interval(secs => ${v.ttlSeconds})
      where ${fencedBy(v)}
      -- now() is the transaction's start time: started_at equals it only when this statement set it.
      returning *, started_at = now() as first_start
    ),
    ${insertEventsCte('event', sql`select id, 'STARTED', 'Attempt ' || attempt || ' started', null::jsonb from started where first_start`)}
    select s.*,
      case when s.first_start then ${announceRunChangedExpression('s')} end as announced,
      ${announceEventsExpression('event')} as events_announced
    from started s`,
);

export interface Progress {
  step: number;
  totalSteps: number | null;
  secondsPerStep: number | null;
  vramUsedMb: number | null;
  gpuUtilization: number | null;
}

/** heartbeat: extends the lease, records progress and that the agent is alive, in one statement. */
export async function heartbeat(
  db: Database,
  fence: LeaseFence,
  ttlSeconds: number,
  progress: Progress | null,
) {
  const beat = await db.prepared(
    heartbeatStatement({
      ...fence,
      ttlSeconds,
      hasProgress: progress != null,
      step: progress?.step ?? null,
      totalSteps: progress?.totalSteps ?? null,
      secondsPerStep: progress?.secondsPerStep ?? null,
      vramUsedMb: progress?.vramUsedMb ?? null,
      gpuUtilization: progress?.gpuUtilization ?? null,
    }),
  );
  return (beat[0] as { lease_expires_at: unknown; status: RunRecord['status'] } | undefined) ?? null;
}

type NullableProgress = { [K in keyof Progress]: Progress[K] | null };

const heartbeatStatement = compile(
  (v: LeaseFence & NullableProgress & { ttlSeconds: number; hasProgress: boolean }) => sql`/* heartbeat */
    with beat as (
      update runs r set
        lease_expires_at = now() + make_interval(secs => ${v.ttlSeconds}),
        progress_step = coalesce(${v.step}::int, progress_step),
        progress_total = coalesce(${v.totalSteps}::int, progress_total),
        seconds_per_step = coalesce(${v.secondsPerStep}::float8, seconds_per_step),
        vram_used_mb = coalesce(${v.vramUsedMb}::int, vram_used_mb),
        gpu_utilization = coalesce(${v.gpuUtilization}::float8, gpu_utilization)
      where ${fencedBy(v)}
      returning r.id, agent_id, lease_expires_at, status, experiment_id
    ),
    seen as (
      update agents set last_seen_at = now() where id = (select agent_id from beat)
    )
    select b.lease_expires_at, b.status,
      -- Progress is news for runUpdated subscribers; a bare lease extension is not.
      case when ${v.hasProgress}::boolean then ${announceRunChangedExpression('b')} end as announced
    from beat b`,
);

/**
 * completeRun: the outcome of the attempt holding the lease, its event and announcement. gpu_seconds
 * adds this attempt's running time × GPUs held; cost is the agent's hourly cost for the share of its
 * GPUs the run held.
 */
export async function completeRun(
  db: Database,
  fence: LeaseFence,
  outcome: RunOutcome,
  error: { code: string; message: string; logTail: string | null } | null,
) {
  const done = await db.prepared(
    completeRunStatement({
      ...fence,
      outcome,
      outcomeWord: outcome.toLowerCase(),
      errorCode: error?.code ?? null,
      errorMessage: error?.message ?? null,
      errorLogTail: error?.logTail ?? null,
      eventMessage: error ? `${error.code}: ${error.message}`.slice(0, 2000) : null,
      eventData: error ? JSON.stringify({ code: error.code }) : null,
    }),
  );
  return done.length ? toRuns(done)[0]! : null;
}

/** Whether run `r` has its final checkpoint (the one at its total steps) stored and not pruned. */
const finalCheckpointStored = (r: SQL) => sql`exists (
  select 1 from artifacts fa where fa.run_id = ${r}.id and fa.kind = 'CHECKPOINT' and fa.step = ${r}.steps
    and fa.stored_at is not null and fa.pruned_at is null)`;

/** finalCheckpointStatus: the run's total steps and whether its final checkpoint is stored. */
export async function finalCheckpointStatus(db: Executor, runId: string) {
  const [row] = await rows<{ steps: number; stored: boolean }>(db, sql`/* finalCheckpointStatus */ select r.steps, ${finalCheckpointStored(sql`r`)} as stored from runs r where r.id = ${runId}`);
  return row ?? null;
}

const completeRunStatement = compile(
  (
    v: LeaseFence & {
      outcome: string;
      outcomeWord: string;
      errorCode: string | null;
      errorMessage: string | null;
      errorLogTail: string | null;
      eventMessage: string | null;
      eventData: string | null;
    },
  ) => sql`/* completeRun */
    with attempt as (
      select r.id,
        extract(epoch from now() - coalesce(r.started_at, r.claimed_at)) * r.gpu_count as gpu_seconds,
        a.hourly_cost_usd / greatest(a.gpu_count, 1) as cost_per_gpu_hour
      from runs r left join agents a on a.id = r.agent_id
      where r.id = ${v.runId}
    ),
    done as (
      update runs r set
        status = ${v.outcome},
        finished_at = now(),
        lease_expires_at = null,
        gpu_seconds = coalesce(r.gpu_seconds, 0) + t.gpu_seconds,
        cost_usd = case when t.cost_per_gpu_hour is null then r.cost_usd
                        else coalesce(r.cost_usd, 0) + t.gpu_seconds / 3600 * t.cost_per_gpu_hour end,
        error_code = ${v.errorCode},
        error_message = ${v.errorMessage},
        error_log_tail = ${v.errorLogTail},
        -- A finished run trained every step, whatever the last heartbeat had seen.
        progress_step = case when ${v.outcome}::text = 'SUCCEEDED' then coalesce(r.progress_total, r.steps) else r.progress_step end,
        progress_total = case when ${v.outcome}::text = 'SUCCEEDED' then coalesce(r.progress_total, r.steps) else r.progress_total end
      from attempt t
      where r.id = t.id and ${fencedBy(v)}
        -- SUCCEEDED only once the final checkpoint's bytes are stored (finalCheckpointStored).
        and (${v.outcome}::text <> 'SUCCEEDED' or ${finalCheckpointStored(sql`r`)})
      returning r.*
    ),
    ${insertEventsCte(
      'event',
      sql`select id, ${v.outcome}, coalesce(${v.eventMessage}::text, 'Attempt ' || attempt || ' ' || ${v.outcomeWord}), ${v.eventData}::jsonb from done`,
    )}
    select d.*, ${announceRunChangedExpression('d')} as announced, ${announceEventsExpression('event')} as events_announced
    from done d`,
);

/** cancelRun: QUEUED → CANCELLED at once; CLAIMED/RUNNING → CANCELLING, delivered on the next heartbeat. */
export async function cancelRun(db: Executor, runId: string) {
  const cancelled = await rows(
    db,
    sql`/* cancelRun */
    update runs set
      status = ${sqlNextStatus('cancel')},
      finished_at = case when status = 'QUEUED' then now() else finished_at end
    where id = ${runId} and status in ${sqlSet(sourcesOf('cancel'))}
    returning *`,
  );
  return cancelled.length ? toRuns(cancelled)[0]! : null;
}

/** retryRun: FAILED or CANCELLED back to QUEUED, with maxAttempts new claims from here. An imported run never enters the queue. */
export async function retryRun(db: Executor, runId: string) {
  const retried = await rows(
    db,
    sql`/* retryRun */
    update runs set
      status = 'QUEUED', attempts_before_retry = attempt, queued_at = now(), not_before = null,
      lease_token = null, lease_expires_at = null, claimed_at = null, started_at = null, finished_at = null,
      error_code = null, error_message = null, error_log_tail = null,
      progress_step = null, progress_total = null, seconds_per_step = null, vram_used_mb = null, gpu_utilization = null
    where id = ${runId} and status in ${sqlSet(sourcesOf('retry'))} and imported_from is null
    returning *`,
  );
  return retried.length ? toRuns(retried)[0]! : null;
}

export interface ReapedRun {
  id: string;
  experiment_id: string;
  status: 'QUEUED' | 'FAILED' | 'CANCELLED';
  attempt: number;
  not_before: unknown;
}

/**
 * reapExpiredLeases: runs whose agent stopped heartbeating. A lease that lapsed on CLAIMED/RUNNING
 * goes back to QUEUED after backoff × 2^(attempt-1) with ±20 % jitter while the attempt budget
 * lasts, else FAILED with LEASE_EXPIRED; CANCELLING becomes CANCELLED (nobody is training it).
 * Clearing lease_token is what turns the old holder into a zombie: its token no longer matches.
 */
export async function reapExpiredLeases(db: Executor, backoffSeconds: number, leaseTtlSeconds: number, limit = 500) {
  return rows<ReapedRun>(
    db,
    sql`/* reapExpiredLeases */
    with expired as (
      select id,
        -- The attempt ran until its lease was last extended (a lease lasts leaseTtlSeconds from each
        -- heartbeat): that GPU time was spent, whatever comes of the run now.
        greatest(0, extract(epoch from (lease_expires_at - make_interval(secs => ${leaseTtlSeconds})) - coalesce(started_at, claimed_at))) * gpu_count as gpu_seconds,
        (select a.hourly_cost_usd / greatest(a.gpu_count, 1) from agents a where a.id = runs.agent_id) as cost_per_gpu_hour,
        case
          when status = 'CANCELLING' then 'CANCELLED'
          when attempt - attempts_before_retry < max_attempts then 'QUEUED'
          else 'FAILED'
        end as next_status
      from runs
      where status in ${HELD_SQL} and lease_expires_at < now()
      order by lease_expires_at
      limit ${limit}
      for update skip locked
    )
    update runs r set
      status = e.next_status,
      gpu_seconds = coalesce(r.gpu_seconds, 0) + e.gpu_seconds,
      cost_usd = case when e.cost_per_gpu_hour is null then r.cost_usd
                      else coalesce(r.cost_usd, 0) + e.gpu_seconds / 3600 * e.cost_per_gpu_hour end,
      lease_token = null,
      lease_expires_at = null,
      not_before = case when e.next_status = 'QUEUED' and ${backoffSeconds} > 0
        then now() + make_interval(secs => least(3600, ${backoffSeconds} * power(2, least(greatest(r.attempt - 1, 0), 20)))
                                           * (0.8 + 0.4 * random()))
        end,
      finished_at = case when e.next_status = 'QUEUED' then null else now() end,
      error_code = case when e.next_status = 'FAILED' then 'LEASE_EXPIRED' else r.error_code end,
      error_message = case when e.next_status = 'FAILED'
        then 'The agent stopped heartbeating and no attempts are left (' || r.attempt || ' claims)' else r.error_message end
    from expired e
    where r.id = e.id
    returning r.id, r.experiment_id, r.status, r.attempt, r.not_before`,
  );
}

/** Why a fenced write matched nothing: the run as it is now, and the key of its current holder. */
export async function runForDiagnosis(db: Executor, runId: string) {
  const found = await rows<{ status: RunRecord['status']; lease_token: string | null; api_key_id: string | null }>(
    db,
    sql`/* runForDiagnosis */
    select r.status, r.lease_token, a.api_key_id
    from runs r left join agents a on a.id = r.agent_id
    where r.id = ${runId}`,
  );
  return found[0] ?? null;
}
