// Imports: past ai-toolkit jobs become runs. The importing client (the CLI) reads the folder and
// hashes its files; the server maps the config, finds or makes the experiment, dataset and caption
// strategy, and takes the writes under an import lease, as the agent protocol does for a claimed
// run: every write names the run and the lease token and comes from the key holding it. The run is
// never QUEUED, so no agent ever claims it, and runs.lease_token stays null, so no fence of the
// agent protocol ever matches it.
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import path from 'node:path';
import { z } from 'zod';
import type { Executor } from '../../db/client.js';
import { apiError, badInput, forbidden, leaseLost, notFound } from '../../graphql/errors.js';
import { parseId } from '../../graphql/ids.js';
import type { Principal } from '../keys/keys.service.js';
import { insertExperiment } from '../experiments/experiments.store.js';
import { contentHash, plainFileName } from '../datasets/datasets.service.js';
import { insertDataset, insertImages } from '../datasets/datasets.store.js';
import { insertStrategy } from '../captions/captions.store.js';
import { appendEvents } from '../runs/events.store.js';
import { announceRunChanged } from '../../live/run-feeds.js';
import { findRunsByIds, hyperparameterColumns, insertRuns } from '../runs/runs.store.js';
import { afterLossBatch, lockLossSummary, markLossRewritten, recomputeLossSummary, refreshCheckpointEma } from '../metrics/metrics.store.js';
import { batchFacts } from '../metrics/loss-batch.js';
import { MAX_LOSS } from '../metrics/metrics.service.js';
import { name as nameSchema, parseInput } from '../validation.js';
import { ConfigError, mapJobConfig, promptAsSampled, type MappedConfig } from './config-map.js';
import * as store from './imports.store.js';
import type { ServiceDeps } from '../service-deps.js';

/** How long an import lease lasts without a write; each write extends it. */
export const IMPORT_LEASE_SECONDS = 600;
export const MAX_IMPORT_POINTS = 10_000;
/** importLossColumns: a list of numbers costs a fraction of a list of objects to read. */
export const MAX_IMPORT_COLUMN_POINTS = 50_000;
export const MAX_IMPORT_FILES = 5_000;
/** Past any step a run has (steps are at most 100,000). */
const MAX_STEP = 1_000_000_000;

const sha256Hex = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
  .transform((s) => s.toLowerCase());
const time = z
  .union([z.string(), z.date()])
  .transform((t) => new Date(t))
  .refine((d) => !Number.isNaN(d.getTime()), 'must be a time')
  .transform((d) => d.toISOString())
  .nullish();
const absolutePath = z.string().trim().min(1, 'must not be empty').max(4096).refine((p) => p.startsWith('/'), 'must be an absolute path');

const beginInput = z.object({
  folder: absolutePath,
  jobKey: z.string().trim().min(16, 'must be at least 16 characters').max(200),
  trainerConfig: z.string().min(1, 'must not be empty').max(1_000_000, 'must be at most 1,000,000 characters'),
  experimentName: nameSchema,
  datasetImages: z.array(z.object({ fileName: plainFileName, sha256: sha256Hex, width: z.number().int().nullish(), height: z.number().int().nullish() })).max(100_000).nullish(),
  datasetHasCaptions: z.boolean().nullish(),
});

const checkpointInput = z.object({
  step: z.number().int().min(0, 'must be 0 or more'),
  fileName: plainFileName,
  sizeBytes: z.number().int().min(0),
  sha256: sha256Hex,
  isFinal: z.boolean().nullish(),
  createdAt: time,
});
const sampleInput = z.object({ step: z.number().int().min(0, 'must be 0 or more'), promptIndex: z.number().int().min(0), fileName: plainFileName, createdAt: time });
const finishInput = z.object({ outcome: z.enum(['SUCCEEDED', 'FAILED', 'CANCELLED']), startedAt: time, finishedAt: time });


function mapConfig(text: string): MappedConfig {
  try {
    return mapJobConfig(text);
  } catch (err) {
    if (err instanceof ConfigError) throw badInput('input.trainerConfig', err.message);
    throw err;
  }
}

/** The caption strategy the config trained with: the dataset's caption files (when there are any), else the trigger word alone. */
async function captionStrategyFor(tx: Executor, mapped: MappedConfig, hasCaptions: boolean | null | undefined) {
  const files = hasCaptions ?? mapped.dataset.captionExt != null;
  const kind = files ? 'FILES' : mapped.triggerWord ? 'TRIGGER_ONLY' : 'NONE';
  const wanted = { kind, triggerWord: mapped.triggerWord, dropoutRate: mapped.dataset.dropoutRate, shuffleTokens: mapped.dataset.shuffleTokens } as const;
  const found = await store.findEquivalentStrategy(tx, wanted);
  if (found) return found;
  const parts = [files ? `.${mapped.dataset.captionExt ?? 'txt'} files` : kind === 'TRIGGER_ONLY' ? 'trigger word only' : 'no captions'];
  if (mapped.triggerWord && files) parts.push(`trigger ${mapped.triggerWord}`);
  if (wanted.dropoutRate) parts.push(`dropout ${wanted.dropoutRate}`);
  if (wanted.shuffleTokens) parts.push('shuffled');
  return insertStrategy(tx, { name: `imported: ${parts.join(', ')}`.slice(0, 200), ...wanted, description: 'Inferred from an imported ai-toolkit config' });
}

/** The dataset the config trained on: the one with the same images when they could be hashed, else a record of the path. */
async function datasetFor(tx: Executor, mapped: MappedConfig, images: { fileName: string; sha256: string; width?: number | null; height?: number | null }[] | null | undefined, hasCaptions: boolean) {
  const uri = mapped.dataset.folderPath ?? '(unknown)';
  const name = path.basename(uri) || uri;
  if (images?.length) {
    const hash = contentHash(images)!;
    const found = await store.findDatasetByContent(tx, hash, uri);
    if (found) return found;
    const dataset = await insertDataset(tx, { name, uri, imageCount: images.length, contentHash: hash, description: hasCaptions ? 'Imported with an ai-toolkit run; captions are the folder\'s files' : 'Imported with an ai-toolkit run' });
    await insertImages(tx, dataset.id, images.map((i) => ({ fileName: i.fileName, sha256: i.sha256, width: i.width ?? null, height: i.height ?? null, caption: null })));
    return dataset;
  }
  return (await store.findDatasetByPath(tx, uri)) ?? insertDataset(tx, { name, uri, imageCount: 0, contentHash: null, description: 'Imported with an ai-toolkit run; its folder was not there to read' });
}

export async function beginImport(deps: ServiceDeps, principal: Principal, raw: unknown) {
  const input = parseInput(beginInput, raw, 'input');
  const mapped = mapConfig(input.trainerConfig);
  const leaseToken = randomBytes(24).toString('base64url');
  const warnings = mapped.warnings;
  return deps.db.transaction(async (tx) => {
    // Two imports of one job at once: the second waits here for the first's row, then finds it.
    await tx.execute(sqlAdvisoryLock(input.jobKey));
    const existing = await store.findImportByJobKey(tx, input.jobKey);
    if (existing) {
      const lease = await store.takeImportLease(tx, existing.runId, principal.keyId, leaseToken, IMPORT_LEASE_SECONDS, input.trainerConfig, warnings);
      if (!lease) throw apiError('CONFLICT', `This job is being imported by another key (run ${existing.runId}); try again when that import ends or its lease lapses`, { field: 'input.jobKey' });
      await store.refreshImportedRun(tx, existing.runId, input.folder, mapped.hyperparameters);
      const [run] = await findRunsByIds(tx, [existing.runId]);
      return { run: run!, leaseToken, leaseExpiresAt: lease.leaseExpiresAt!, created: false, warnings };
    }

    let experiment = await store.findExperimentByName(tx, input.experimentName);
    experiment ??= await insertExperiment(tx, { name: input.experimentName, goal: 'OTHER', description: 'Imported ai-toolkit runs' });
    const hasCaptions = input.datasetHasCaptions ?? mapped.dataset.captionExt != null;
    const dataset = await datasetFor(tx, mapped, input.datasetImages, hasCaptions);
    const strategy = await captionStrategyFor(tx, mapped, input.datasetHasCaptions);
    const hp = mapped.hyperparameters;
    const [run] = await insertRuns(tx, [
      {
        name: mapped.name.slice(0, 200),
        experimentId: experiment.id,
        datasetId: dataset.id,
        captionStrategyId: strategy.id,
        ...hyperparameterColumns(hp),
        // Not a queue state: finishImport sets the outcome the folder shows.
        status: 'CANCELLED',
        attempt: 1,
        maxAttempts: 1,
        attemptsBeforeRetry: 1,
        tags: ['imported'],
        importedFrom: input.folder,
      },
    ]);
    const imported = await store.insertImport(tx, {
      runId: run!.id,
      jobKey: input.jobKey,
      trainerConfig: input.trainerConfig,
      warnings,
      apiKeyId: principal.keyId,
      leaseToken,
      leaseExpiresAt: new Date(Date.now() + IMPORT_LEASE_SECONDS * 1000),
    });
    await appendEvents(tx, [{ runId: run!.id, type: 'IMPORTED', message: `Imported from ${input.folder}`, data: { folder: input.folder, warnings: warnings.length } }]);
    await announceRunChanged(tx, run!);
    return { run: run!, leaseToken, leaseExpiresAt: imported.leaseExpiresAt!, created: true, warnings };
  });
}

/** Serializes beginImport per job (a transaction-scoped advisory lock on the key's hash). */
function sqlAdvisoryLock(jobKey: string) {
  return sql`/* lockImportJob */ select pg_advisory_xact_lock(hashtextextended(${`loralab.import:${jobKey}`}, 0))`;
}

/** The fenced write's run, or why there is none: lease first, then ownership (as the agent protocol answers). */
async function held(tx: Executor, principal: Principal, runId: string, leaseToken: string) {
  const run = await store.heldImport(tx, { runId, leaseToken, apiKeyId: principal.keyId }, IMPORT_LEASE_SECONDS);
  if (run) return run;
  const imported = await store.findImport(tx, runId);
  if (!imported) throw notFound('runId', 'Imported run', runId);
  if (imported.leaseToken !== leaseToken || imported.leaseExpiresAt == null || imported.leaseExpiresAt < new Date()) throw leaseLost(runId);
  throw forbidden(`Run ${runId} is being imported by another key`);
}

const lossPoint = z.object({ step: z.number().int().min(0, 'must be 0 or more'), loss: z.number().min(-MAX_LOSS).max(MAX_LOSS), lr: z.number().min(-MAX_LOSS).max(MAX_LOSS).nullish(), recordedAt: time });

export async function importLoss(deps: ServiceDeps, principal: Principal, args: { runId: string; leaseToken: string; points: unknown }) {
  const runId = parseId(args.runId, 'runId');
  const points = parseInput(z.array(lossPoint).max(MAX_IMPORT_POINTS, `at most ${MAX_IMPORT_POINTS} per call`), args.points, 'points');
  const seen = new Set<number>();
  points.forEach((p, i) => {
    if (seen.has(p.step)) throw badInput(`points.${i}.step`, `step ${p.step} appears twice`);
    seen.add(p.step);
  });
  return writeLoss(deps, principal, runId, args.leaseToken, {
    steps: points.map((p) => p.step),
    losses: points.map((p) => p.loss),
    lrs: points.map((p) => p.lr ?? null),
    timesMs: points.map((p) => (p.recordedAt ? Date.parse(p.recordedAt) : null)),
  });
}

interface LossColumns {
  steps: readonly number[];
  losses: readonly number[];
  lrs?: readonly (number | null | undefined)[] | null;
  recordedAtMs?: readonly (number | null | undefined)[] | null;
}

/** What a timestamptz holds: from 4713 BC (PostgreSQL's first day) to the end of a JavaScript Date. */
const EARLIEST_MS = -210_866_803_200_000;
const LATEST_MS = 8_640_000_000_000_000;
const MAX_INT = 2_147_483_647;

/**
 * The rules of importLoss for points as columns, in plain loops rather than by a schema per point:
 * at 50,000 points a call, a schema's per-value work cost more than writing them. An error names
 * the list and the index (`points.losses.17`).
 */
function checkedColumns(points: LossColumns) {
  const { steps, losses } = points;
  const lrs = points.lrs ?? null;
  const times = points.recordedAtMs ?? null;
  if (steps.length > MAX_IMPORT_COLUMN_POINTS) throw badInput('points.steps', `at most ${MAX_IMPORT_COLUMN_POINTS} per call`);
  const sameLength = (list: readonly unknown[] | null, field: string) => {
    if (list && list.length !== steps.length) throw badInput(`points.${field}`, `must have one value per step (${steps.length}), not ${list.length}`);
  };
  sameLength(losses, 'losses');
  sameLength(lrs, 'lrs');
  sameLength(times, 'recordedAtMs');
  const inRange = (v: number) => v >= -MAX_LOSS && v <= MAX_LOSS;
  const seen = new Set<number>();
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    if (!Number.isInteger(step) || step < 0) throw badInput(`points.steps.${i}`, 'must be a whole number, 0 or more');
    if (step > MAX_INT) throw badInput(`points.steps.${i}`, `must be at most ${MAX_INT}`);
    if (seen.has(step)) throw badInput(`points.steps.${i}`, `step ${step} appears twice`);
    seen.add(step);
    if (!inRange(losses[i]!)) throw badInput(`points.losses.${i}`, `must be between ${-MAX_LOSS} and ${MAX_LOSS}`);
    const lr = lrs?.[i];
    if (lr != null && !inRange(lr)) throw badInput(`points.lrs.${i}`, `must be between ${-MAX_LOSS} and ${MAX_LOSS}`);
    const at = times?.[i];
    if (at != null && !(at >= EARLIEST_MS && at <= LATEST_MS)) throw badInput(`points.recordedAtMs.${i}`, 'must be a time (Unix milliseconds)');
  }
  const orNull = (list: readonly (number | null | undefined)[] | null) => (list ? list.map((v) => v ?? null) : null);
  // Whole milliseconds, as a Date keeps them (it drops a fraction toward zero).
  return { steps, losses, lrs: orNull(lrs), timesMs: times ? times.map((v) => (v == null ? null : Math.trunc(v))) : null };
}

/** importLoss as columns: lists of numbers, a fraction of one object per point to read. */
export async function importLossColumns(deps: ServiceDeps, principal: Principal, args: { runId: string; leaseToken: string; points: LossColumns }) {
  const runId = parseId(args.runId, 'runId');
  return writeLoss(deps, principal, runId, args.leaseToken, checkedColumns(args.points));
}

// A column of importLossText: decimal numbers (an exponent allowed) separated by commas; in a
// column that may hold nulls, an empty entry is one. The whole text is checked by one expression
// (fast), and entry by entry only to name the one at fault. A number matches in one way only (no
// digit could belong to two parts), so a bad text is refused in time linear in its length, never
// by backtracking through every split of it.
const NUMBER = String.raw`-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?`;
const WHOLE = String.raw`\d+`;
const listOf = (entry: string, nullable: boolean) => new RegExp(nullable ? `^(?:${entry})?(?:,(?:${entry})?)*$` : `^${entry}(?:,${entry})*$`);
const COLUMN = {
  steps: { list: listOf(WHOLE, false), entry: new RegExp(`^${WHOLE}$`), what: 'a whole number, 0 or more' },
  losses: { list: listOf(NUMBER, false), entry: new RegExp(`^${NUMBER}$`), what: 'a decimal number' },
  lrs: { list: listOf(NUMBER, true), entry: new RegExp(`^(?:${NUMBER})?$`), what: 'a decimal number or empty' },
  recordedAtMs: { list: listOf(NUMBER, true), entry: new RegExp(`^(?:${NUMBER})?$`), what: 'a decimal number or empty' },
} as const;

/** One column of importLossText as numbers (null for an empty entry where the column allows it). */
function parseColumn(text: string, field: keyof typeof COLUMN): (number | null)[] {
  if (text === '') return [];
  // Before any pattern runs over it: a column of more points than a call takes is refused unread.
  if (text.length > MAX_IMPORT_COLUMN_POINTS * 32) throw badInput(`points.${field}`, `at most ${MAX_IMPORT_COLUMN_POINTS} values per call`);
  const rule = COLUMN[field];
  const entries = text.split(',');
  if (!rule.list.test(text)) {
    const at = entries.findIndex((e) => !rule.entry.test(e));
    throw badInput(`points.${field}.${at}`, `must be ${rule.what}, not "${entries[at]!.slice(0, 40)}"`);
  }
  const values: (number | null)[] = new Array(entries.length);
  for (let i = 0; i < entries.length; i++) values[i] = entries[i] === '' ? null : Number(entries[i]);
  return values;
}

/**
 * importLoss with each column as one string of comma-separated numbers. Reading four strings costs
 * the server a small part of what four lists of 50,000 numbers cost GraphQL to read (each value of
 * a list is coerced and checked on its own), so a client that sends many points sends these.
 */
export async function importLossText(
  deps: ServiceDeps,
  principal: Principal,
  args: { runId: string; leaseToken: string; points: { steps: string; losses: string; lrs?: string | null; recordedAtMs?: string | null } },
) {
  const runId = parseId(args.runId, 'runId');
  const steps = parseColumn(args.points.steps, 'steps') as number[];
  if (steps.length > MAX_IMPORT_COLUMN_POINTS) throw badInput('points.steps', `at most ${MAX_IMPORT_COLUMN_POINTS} per call`);
  // An empty text is no values; for a column that may hold nulls and one point, it is that null.
  const nullable = (text: string | null | undefined, field: 'lrs' | 'recordedAtMs') => (text == null ? null : text === '' && steps.length === 1 ? [null] : parseColumn(text, field));
  const columns = checkedColumns({
    steps,
    losses: parseColumn(args.points.losses, 'losses') as number[],
    lrs: nullable(args.points.lrs, 'lrs'),
    recordedAtMs: nullable(args.points.recordedAtMs, 'recordedAtMs'),
  });
  return writeLoss(deps, principal, runId, args.leaseToken, columns);
}

async function writeLoss(
  deps: ServiceDeps,
  principal: Principal,
  runId: string,
  leaseToken: string,
  points: { steps: readonly number[]; losses: readonly number[]; lrs: readonly (number | null)[] | null; timesMs: readonly (number | null)[] | null },
) {
  let first = Infinity;
  let last = -Infinity;
  for (const step of points.steps) {
    if (step < first) first = step;
    if (step > last) last = step;
  }
  return deps.db.transaction(async (tx) => {
    const run = await held(tx, principal, runId, leaseToken);
    if (points.steps.length === 0) return { accepted: 0, duplicates: 0 };
    // held() keeps the run's import row locked until this commits, so no other write of the run
    // can add a point in this range meanwhile: a range without points is appended to.
    const append = !(await store.hasLossBetween(tx, runId, first, last));
    // PGlite takes float8 lists as bytes (float8ArrayBinary); PostgreSQL's driver as text.
    const binaryFloats = deps.db.kind === 'pglite';
    await store.holdRunForLossInsert(tx, runId);
    if (append) {
      const facts = batchFacts({ steps: points.steps as number[], losses: points.losses as number[], lrs: (points.lrs ?? []) as (number | null)[] });
      const { summarized } = await store.appendImportedLoss(tx, runId, run.attempt, points, facts, binaryFloats);
      // Steps filled in before the summary's last one: the EMA cannot take them in out of order.
      if (!summarized) await tx.execute(recomputeLossSummary(runId));
      return { accepted: points.steps.length, duplicates: 0 };
    }
    const written = await store.mergeImportedLoss(tx, runId, run.attempt, points, binaryFloats);
    if (written > 0) {
      // Rewritten or filled-in steps: the summary and the checkpoints' EMA from all the points,
      // and the blocks of the batch's range from its points (a folder that grew, or a resumed job).
      await tx.execute(markLossRewritten(first, last));
      for (const statement of afterLossBatch(runId)) await tx.execute(statement);
    }
    return { accepted: written, duplicates: points.steps.length - written };
  });
}

export async function importFiles(deps: ServiceDeps, principal: Principal, args: { runId: string; leaseToken: string; checkpoints?: unknown; samples?: unknown }) {
  const runId = parseId(args.runId, 'runId');
  const list = z.array(checkpointInput).max(MAX_IMPORT_FILES);
  const checkpoints = parseInput(list, args.checkpoints ?? [], 'checkpoints');
  const samples = parseInput(z.array(sampleInput).max(MAX_IMPORT_FILES), args.samples ?? [], 'samples');
  return deps.db.transaction(async (tx) => {
    const run = await held(tx, principal, runId, args.leaseToken);
    const [record] = await findRunsByIds(tx, [runId]);
    checkpoints.forEach((c, i) => {
      if (c.isFinal && c.step !== run.steps) throw badInput(`checkpoints.${i}.step`, `the final checkpoint is at step ${run.steps}, the run's total`);
    });
    const folder = run.imported_from;
    const added = await store.insertImportedCheckpoints(
      tx,
      runId,
      run.attempt,
      checkpoints.map((c) => ({ step: c.step, path: path.join(folder, c.fileName), sizeBytes: c.sizeBytes, sha256: c.sha256, isFinal: c.isFinal ?? false, createdAt: c.createdAt ?? null })),
    );
    if (added.length) await refreshCheckpointEma(tx, runId);
    const hp = record!.hyperparameters as { samplePrompts?: string[] };
    const imported = await store.findImport(tx, runId);
    const trigger = imported ? mapConfig(imported.trainerConfig).triggerWord : null;
    const addedSamples = await store.insertImportedSamples(
      tx,
      runId,
      run.attempt,
      samples.map((s) => ({
        step: s.step,
        promptIndex: s.promptIndex,
        prompt: promptAsSampled(hp.samplePrompts?.[s.promptIndex], trigger),
        path: path.join(folder, 'samples', s.fileName),
        createdAt: s.createdAt ?? null,
      })),
    );
    if (added.length || addedSamples.length) {
      await appendEvents(
        tx,
        added.map((c) => ({ runId, type: 'CHECKPOINT_SAVED', message: `Imported checkpoint at step ${c.step}${c.isFinal ? ' (final)' : ''}`, data: { step: c.step, checkpointId: c.id } })),
      );
      await announceRunChanged(tx, record!);
    }
    return { checkpointsAdded: added.length, samplesAdded: addedSamples.length, run: record! };
  });
}

/** The run's attempt when the import lease holds; for ArtifactService's begin (uploads under the lease). */
export const authorizeImportUpload = (principal: Principal, runId: string, leaseToken: string) => async (tx: Executor) =>
  (await held(tx, principal, runId, leaseToken)).attempt;

export async function finishImport(deps: ServiceDeps, principal: Principal, args: { runId: string; leaseToken: string; input: unknown }) {
  const runId = parseId(args.runId, 'runId');
  const input = parseInput(finishInput, args.input, 'input');
  return deps.db.transaction(async (tx) => {
    await held(tx, principal, runId, args.leaseToken);
    // Each loss batch kept the run's summary and loss blocks up to date; the checkpoints' EMA waits
    // for all the points (checkpoints and loss arrive side by side). Points written without them
    // (an import begun by an older server, which summed everything up here) are summed up now.
    if (await store.lossSummaryHolds(tx, runId)) await refreshCheckpointEma(tx, runId);
    else {
      await tx.execute(lockLossSummary(runId));
      await tx.execute(markLossRewritten(0, MAX_STEP));
      for (const statement of afterLossBatch(runId)) await tx.execute(statement);
    }
    const run = await store.finishImport(tx, runId, input.outcome, { startedAt: input.startedAt ?? null, finishedAt: input.finishedAt ?? null });
    await announceRunChanged(tx, run!);
    return run!;
  });
}
