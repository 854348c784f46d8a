// The whole domain of DESIGN.md in one drizzle schema. Migrations in drizzle/ are generated from this
// file by `npm run db:generate`; never edit them by hand.
import { sql } from 'drizzle-orm';
import { HELD_SQL, RUN_STATUSES } from '../modules/runs/lifecycle.js';
import {
  bigint,
  bigserial,
  check,
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  text,
  timestamptz,
  uniqueIndex,
  uuid,
} from './columns.js';
import type { AnyPgColumn } from 'drizzle-orm/pg-core';

export const apiKeys = pgTable(
  'api_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    role: text('role', { enum: ['VIEWER', 'EDITOR', 'ADMIN', 'AGENT'] }).notNull(),
    // sha256 of the key: keys are 256 random bits, so a slow hash adds nothing but latency per request.
    keyHash: text('key_hash').notNull(),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
    revokedAt: timestamptz('revoked_at'),
  },
  (t) => [uniqueIndex('api_keys_key_hash_idx').on(t.keyHash)],
);

export const experiments = pgTable(
  'experiments',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    goal: text('goal', { enum: ['STYLE', 'CONCEPT', 'CHARACTER', 'OTHER'] }).notNull(),
    description: text('description'),
    tags: text('tags').array().notNull().default(sql`'{}'`),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [index('experiments_created_idx').on(t.createdAt, t.id)],
);

export const datasets = pgTable(
  'datasets',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    uri: text('uri').notNull(),
    description: text('description'),
    imageCount: integer('image_count').notNull(),
    contentHash: text('content_hash'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [index('datasets_created_idx').on(t.createdAt, t.id)],
);

export const datasetImages = pgTable(
  'dataset_images',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    datasetId: uuid('dataset_id')
      .notNull()
      .references(() => datasets.id, { onDelete: 'cascade' }),
    position: integer('position').notNull(),
    fileName: text('file_name').notNull(),
    sha256: text('sha256'),
    width: integer('width'),
    height: integer('height'),
    // The dataset's own caption (what its .txt file says), as given at creation.
    caption: text('caption'),
  },
  (t) => [uniqueIndex('dataset_images_name_idx').on(t.datasetId, t.fileName), index('dataset_images_pos_idx').on(t.datasetId, t.position)],
);

export const captionStrategies = pgTable('caption_strategies', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  kind: text('kind', { enum: ['NONE', 'TRIGGER_ONLY', 'FILES', 'STORED'] }).notNull(),
  style: text('style', { enum: ['SIMPLE', 'DESCRIPTIVE', 'GENERAL', 'TAGS', 'CUSTOM'] }),
  triggerWord: text('trigger_word'),
  template: text('template'),
  dropoutRate: real('dropout_rate').notNull().default(0.05),
  shuffleTokens: boolean('shuffle_tokens').notNull().default(false),
  description: text('description'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

/** Caption texts kept in loralab, per (dataset image, STORED strategy). */
export const captions = pgTable(
  'captions',
  {
    imageId: uuid('image_id')
      .notNull()
      .references(() => datasetImages.id, { onDelete: 'cascade' }),
    strategyId: uuid('strategy_id')
      .notNull()
      .references(() => captionStrategies.id, { onDelete: 'cascade' }),
    text: text('text').notNull(),
    updatedAt: timestamptz('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.imageId, t.strategyId] })],
);

export const sweeps = pgTable('sweeps', {
  id: uuid('id').primaryKey().defaultRandom(),
  experimentId: uuid('experiment_id')
    .notNull()
    .references(() => experiments.id),
  base: jsonb('base').notNull(),
  grid: jsonb('grid').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const agents = pgTable(
  'agents',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    // The AGENT key that registered it: an agent key acts only as its own agents.
    apiKeyId: uuid('api_key_id')
      .notNull()
      .references(() => apiKeys.id),
    name: text('name').notNull(),
    hostname: text('hostname'),
    gpus: jsonb('gpus').$type<{ index: number; name: string; memoryMb: number }[]>().notNull(),
    maxGpuMemoryMb: integer('max_gpu_memory_mb').notNull(),
    gpuCount: integer('gpu_count').notNull(),
    labels: text('labels').array().notNull().default(sql`'{}'`),
    hourlyCostUsd: doublePrecision('hourly_cost_usd'),
    version: text('version'),
    draining: boolean('draining').notNull().default(false),
    lastSeenAt: timestamptz('last_seen_at').notNull().defaultNow(),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('agents_key_name_idx').on(t.apiKeyId, t.name)],
);

export const runs = pgTable(
  'runs',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id),
    datasetId: uuid('dataset_id')
      .notNull()
      .references(() => datasets.id),
    captionStrategyId: uuid('caption_strategy_id')
      .notNull()
      .references(() => captionStrategies.id),
    sweepId: uuid('sweep_id').references(() => sweeps.id),
    // Typed columns for what is compared, filtered and ordered; the full set lives in `hyperparameters`.
    baseModel: text('base_model').notNull(),
    rank: integer('rank').notNull(),
    alpha: integer('alpha').notNull(),
    learningRate: doublePrecision('learning_rate').notNull(),
    steps: integer('steps').notNull(),
    batchSize: integer('batch_size').notNull(),
    optimizer: text('optimizer').notNull(),
    hyperparameters: jsonb('hyperparameters').$type<Record<string, unknown>>().notNull(),
    minVramMb: integer('min_vram_mb').notNull().default(0),
    gpuCount: integer('gpu_count').notNull().default(1),
    labels: text('labels').array().notNull().default(sql`'{}'`),
    priority: integer('priority').notNull().default(0),
    status: text('status', {
      enum: RUN_STATUSES,
    }).notNull(),
    attempt: integer('attempt').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull().default(3),
    // `attempt` counts every claim ever; retryRun gives a new budget of maxAttempts claims from here.
    attemptsBeforeRetry: integer('attempts_before_retry').notNull().default(0),
    tags: text('tags').array().notNull().default(sql`'{}'`),
    notes: text('notes'),
    idempotencyKey: text('idempotency_key'),
    agentId: uuid('agent_id').references(() => agents.id),
    leaseToken: text('lease_token'),
    leaseExpiresAt: timestamptz('lease_expires_at'),
    // A requeued run is not claimable before this time (retry backoff).
    notBefore: timestamptz('not_before'),
    queuedAt: timestamptz('queued_at').notNull().defaultNow(),
    claimedAt: timestamptz('claimed_at'),
    startedAt: timestamptz('started_at'),
    finishedAt: timestamptz('finished_at'),
    progressStep: integer('progress_step'),
    progressTotal: integer('progress_total'),
    secondsPerStep: doublePrecision('seconds_per_step'),
    vramUsedMb: integer('vram_used_mb'),
    gpuUtilization: doublePrecision('gpu_utilization'),
    gpuSeconds: doublePrecision('gpu_seconds'),
    costUsd: doublePrecision('cost_usd'),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    errorLogTail: text('error_log_tail'),
    bestCheckpointId: uuid('best_checkpoint_id'),
    // The folder an imported run came from (absolute path); null for runs trained through loralab.
    importedFrom: text('imported_from'),
    // continueRun: the run this one trains on from, and the checkpoint of it its first attempt starts at.
    parentRunId: uuid('parent_run_id').references((): AnyPgColumn => runs.id),
    continuedFromCheckpointId: uuid('continued_from_checkpoint_id'),
    // The checkpoint the latest attempt resumed from (set by the claim); null: it started from scratch.
    resumedFromCheckpointId: uuid('resumed_from_checkpoint_id'),
    // Steps no attempt had to train again because it resumed from a checkpoint (the sum of their start steps).
    resumedSteps: integer('resumed_steps').notNull().default(0),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('runs_idempotency_key_idx').on(t.idempotencyKey),
    index('runs_experiment_idx').on(t.experimentId, t.queuedAt),
    index('runs_queued_at_idx').on(t.queuedAt, t.id),
    // The runs page's default order (newest first, then id): read off the index, not a sort of every run.
    index('runs_newest_first_idx').on(t.queuedAt.desc().nullsLast(), t.id.asc()),
    index('runs_sweep_idx').on(t.sweepId),
    // The claim scans only QUEUED runs in dispatch order.
    index('runs_dispatch_idx')
      .on(t.priority.desc(), t.queuedAt, t.id)
      .where(sql`status = 'QUEUED'`),
    index('runs_lease_idx')
      .on(t.leaseExpiresAt)
      .where(sql`status in ${HELD_SQL}`),
    index('runs_agent_idx').on(t.agentId),
    // What an agent holds now (its free GPUs, at every claim), without walking every run it ever had.
    index('runs_held_by_agent_idx')
      .on(t.agentId)
      .where(sql`status in ${HELD_SQL}`),
  ],
);

/** Maintained on every loss write so listing and comparing runs never scans loss_points. */
export const runSummaries = pgTable('run_summaries', {
  runId: uuid('run_id')
    .primaryKey()
    .references(() => runs.id, { onDelete: 'cascade' }),
  points: integer('points').notNull().default(0),
  lastStep: integer('last_step'),
  lastLoss: doublePrecision('last_loss'),
  minLoss: doublePrecision('min_loss'),
  minLossStep: integer('min_loss_step'),
  emaLoss: doublePrecision('ema_loss'),
  // The highest mean rating among the run's checkpoints, kept on every rating.
  bestMeanRating: doublePrecision('best_mean_rating'),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const lossPoints = pgTable(
  'loss_points',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    step: integer('step').notNull(),
    loss: doublePrecision('loss').notNull(),
    lr: doublePrecision('lr'),
    attempt: integer('attempt').notNull(),
    recordedAt: timestamptz('recorded_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.step] })],
);

/** A loss block's figures, the same at every level (loss_blocks, loss_coarse_blocks). */
const blockFigures = () => ({
    points: integer('points').notNull(),
    lossSum: doublePrecision('loss_sum').notNull(),
    minLoss: doublePrecision('min_loss').notNull(),
    maxLoss: doublePrecision('max_loss').notNull(),
    firstStep: integer('first_step').notNull(),
    lastStep: integer('last_step').notNull(),
    lastLoss: doublePrecision('last_loss').notNull(),
});

/**
 * A rollup of loss_points in blocks of 100 steps (block = step / 100; LOSS_BLOCK_STEPS in
 * metrics/summary-arithmetic.ts), kept in the same statement as every loss write and rebuilt where a newer attempt
 * rewrites steps. A curve whose buckets span whole blocks reads about 1,000 rows instead of 100,000
 * points, with min, max, count, sum and last still exact, so a spike stays visible.
 */
export const lossBlocks = pgTable(
  'loss_blocks',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    block: integer('block').notNull(),
    ...blockFigures(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.block] })],
);

/**
 * loss_blocks again over wider blocks, one level per COARSE_BLOCK_STEPS entry (`steps` steps per
 * block; block = step / steps), kept by the same statements. A curve over a million steps reads
 * 1,000 of these instead of 10,000 loss_blocks rows, so its cost stays flat as runs grow.
 */
export const lossCoarseBlocks = pgTable(
  'loss_coarse_blocks',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    steps: integer('steps').notNull(),
    block: integer('block').notNull(),
    ...blockFigures(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.steps, t.block] })],
);

export const checkpoints = pgTable(
  'checkpoints',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    step: integer('step').notNull(),
    path: text('path').notNull(),
    sizeBytes: doublePrecision('size_bytes'),
    sha256: text('sha256'),
    isFinal: boolean('is_final').notNull().default(false),
    // The run's EMA loss at this step, computed when the checkpoint is reported.
    emaLoss: doublePrecision('ema_loss'),
    attempt: integer('attempt').notNull(),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
    prunedAt: timestamptz('pruned_at'),
  },
  (t) => [uniqueIndex('checkpoints_run_step_idx').on(t.runId, t.step)],
);

export const samples = pgTable(
  'samples',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    step: integer('step').notNull(),
    promptIndex: integer('prompt_index').notNull(),
    prompt: text('prompt'),
    path: text('path').notNull(),
    attempt: integer('attempt').notNull(),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('samples_run_step_prompt_idx').on(t.runId, t.step, t.promptIndex)],
);

export const ratings = pgTable(
  'ratings',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    checkpointId: uuid('checkpoint_id')
      .notNull()
      .references(() => checkpoints.id, { onDelete: 'cascade' }),
    apiKeyId: uuid('api_key_id').references(() => apiKeys.id),
    score: integer('score').notNull(),
    notes: text('notes'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [index('ratings_checkpoint_idx').on(t.checkpointId)],
);

export const runEvents = pgTable(
  'run_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    message: text('message'),
    data: jsonb('data'),
    at: timestamptz('at').notNull().defaultNow(),
  },
  (t) => [index('run_events_run_idx').on(t.runId, t.id)],
);

export const ARTIFACT_KINDS = ['CHECKPOINT', 'OPTIMIZER_STATE', 'SAMPLE', 'DATASET_IMAGE', 'DATASET_CAPTION', 'TRAINER_CONFIG', 'TRAINER_LOG'] as const;

/**
 * Stored bytes, one row per distinct sha256 however many artifacts name it. A row exists only once
 * the object at storage_key was verified (size and sha256); storage keys are never reused, so
 * deleting an old object can never remove a newer upload of the same bytes.
 */
export const artifactBlobs = pgTable('artifact_blobs', {
  sha256: text('sha256').primaryKey(),
  sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
  storageKey: text('storage_key').notNull(),
  // Sniffed from the bytes, never taken from a client.
  contentType: text('content_type').notNull(),
  thumbnailKey: text('thumbnail_key'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

/**
 * A file of a run or a dataset: what was declared (kind, name, size, sha256) and whether its bytes
 * are stored. `slot` is what makes two declarations the same artifact (a checkpoint's step, a
 * sample's step and prompt, else the file name): declaring a slot again resumes its upload, or
 * replaces it when the bytes differ.
 */
export const artifacts = pgTable(
  'artifacts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    runId: uuid('run_id').references(() => runs.id, { onDelete: 'cascade' }),
    datasetId: uuid('dataset_id').references(() => datasets.id, { onDelete: 'cascade' }),
    kind: text('kind', { enum: ARTIFACT_KINDS }).notNull(),
    slot: text('slot').notNull(),
    step: integer('step'),
    promptIndex: integer('prompt_index'),
    fileName: text('file_name').notNull(),
    sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
    sha256: text('sha256').notNull(),
    // As declared until the bytes are stored, then as sniffed from them.
    contentType: text('content_type'),
    // The run attempt that declared it (run artifacts).
    attempt: integer('attempt'),
    // Only this key may complete the upload.
    begunByKeyId: uuid('begun_by_key_id')
      .notNull()
      .references(() => apiKeys.id),
    // Where the bytes are being uploaded to (a fresh storage key per upload) and the store's own
    // upload id (S3 multipart); both null once stored.
    uploadKey: text('upload_key'),
    uploadId: text('upload_id'),
    partSize: bigint('part_size', { mode: 'number' }),
    // A completeUpload verifying the bytes holds this until then; a second one waits its turn.
    completingUntil: timestamptz('completing_until'),
    storedAt: timestamptz('stored_at'),
    // The bytes were dropped by retention; the record stays.
    prunedAt: timestamptz('pruned_at'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('artifacts_run_slot_idx').on(t.runId, t.kind, t.slot).where(sql`run_id is not null`),
    uniqueIndex('artifacts_dataset_slot_idx').on(t.datasetId, t.kind, t.slot).where(sql`dataset_id is not null`),
    // Whether any artifact still references a blob (dedupe and garbage collection).
    index('artifacts_sha256_idx').on(t.sha256),
    check('artifacts_one_owner', sql`(run_id is null) <> (dataset_id is null)`),
  ],
);

/** Secrets every replica shares, made once by whichever starts first (the artifact URL signing key). */
export const serverSecrets = pgTable('server_secrets', {
  name: text('name').primaryKey(),
  value: text('value').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

/**
 * An imported run's import: which ai-toolkit job it is (`job_key`, the same wherever its folder
 * moved) and the import lease. Writes to an imported run name its lease token and come from the key
 * that holds it, like an agent's writes to a claimed run; the lease lapses on its own when an
 * importer dies, and the next import takes it over.
 */
export const runImports = pgTable(
  'run_imports',
  {
    runId: uuid('run_id')
      .primaryKey()
      .references(() => runs.id, { onDelete: 'cascade' }),
    jobKey: text('job_key').notNull(),
    // The trainer config as the folder has it (config.yaml, or the UI's .job_config.json).
    trainerConfig: text('trainer_config').notNull(),
    warnings: jsonb('warnings').$type<{ key: string; message: string }[]>().notNull().default(sql`'[]'`),
    apiKeyId: uuid('api_key_id').references(() => apiKeys.id),
    leaseToken: text('lease_token'),
    leaseExpiresAt: timestamptz('lease_expires_at'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
    finishedAt: timestamptz('finished_at'),
  },
  (t) => [uniqueIndex('run_imports_job_key_idx').on(t.jobKey)],
);
