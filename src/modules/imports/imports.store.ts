// Every SQL statement of imports: finding what an import reuses (experiment, dataset, caption
// strategy), the import lease, and the writes an importer makes under it.
import { and, asc, eq, inArray, isNull, sql, type SQL } from 'drizzle-orm';
import { float8ArrayBinary, numberArrayText, rows, type Executor } from '../../db/client.js';
import { mapRow } from '../../db/map-row.js';
import type { Hyperparameters } from '../runs/hyperparameters.js';
import type { BatchFacts } from '../metrics/loss-batch.js';
import { blockShareRows, coarseShareRows, shareTexts } from '../metrics/metrics.store.js';
import { addToBlocks, addToCoarseBlocks, appendsTo, BLOCK_COLUMNS, COARSE_BLOCK_COLUMNS, foldFactsIntoSummary } from '../metrics/summary-arithmetic.js';
import { hyperparameterColumns } from '../runs/runs.store.js';
import { captionStrategies, checkpoints, datasets, experiments, runImports, runs, samples } from '../../db/schema.js';

export type RunImportRecord = typeof runImports.$inferSelect;

// Arrays whose elements may be null or boolean travel as text[] and are cast in SQL: postgres.js
// infers an array's type from its elements, which it cannot for nulls or booleans.

export interface ImportFence {
  runId: string;
  leaseToken: string;
  apiKeyId: string;
}

export async function findExperimentByName(db: Executor, name: string) {
  const [row] = await db.select().from(experiments).where(eq(experiments.name, name)).orderBy(asc(experiments.createdAt)).limit(1);
  return row ?? null;
}

/** A dataset with these very images (content hash), the one at `uri` first. */
export async function findDatasetByContent(db: Executor, contentHash: string, uri: string) {
  const [row] = await db
    .select()
    .from(datasets)
    .where(eq(datasets.contentHash, contentHash))
    .orderBy(sql`${datasets.uri} = ${uri} desc`, asc(datasets.createdAt))
    .limit(1);
  return row ?? null;
}

/** A dataset recorded by path alone (its folder was not there to hash). */
export async function findDatasetByPath(db: Executor, uri: string) {
  const [row] = await db
    .select()
    .from(datasets)
    .where(and(eq(datasets.uri, uri), eq(datasets.imageCount, 0)))
    .orderBy(asc(datasets.createdAt))
    .limit(1);
  return row ?? null;
}

/** A caption strategy that captions exactly this way, whoever made it. */
export async function findEquivalentStrategy(
  db: Executor,
  s: { kind: 'NONE' | 'TRIGGER_ONLY' | 'FILES'; triggerWord: string | null; dropoutRate: number; shuffleTokens: boolean },
) {
  const [row] = await db
    .select()
    .from(captionStrategies)
    .where(
      and(
        eq(captionStrategies.kind, s.kind),
        s.triggerWord == null ? isNull(captionStrategies.triggerWord) : eq(captionStrategies.triggerWord, s.triggerWord),
        isNull(captionStrategies.template),
        // real column: compare as float4, as it was stored.
        sql`${captionStrategies.dropoutRate} = ${s.dropoutRate}::real`,
        eq(captionStrategies.shuffleTokens, s.shuffleTokens),
      ),
    )
    .orderBy(asc(captionStrategies.createdAt))
    .limit(1);
  return row ?? null;
}

export async function findImportByJobKey(db: Executor, jobKey: string) {
  const [row] = await db.select().from(runImports).where(eq(runImports.jobKey, jobKey)).for('update');
  return row ?? null;
}

export function findImportsByRuns(db: Executor, runIds: readonly string[]) {
  return db.select().from(runImports).where(inArray(runImports.runId, [...runIds]));
}

export async function insertImport(db: Executor, values: typeof runImports.$inferInsert) {
  const [row] = await db.insert(runImports).values(values).returning();
  return row!;
}

/**
 * takeImportLease: the job's lease for `apiKeyId` unless another key holds it unexpired (then
 * null). The caller holds the row locked (findImportByJobKey … for update).
 */
export async function takeImportLease(db: Executor, runId: string, apiKeyId: string, leaseToken: string, ttlSeconds: number, trainerConfig: string, warnings: unknown) {
  const found = await rows(
    db,
    sql`/* takeImportLease */
    update run_imports set api_key_id = ${apiKeyId}, lease_token = ${leaseToken},
      lease_expires_at = now() + make_interval(secs => ${ttlSeconds}), trainer_config = ${trainerConfig}, warnings = ${JSON.stringify(warnings)}::jsonb
    where run_id = ${runId}
      and (lease_token is null or lease_expires_at < now() or api_key_id = ${apiKeyId})
    returning *`,
  );
  return found.length ? mapRow(runImports, found[0]!) : null;
}

/**
 * heldImport: the fence of every import write, in one statement that also extends the lease: the
 * lease token is the import's current one, unexpired, and held by the calling key. The row stays
 * locked until the write commits, so a takeover waits for it (or finds the lease renewed).
 */
export async function heldImport(db: Executor, f: ImportFence, ttlSeconds: number) {
  const [row] = await rows<{ run_id: string; attempt: number; imported_from: string; steps: number }>(
    db,
    sql`/* heldImport */
    with held as (
      update run_imports set lease_expires_at = now() + make_interval(secs => ${ttlSeconds})
      where run_id = ${f.runId} and lease_token = ${f.leaseToken} and api_key_id = ${f.apiKeyId} and lease_expires_at >= now()
      returning run_id
    )
    select r.id as run_id, r.attempt, r.imported_from, r.steps from held join runs r on r.id = held.run_id`,
  );
  return row ?? null;
}

export async function findImport(db: Executor, runId: string) {
  const [row] = await db.select().from(runImports).where(eq(runImports.runId, runId));
  return row ?? null;
}

/** Whether the run has any loss point from step `from` to `to`: when not, a batch there only appends. */
export async function hasLossBetween(db: Executor, runId: string, from: number, to: number) {
  const [row] = await rows<{ found: boolean }>(
    db,
    sql`/* hasLossBetween */ select exists (select 1 from loss_points where run_id = ${runId} and step between ${from} and ${to}) as found`,
  );
  return row?.found ?? false;
}

/**
 * Lets the rest of the transaction insert loss points (and their summary and blocks) without
 * PostgreSQL's per-row foreign key checks, about a third of an imported batch's time (on PGlite and
 * on PostgreSQL alike): the lock those checks take on the run's row (KEY SHARE, so the run cannot
 * be deleted before the points commit) is taken here, once. session_replication_role = replica
 * skips every trigger, and loss_points, loss_blocks, loss_coarse_blocks and run_summaries have none
 * but those checks, all of which point at this run (a table that gains one must not be written
 * after this). Setting it takes a superuser, which PGlite's one user always is; a PostgreSQL role
 * that is not one keeps the checks, and the insert is as it was.
 */
export async function holdRunForLossInsert(db: Executor, runId: string) {
  await db.execute(sql`/* holdRunForLossInsert */
    select case when current_setting('is_superuser') = 'on' then set_config('session_replication_role', 'replica', true) end,
      (select 1 from runs where id = ${runId} for key share)`);
}

/** An imported batch's points: whole Unix milliseconds for the times (null: the time of the call). */
export interface ImportedLossColumns {
  steps: readonly number[];
  losses: readonly number[];
  lrs: readonly (number | null)[] | null;
  timesMs: readonly (number | null)[] | null;
}

/**
 * The batch's rows for `insert into loss_points`. Each column is one array literal of numbers (no
 * text cast per point; PostgreSQL reads a whole number in a third of the time of a float8), and
 * sent as short as it can be, since on PGlite the text of the lists costs about half the insert
 * (the driver measures and copies every character, the database reads each number, a float8 in
 * about 1.5 µs): a column with one value throughout (the learning rate over most runs or most of
 * one; a column not sent, all nulls) as that value alone, steps evenly spaced (a logger's every
 * step, or every n-th) as the first and the spacing, and the times as offsets from the earliest.
 */
function importedRows(runId: string, attempt: number, p: ImportedLossColumns, binaryFloats: boolean) {
  const n = p.steps.length;
  const listed: SQL[] = [];
  const names: string[] = [];
  const list = (name: string, values: readonly (number | null)[], type: 'int' | 'int8' | 'float8') => {
    listed.push(sql`${numberArrayText(values)}::${sql.raw(type)}[]`);
    names.push(name);
    return sql.raw(`p.${name}`);
  };
  // The losses, on PGlite, as bytes: read as they are, not parsed from text (float8ArrayBinary).
  if (binaryFloats) {
    listed.push(sql`${float8ArrayBinary(p.losses)}::float8[]`);
    names.push('loss');
  }
  const loss = binaryFloats ? sql.raw('p.loss') : list('loss', p.losses, 'float8');
  const spacing = evenSpacing(p.steps);
  const step = spacing === null ? list('step', p.steps, 'int') : sql`${p.steps[0] ?? 0}::int + (p.i::int - 1) * ${spacing}::int`;
  const onlyLr = onlyValue(p.lrs, n);
  const lr = onlyLr === undefined ? list('lr', p.lrs!, 'float8') : sql`${onlyLr}::float8`;
  const onlyTime = onlyValue(p.timesMs, n);
  let atMs: SQL;
  if (onlyTime !== undefined) atMs = sql`${onlyTime}::int8`;
  else {
    let earliest = Infinity;
    for (const t of p.timesMs!) if (t !== null && t < earliest) earliest = t;
    atMs = sql`${earliest}::int8 + ${list('at_offset', p.timesMs!.map((t) => (t === null ? null : t - earliest)), 'int8')}`;
  }
  return sql`select ${runId}::uuid, ${step}, ${loss}, ${lr}, ${attempt}::int, coalesce(to_timestamp((${atMs})::float8 / 1000), now())
      from unnest(${sql.join(listed, sql`, `)}) with ordinality as p(${sql.raw(names.join(', '))}, i)`;
}

/** The one value of a column of `length` values (null for a column not sent), or undefined when it holds several. */
function onlyValue(values: readonly (number | null)[] | null, length: number): number | null | undefined {
  if (!values || length === 0) return null;
  const first = values[0]!;
  // Object.is: -0 is not 0, so no sign is lost.
  for (let i = 1; i < length; i++) if (!Object.is(values[i], first)) return undefined;
  return first;
}

/** d when every step is the first plus i·d (one step: 1), else null. */
function evenSpacing(steps: readonly number[]): number | null {
  if (steps.length < 2) return 1;
  const d = steps[1]! - steps[0]!;
  for (let i = 2; i < steps.length; i++) if (steps[i]! - steps[i - 1]! !== d) return null;
  return d;
}

/**
 * appendImportedLoss, for a batch in whose step range the run has no point yet (the import's fence
 * keeps any other write of the run out until commit): a plain insert, spared ON CONFLICT's
 * speculative insertion per row, and in the same statement the batch's shares added to its
 * loss_blocks and loss_coarse_blocks rows (exact for points that are all new) and, when it comes
 * after the summary's last step, folded into the summary, with the figures worked out in
 * JavaScript (loss-batch.ts), as appendLossBatch does for an agent's batch. So the import leaves
 * nothing to recompute from all the points at its end. `summarized` is false for a batch that
 * fills in steps before the summary's last one (two batches in flight that committed out of
 * order): its caller recomputes the summary.
 */
export async function appendImportedLoss(db: Executor, runId: string, attempt: number, p: ImportedLossColumns, facts: BatchFacts, binaryFloats: boolean) {
  const shares = shareTexts(facts);
  const [row] = await rows<{ summarized: boolean }>(
    db,
    sql`/* appendImportedLoss */
    with written as (
      insert into loss_points (run_id, step, loss, lr, attempt, recorded_at)
      ${importedRows(runId, attempt, p, binaryFloats)}
    ),
    summary as (
      update run_summaries s set ${foldFactsIntoSummary(facts)}
      where s.run_id = ${runId} and ${appendsTo(sql`${facts.firstStep}::int`)}
      returning 1
    ),
    block_shares as (
      insert into loss_blocks as lb ${BLOCK_COLUMNS}
      select ${runId}::uuid, b.*
      from ${blockShareRows(shares)}
      ${addToBlocks}
    ),
    coarse_shares as (
      insert into loss_coarse_blocks as lb ${COARSE_BLOCK_COLUMNS}
      select ${runId}::uuid, b.*
      from ${coarseShareRows(shares)}
      ${addToCoarseBlocks}
    )
    select exists (select 1 from summary) as summarized`,
  );
  return { summarized: row?.summarized ?? false };
}

/**
 * mergeImportedLoss, for a batch whose range holds points already: a step recorded already is
 * rewritten only when the folder now says something else (a resumed job logged it again), so a
 * second import of the same folder writes nothing. The points written, new or rewritten; their
 * caller brings the summary and blocks of their range up to date.
 */
export async function mergeImportedLoss(db: Executor, runId: string, attempt: number, p: ImportedLossColumns, binaryFloats: boolean) {
  const [row] = await rows<{ written: number }>(
    db,
    sql`/* mergeImportedLoss */
    with written as (
      insert into loss_points (run_id, step, loss, lr, attempt, recorded_at)
      ${importedRows(runId, attempt, p, binaryFloats)}
      on conflict (run_id, step) do update set loss = excluded.loss, lr = excluded.lr, recorded_at = excluded.recorded_at
        where (loss_points.loss, loss_points.lr) is distinct from (excluded.loss, excluded.lr)
      returning 1
    )
    select count(*)::int as written from written`,
  );
  return row?.written ?? 0;
}

/**
 * Whether the run's summary counts every one of its points and its blocks add up to them, as the
 * writes of an import keep them: false only for points an import wrote without them (one begun by
 * a server that summed the loss up at finishImport alone, and never finished).
 */
export async function lossSummaryHolds(db: Executor, runId: string) {
  const [row] = await rows<{ holds: boolean }>(
    db,
    sql`/* lossSummaryHolds */
    select s.points = (select count(*) from loss_points where run_id = ${runId})
      and s.points = coalesce((select sum(points) from loss_blocks where run_id = ${runId}), 0) as holds
    from run_summaries s where s.run_id = ${runId}`,
  );
  return row?.holds ?? false;
}

/** insertImportedCheckpoints: new steps only; a checkpoint already recorded stays as it is. */
export async function insertImportedCheckpoints(
  db: Executor,
  runId: string,
  attempt: number,
  list: { step: number; path: string; sizeBytes: number; sha256: string; isFinal: boolean; createdAt: string | null }[],
) {
  if (list.length === 0) return [];
  const found = await rows(
    db,
    sql`/* insertImportedCheckpoints */
    insert into checkpoints (run_id, step, path, size_bytes, sha256, is_final, attempt, created_at)
    select ${runId}::uuid, c.step, c.path, c.size, c.sha, c.final, ${attempt}::int, coalesce(c.at, now())
    from unnest(${sql.param(list.map((c) => c.step))}::int[], ${sql.param(list.map((c) => c.path))}::text[],
      ${sql.param(list.map((c) => c.sizeBytes))}::float8[], ${sql.param(list.map((c) => c.sha256))}::text[],
      ${sql.param(list.map((c) => String(c.isFinal)))}::text[]::boolean[], ${sql.param(list.map((c) => c.createdAt))}::text[]::timestamptz[])
      as c(step, path, size, sha, final, at)
    on conflict (run_id, step) do nothing
    returning *`,
  );
  return found.map((r) => mapRow(checkpoints, r));
}

export async function insertImportedSamples(
  db: Executor,
  runId: string,
  attempt: number,
  list: { step: number; promptIndex: number; prompt: string | null; path: string; createdAt: string | null }[],
) {
  if (list.length === 0) return [];
  const found = await rows(
    db,
    sql`/* insertImportedSamples */
    insert into samples (run_id, step, prompt_index, prompt, path, attempt, created_at)
    select ${runId}::uuid, s.step, s.prompt_index, s.prompt, s.path, ${attempt}::int, coalesce(s.at, now())
    from unnest(${sql.param(list.map((s) => s.step))}::int[], ${sql.param(list.map((s) => s.promptIndex))}::int[],
      ${sql.param(list.map((s) => s.prompt))}::text[], ${sql.param(list.map((s) => s.path))}::text[],
      ${sql.param(list.map((s) => s.createdAt))}::text[]::timestamptz[]) as s(step, prompt_index, prompt, path, at)
    on conflict (run_id, step, prompt_index) do nothing
    returning *`,
  );
  return found.map((r) => mapRow(samples, r));
}

/** finishImport: the outcome and times, the folder it was last seen in, and the lease given back. */
export async function finishImport(
  db: Executor,
  runId: string,
  outcome: 'SUCCEEDED' | 'FAILED' | 'CANCELLED',
  times: { startedAt: string | null; finishedAt: string | null },
) {
  const found = await rows(
    db,
    sql`/* finishImport */
    with released as (
      update run_imports set lease_token = null, lease_expires_at = null, finished_at = now() where run_id = ${runId} returning run_id
    )
    -- A run whose final checkpoint is known succeeded, whichever copy of its folder was imported last.
    update runs r set status = case when exists (select 1 from checkpoints c where c.run_id = r.id and c.is_final) then 'SUCCEEDED' else ${outcome} end,
      started_at = coalesce(${times.startedAt}::timestamptz, r.started_at),
      queued_at = coalesce(${times.startedAt}::timestamptz, r.queued_at),
      finished_at = coalesce(${times.finishedAt}::timestamptz, r.finished_at),
      progress_step = coalesce((select last_step from run_summaries where run_id = r.id), r.progress_step),
      progress_total = r.steps
    from released where r.id = released.run_id
    returning r.*`,
  );
  return found.length ? mapRow(runs, found[0]!) : null;
}

/** The folder a job was last imported from, and its settings as its config says now (a resumed job may train on to more steps). */
export async function refreshImportedRun(db: Executor, runId: string, folder: string, hp: Hyperparameters) {
  await db
    .update(runs)
    .set({ importedFrom: folder, ...hyperparameterColumns(hp) })
    .where(eq(runs.id, runId));
}
