/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
export type ApiRole =
  | 'ADMIN'
  | 'AGENT'
  | 'EDITOR'
  | 'VIEWER';

export type ArtifactKind =
  | 'CHECKPOINT'
  | 'DATASET_CAPTION'
  | 'DATASET_IMAGE'
  | 'OPTIMIZER_STATE'
  | 'SAMPLE'
  | 'TRAINER_CONFIG'
  | 'TRAINER_LOG';

export type ArtifactUploadInput = {
  contentType?: string | null | undefined;
  fileName: string;
  kind: ArtifactKind;
  promptIndex?: number | null | undefined;
  sha256: string;
  sizeBytes: number;
  step?: number | null | undefined;
};

export type CaptionInput = {
  fileName: string;
  text: string;
};

export type CaptionKind =
  | 'FILES'
  | 'NONE'
  | 'STORED'
  | 'TRIGGER_ONLY';

export type CaptionStyle =
  | 'CUSTOM'
  | 'DESCRIPTIVE'
  | 'GENERAL'
  | 'SIMPLE'
  | 'TAGS';

export type CompletedPartInput = {
  etag: string;
  number: number;
};

export type CreateCaptionStrategyInput = {
  description?: string | null | undefined;
  dropoutRate?: number | null | undefined;
  kind: CaptionKind;
  name: string;
  shuffleTokens?: boolean | null | undefined;
  style?: CaptionStyle | null | undefined;
  template?: string | null | undefined;
  triggerWord?: string | null | undefined;
};

export type CreateDatasetInput = {
  description?: string | null | undefined;
  images: Array<DatasetImageInput>;
  name: string;
  /** A folder every agent can read (absolute path or file://). Without it the dataset is stored in loralab: its uri reads loralab://datasets/<id>, each image needs its sha256, and the bytes come through beginDatasetUpload. */
  uri?: string | null | undefined;
};

export type CreateExperimentInput = {
  description?: string | null | undefined;
  goal: ExperimentGoal;
  name: string;
  tags?: Array<string> | null | undefined;
};

export type DatasetImageInput = {
  caption?: string | null | undefined;
  fileName: string;
  height?: number | null | undefined;
  sha256?: string | null | undefined;
  width?: number | null | undefined;
};

export type ExperimentGoal =
  | 'CHARACTER'
  | 'CONCEPT'
  | 'OTHER'
  | 'STYLE';

export type HyperparametersInput = {
  alpha?: number | null | undefined;
  baseModel?: string | null | undefined;
  batchSize?: number | null | undefined;
  checkpointsToKeep?: number | null | undefined;
  dtype?: string | null | undefined;
  extra?: unknown;
  gradientAccumulation?: number | null | undefined;
  guidanceScale?: number | null | undefined;
  learningRate?: number | null | undefined;
  lrScheduler?: string | null | undefined;
  noiseScheduler?: string | null | undefined;
  optimizer?: string | null | undefined;
  quantize?: boolean | null | undefined;
  rank?: number | null | undefined;
  resolutions?: Array<number> | null | undefined;
  sampleEvery?: number | null | undefined;
  sampleHeight?: number | null | undefined;
  samplePrompts?: Array<string> | null | undefined;
  sampleSeed?: number | null | undefined;
  sampleSteps?: number | null | undefined;
  /** 1 to 8 distinct LoRA strengths between -4 and 4, e.g. [0.6, 0.8, 1.0]. */
  sampleStrengths?: Array<number> | null | undefined;
  sampleWidth?: number | null | undefined;
  saveEvery?: number | null | undefined;
  seed?: number | null | undefined;
  steps?: number | null | undefined;
};

/** A numeric condition; set fields are ANDed (`in` with a range means both). */
export type NumberFilter = {
  eq?: number | null | undefined;
  gte?: number | null | undefined;
  in?: Array<number> | null | undefined;
  lte?: number | null | undefined;
};

export type OrderDirection =
  | 'ASC'
  | 'DESC';

export type QueueRunInput = {
  captionStrategyId: string;
  datasetId: string;
  experimentId: string;
  hyperparameters?: HyperparametersInput | null | undefined;
  /** A repeated call with the same key returns the run the first call queued. */
  idempotencyKey?: string | null | undefined;
  maxAttempts?: number | null | undefined;
  name?: string | null | undefined;
  notes?: string | null | undefined;
  priority?: number | null | undefined;
  requirements?: RequirementsInput | null | undefined;
  tags?: Array<string> | null | undefined;
};

export type QueueSweepInput = {
  base: QueueRunInput;
  grid: SweepGridInput;
};

export type RequirementsInput = {
  gpuCount?: number | null | undefined;
  labels?: Array<string> | null | undefined;
  minVramMb?: number | null | undefined;
};

export type RunDimension =
  | 'BASE_MODEL'
  | 'BATCH_SIZE'
  | 'CAPTION_STRATEGY'
  | 'DATASET'
  | 'LEARNING_RATE'
  | 'OPTIMIZER'
  | 'RANK'
  | 'STEPS';

/** Fields are ANDed; within a field, `in` and ranges narrow it. */
export type RunFilter = {
  /** Runs this agent holds or held last. */
  agentId?: string | null | undefined;
  alpha?: NumberFilter | null | undefined;
  baseModel?: Array<string> | null | undefined;
  batchSize?: NumberFilter | null | undefined;
  captionStrategyId?: string | null | undefined;
  /** Any of these caption strategies. */
  captionStrategyIds?: Array<string> | null | undefined;
  datasetId?: string | null | undefined;
  experimentId?: string | null | undefined;
  /** Any of these runs (the runs a person picked to compare). */
  ids?: Array<string> | null | undefined;
  learningRate?: NumberFilter | null | undefined;
  optimizer?: Array<string> | null | undefined;
  priority?: NumberFilter | null | undefined;
  rank?: NumberFilter | null | undefined;
  /** Case-insensitive substring of the run's name. */
  search?: string | null | undefined;
  status?: Array<RunStatus> | null | undefined;
  steps?: NumberFilter | null | undefined;
  sweepId?: string | null | undefined;
  /** Runs carrying every one of these tags. */
  tags?: Array<string> | null | undefined;
};

export type RunOrder = {
  direction: OrderDirection;
  field: RunOrderField;
};

export type RunOrderField =
  /** The highest mean rating among the run's checkpoints. */
  | 'BEST_RATING'
  | 'COST_USD'
  | 'EMA_LOSS'
  | 'FINISHED_AT'
  | 'LAST_LOSS'
  | 'LEARNING_RATE'
  | 'MIN_LOSS'
  | 'PRIORITY'
  | 'QUEUED_AT'
  | 'RANK'
  | 'STEPS';

export type RunStatus =
  | 'CANCELLED'
  | 'CANCELLING'
  | 'CLAIMED'
  | 'FAILED'
  | 'QUEUED'
  | 'RUNNING'
  | 'SUCCEEDED';

export type SweepGridInput = {
  captionStrategyId?: Array<string> | null | undefined;
  learningRate?: Array<number> | null | undefined;
  rank?: Array<number> | null | undefined;
  steps?: Array<number> | null | undefined;
};

export type ViewerQueryVariables = Exact<{ [key: string]: never; }>;


export type ViewerQuery = { viewer: { role: ApiRole, name: string } };

export type CheckpointFieldsFragment = { id: string, step: number, sizeBytes: number | null, isFinal: boolean, prunedAt: string | null, createdAt: string, meanRating: number | null, emaLoss: number | null, downloadUrl: string | null, ratings: Array<{ id: string, score: number, notes: string | null, createdAt: string }> };

export type RateMutationVariables = Exact<{
  c: string;
  s: number;
  n?: string | null | undefined;
}>;


export type RateMutation = { rateCheckpoint: { id: string, checkpoint: { id: string, step: number, sizeBytes: number | null, isFinal: boolean, prunedAt: string | null, createdAt: string, meanRating: number | null, emaLoss: number | null, downloadUrl: string | null, ratings: Array<{ id: string, score: number, notes: string | null, createdAt: string }> } } };

export type PromoteMutationVariables = Exact<{
  r: string;
  c: string;
}>;


export type PromoteMutation = { promoteCheckpoint: { id: string, bestCheckpoint: { id: string } | null } };

export type BeginDatasetUploadMutationVariables = Exact<{
  d: string;
  i: ArtifactUploadInput;
}>;


export type BeginDatasetUploadMutation = { beginDatasetUpload: { alreadyStored: boolean, partSize: number | null, artifact: { id: string, stored: boolean }, parts: Array<{ number: number, url: string }> } };

export type CompleteUploadMutationVariables = Exact<{
  a: string;
  p: Array<CompletedPartInput> | CompletedPartInput;
}>;


export type CompleteUploadMutation = { completeUpload: { id: string, stored: boolean } };

export type SampleFieldsFragment = { id: string, step: number, promptIndex: number, strength: number, prompt: string | null, url: string | null, thumbnailUrl: string | null };

export type AgentsQueryVariables = Exact<{ [key: string]: never; }>;


export type AgentsQuery = { viewer: { role: ApiRole, agent: { id: string } | null }, agents: Array<{ id: string, name: string, hostname: string | null, labels: Array<string>, hourlyCostUsd: number | null, status: string, lastSeenAt: string | null, version: string | null, gpus: Array<{ index: number, name: string, memoryMb: number }>, currentRun: { id: string, name: string, status: RunStatus, progress: { step: number, totalSteps: number, vramUsedMb: number | null, gpuUtilization: number | null } | null } | null }> };

export type AgentRunsQueryVariables = Exact<{
  id: string;
}>;


export type AgentRunsQuery = { runs: { totalCount: number, edges: Array<{ node: { id: string, name: string, status: RunStatus } }> } };

export type DrainMutationVariables = Exact<{
  id: string;
  d: boolean;
}>;


export type DrainMutation = { setAgentDraining: { id: string, status: string } };

export type ComparePickerQueryVariables = Exact<{
  filter?: RunFilter | null | undefined;
  all?: RunFilter | null | undefined;
}>;


export type ComparePickerQuery = { experiments: { edges: Array<{ node: { id: string, name: string } }> }, runs: { edges: Array<{ node: { id: string, name: string, status: RunStatus, sweep: { id: string } | null } }> }, sweeps: { edges: Array<{ node: { id: string, sweep: { id: string, createdAt: string } | null } }> } };

export type CurvesQueryVariables = Exact<{
  ids: Array<string> | string;
}>;


export type CurvesQuery = { lossCurves: Array<{ run: { id: string, name: string }, buckets: Array<{ step: number, mean: number }> }> };

export type CompareGroupsQueryVariables = Exact<{
  filter?: RunFilter | null | undefined;
  groupBy: Array<RunDimension> | RunDimension;
}>;


export type CompareGroupsQuery = { compareRuns: Array<{ runCount: number, succeeded: number, meanLastLoss: number | null, minLoss: number | null, meanEmaLoss: number | null, bestMeanRating: number | null, meanCostUsd: number | null, meanDurationSeconds: number | null, key: { rank: number | null, learningRate: number | null, steps: number | null, optimizer: string | null, batchSize: number | null, baseModel: string | null, captionStrategy: { id: string, name: string } | null, dataset: { id: string, name: string } | null } }> };

export type MatrixQueryVariables = Exact<{
  filter?: RunFilter | null | undefined;
}>;


export type MatrixQuery = { checkpointMatrix: { steps: Array<number>, rows: Array<{ run: { id: string, name: string, experiment: { id: string }, bestCheckpoint: { id: string } | null, captionStrategy: { id: string, triggerWord: string | null }, hyperparameters: { samplePrompts: Array<string> }, checkpoints: Array<{ id: string, step: number, sizeBytes: number | null, isFinal: boolean, prunedAt: string | null, createdAt: string, meanRating: number | null, emaLoss: number | null, downloadUrl: string | null, ratings: Array<{ id: string, score: number, notes: string | null, createdAt: string }> }>, samples: Array<{ id: string, step: number, promptIndex: number, strength: number, prompt: string | null, url: string | null, thumbnailUrl: string | null }> }, cells: Array<{ step: number, meanRating: number | null, emaLoss: number | null, checkpoint: { id: string } } | null> }> } };

export type SweepBestQueryVariables = Exact<{
  id: string;
}>;


export type SweepBestQuery = { sweep: { id: string, queued: number, running: number, done: number, createdAt: string, byLoss: { id: string, name: string, lossSummary: { emaLoss: number | null }, bestCheckpoint: { id: string, step: number, sizeBytes: number | null, isFinal: boolean, prunedAt: string | null, createdAt: string, meanRating: number | null, emaLoss: number | null, downloadUrl: string | null, ratings: Array<{ id: string, score: number, notes: string | null, createdAt: string }> } | null } | null, byRating: { id: string, name: string, bestCheckpoint: { id: string, step: number, sizeBytes: number | null, isFinal: boolean, prunedAt: string | null, createdAt: string, meanRating: number | null, emaLoss: number | null, downloadUrl: string | null, ratings: Array<{ id: string, score: number, notes: string | null, createdAt: string }> } | null } | null } | null };

export type CompareLiveSubscriptionVariables = Exact<{
  id: string;
}>;


export type CompareLiveSubscription = { runUpdated: { id: string, status: RunStatus, lossSummary: { lastStep: number | null } } };

export type CreateChoicesQueryVariables = Exact<{ [key: string]: never; }>;


export type CreateChoicesQuery = { experiments: { edges: Array<{ node: { id: string, name: string } }> }, datasets: { edges: Array<{ node: { id: string, name: string, imageCount: number, stored: boolean, uri: string } }> }, captionStrategies: Array<{ id: string, name: string, kind: CaptionKind }>, agents: Array<{ id: string, hourlyCostUsd: number | null }>, runs: { edges: Array<{ node: { id: string, progress: { secondsPerStep: number | null } | null } }> } };

export type CreateExperimentMutationVariables = Exact<{
  i: CreateExperimentInput;
}>;


export type CreateExperimentMutation = { createExperiment: { id: string, name: string } };

export type CreateDatasetMutationVariables = Exact<{
  i: CreateDatasetInput;
}>;


export type CreateDatasetMutation = { createDataset: { id: string, name: string } };

export type CreateStrategyMutationVariables = Exact<{
  i: CreateCaptionStrategyInput;
}>;


export type CreateStrategyMutation = { createCaptionStrategy: { id: string, name: string } };

export type SetCaptionsMutationVariables = Exact<{
  d: string;
  s: string;
  c: Array<CaptionInput> | CaptionInput;
}>;


export type SetCaptionsMutation = { setCaptions: number };

export type QueueRunMutationVariables = Exact<{
  i: QueueRunInput;
}>;


export type QueueRunMutation = { queueRun: { id: string, name: string } };

export type QueueSweepMutationVariables = Exact<{
  i: QueueSweepInput;
}>;


export type QueueSweepMutation = { queueSweep: Array<{ id: string, name: string, sweep: { id: string } | null }> };

export type DatasetsQueryVariables = Exact<{ [key: string]: never; }>;


export type DatasetsQuery = { datasets: { totalCount: number, edges: Array<{ node: { id: string, name: string, uri: string, imageCount: number, storedImageCount: number, stored: boolean, createdAt: string, description: string | null } }> } };

export type DatasetQueryVariables = Exact<{
  id: string;
  strategy: string;
  withCaption: boolean;
}>;


export type DatasetQuery = { dataset: { id: string, name: string, uri: string, imageCount: number, storedImageCount: number, stored: boolean, description: string | null, createdAt: string, images: { totalCount: number, edges: Array<{ node: { id: string, fileName: string, width: number | null, height: number | null, url: string | null, thumbnailUrl: string | null, sourceCaption: string | null, caption?: string | null, storedCaption?: string | null } }> } } | null, captionStrategies: Array<{ id: string, name: string, kind: CaptionKind, triggerWord: string | null, template: string | null }> };

export type SaveCaptionMutationVariables = Exact<{
  d: string;
  s: string;
  c: Array<CaptionInput> | CaptionInput;
}>;


export type SaveCaptionMutation = { setCaptions: number };

export type CaptionDiffQueryVariables = Exact<{
  id: string;
  a: string;
  b: string;
}>;


export type CaptionDiffQuery = { dataset: { id: string, captionDiff: Array<{ fileName: string, a: string | null, b: string | null }> } | null };

export type RunDetailFragment = { id: string, name: string, status: RunStatus, attempt: number, maxAttempts: number, priority: number, queuedAt: string, startedAt: string | null, finishedAt: string | null, tags: Array<string>, notes: string | null, gpuSeconds: number | null, costUsd: number | null, storageBytes: number, resumedSteps: number, experiment: { id: string, name: string }, dataset: { id: string, name: string, imageCount: number }, captionStrategy: { id: string, name: string, kind: CaptionKind, style: CaptionStyle | null, triggerWord: string | null, template: string | null }, hyperparameters: { baseModel: string, rank: number, alpha: number, learningRate: number, steps: number, batchSize: number, gradientAccumulation: number, optimizer: string, lrScheduler: string, saveEvery: number, sampleEvery: number, samplePrompts: Array<string>, resolutions: Array<number>, quantize: boolean, dtype: string }, progress: { step: number, totalSteps: number, secondsPerStep: number | null, etaSeconds: number | null, vramUsedMb: number | null, gpuUtilization: number | null } | null, lossSummary: { points: number, lastStep: number | null, lastLoss: number | null, minLoss: number | null, minLossStep: number | null, emaLoss: number | null }, agent: { id: string, name: string, hostname: string | null } | null, error: { code: string, message: string, logTail: string | null } | null, sweep: { id: string } | null, resumedFrom: { id: string, step: number, run: { id: string } } | null, parent: { id: string, name: string } | null, continuations: Array<{ id: string, name: string, status: RunStatus }>, bestCheckpoint: { id: string } | null, checkpoints: Array<{ id: string, step: number, sizeBytes: number | null, isFinal: boolean, prunedAt: string | null, createdAt: string, meanRating: number | null, emaLoss: number | null, downloadUrl: string | null, ratings: Array<{ id: string, score: number, notes: string | null, createdAt: string }> }>, samples: Array<{ id: string, step: number, promptIndex: number, strength: number, prompt: string | null, url: string | null, thumbnailUrl: string | null }> };

export type RunEventFieldsFragment = { id: string, type: string, message: string | null, data: unknown, at: string };

export type CurveQueryVariables = Exact<{
  id: string;
}>;


export type CurveQuery = { run: { id: string, lossCurve: Array<{ step: number, toStep: number, min: number, max: number, mean: number, count: number }> } | null };

export type RunLossSubscriptionVariables = Exact<{
  id: string;
  since?: number | null | undefined;
}>;


export type RunLossSubscription = { runLoss: { points: Array<{ step: number, loss: number }> } };

export type RunPageQueryVariables = Exact<{
  id: string;
}>;


export type RunPageQuery = { run: { trainerConfig: string, id: string, name: string, status: RunStatus, attempt: number, maxAttempts: number, priority: number, queuedAt: string, startedAt: string | null, finishedAt: string | null, tags: Array<string>, notes: string | null, gpuSeconds: number | null, costUsd: number | null, storageBytes: number, resumedSteps: number, events: Array<{ id: string, type: string, message: string | null, data: unknown, at: string }>, experiment: { id: string, name: string }, dataset: { id: string, name: string, imageCount: number }, captionStrategy: { id: string, name: string, kind: CaptionKind, style: CaptionStyle | null, triggerWord: string | null, template: string | null }, hyperparameters: { baseModel: string, rank: number, alpha: number, learningRate: number, steps: number, batchSize: number, gradientAccumulation: number, optimizer: string, lrScheduler: string, saveEvery: number, sampleEvery: number, samplePrompts: Array<string>, resolutions: Array<number>, quantize: boolean, dtype: string }, progress: { step: number, totalSteps: number, secondsPerStep: number | null, etaSeconds: number | null, vramUsedMb: number | null, gpuUtilization: number | null } | null, lossSummary: { points: number, lastStep: number | null, lastLoss: number | null, minLoss: number | null, minLossStep: number | null, emaLoss: number | null }, agent: { id: string, name: string, hostname: string | null } | null, error: { code: string, message: string, logTail: string | null } | null, sweep: { id: string } | null, resumedFrom: { id: string, step: number, run: { id: string } } | null, parent: { id: string, name: string } | null, continuations: Array<{ id: string, name: string, status: RunStatus }>, bestCheckpoint: { id: string } | null, checkpoints: Array<{ id: string, step: number, sizeBytes: number | null, isFinal: boolean, prunedAt: string | null, createdAt: string, meanRating: number | null, emaLoss: number | null, downloadUrl: string | null, ratings: Array<{ id: string, score: number, notes: string | null, createdAt: string }> }>, samples: Array<{ id: string, step: number, promptIndex: number, strength: number, prompt: string | null, url: string | null, thumbnailUrl: string | null }> } | null, agents: Array<{ id: string, name: string }> };

export type RunLiveSubscriptionVariables = Exact<{
  id: string;
}>;


export type RunLiveSubscription = { runUpdated: { id: string, name: string, status: RunStatus, attempt: number, maxAttempts: number, priority: number, queuedAt: string, startedAt: string | null, finishedAt: string | null, tags: Array<string>, notes: string | null, gpuSeconds: number | null, costUsd: number | null, storageBytes: number, resumedSteps: number, experiment: { id: string, name: string }, dataset: { id: string, name: string, imageCount: number }, captionStrategy: { id: string, name: string, kind: CaptionKind, style: CaptionStyle | null, triggerWord: string | null, template: string | null }, hyperparameters: { baseModel: string, rank: number, alpha: number, learningRate: number, steps: number, batchSize: number, gradientAccumulation: number, optimizer: string, lrScheduler: string, saveEvery: number, sampleEvery: number, samplePrompts: Array<string>, resolutions: Array<number>, quantize: boolean, dtype: string }, progress: { step: number, totalSteps: number, secondsPerStep: number | null, etaSeconds: number | null, vramUsedMb: number | null, gpuUtilization: number | null } | null, lossSummary: { points: number, lastStep: number | null, lastLoss: number | null, minLoss: number | null, minLossStep: number | null, emaLoss: number | null }, agent: { id: string, name: string, hostname: string | null } | null, error: { code: string, message: string, logTail: string | null } | null, sweep: { id: string } | null, resumedFrom: { id: string, step: number, run: { id: string } } | null, parent: { id: string, name: string } | null, continuations: Array<{ id: string, name: string, status: RunStatus }>, bestCheckpoint: { id: string } | null, checkpoints: Array<{ id: string, step: number, sizeBytes: number | null, isFinal: boolean, prunedAt: string | null, createdAt: string, meanRating: number | null, emaLoss: number | null, downloadUrl: string | null, ratings: Array<{ id: string, score: number, notes: string | null, createdAt: string }> }>, samples: Array<{ id: string, step: number, promptIndex: number, strength: number, prompt: string | null, url: string | null, thumbnailUrl: string | null }> } };

export type RunEventsLiveSubscriptionVariables = Exact<{
  id: string;
}>;


export type RunEventsLiveSubscription = { runEvents: { id: string, type: string, message: string | null, data: unknown, at: string } };

export type CancelRunMutationVariables = Exact<{
  id: string;
}>;


export type CancelRunMutation = { cancelRun: { id: string, name: string, status: RunStatus, attempt: number, maxAttempts: number, priority: number, queuedAt: string, startedAt: string | null, finishedAt: string | null, tags: Array<string>, notes: string | null, gpuSeconds: number | null, costUsd: number | null, storageBytes: number, resumedSteps: number, experiment: { id: string, name: string }, dataset: { id: string, name: string, imageCount: number }, captionStrategy: { id: string, name: string, kind: CaptionKind, style: CaptionStyle | null, triggerWord: string | null, template: string | null }, hyperparameters: { baseModel: string, rank: number, alpha: number, learningRate: number, steps: number, batchSize: number, gradientAccumulation: number, optimizer: string, lrScheduler: string, saveEvery: number, sampleEvery: number, samplePrompts: Array<string>, resolutions: Array<number>, quantize: boolean, dtype: string }, progress: { step: number, totalSteps: number, secondsPerStep: number | null, etaSeconds: number | null, vramUsedMb: number | null, gpuUtilization: number | null } | null, lossSummary: { points: number, lastStep: number | null, lastLoss: number | null, minLoss: number | null, minLossStep: number | null, emaLoss: number | null }, agent: { id: string, name: string, hostname: string | null } | null, error: { code: string, message: string, logTail: string | null } | null, sweep: { id: string } | null, resumedFrom: { id: string, step: number, run: { id: string } } | null, parent: { id: string, name: string } | null, continuations: Array<{ id: string, name: string, status: RunStatus }>, bestCheckpoint: { id: string } | null, checkpoints: Array<{ id: string, step: number, sizeBytes: number | null, isFinal: boolean, prunedAt: string | null, createdAt: string, meanRating: number | null, emaLoss: number | null, downloadUrl: string | null, ratings: Array<{ id: string, score: number, notes: string | null, createdAt: string }> }>, samples: Array<{ id: string, step: number, promptIndex: number, strength: number, prompt: string | null, url: string | null, thumbnailUrl: string | null }> } };

export type RetryRunMutationVariables = Exact<{
  id: string;
}>;


export type RetryRunMutation = { retryRun: { id: string, name: string, status: RunStatus, attempt: number, maxAttempts: number, priority: number, queuedAt: string, startedAt: string | null, finishedAt: string | null, tags: Array<string>, notes: string | null, gpuSeconds: number | null, costUsd: number | null, storageBytes: number, resumedSteps: number, experiment: { id: string, name: string }, dataset: { id: string, name: string, imageCount: number }, captionStrategy: { id: string, name: string, kind: CaptionKind, style: CaptionStyle | null, triggerWord: string | null, template: string | null }, hyperparameters: { baseModel: string, rank: number, alpha: number, learningRate: number, steps: number, batchSize: number, gradientAccumulation: number, optimizer: string, lrScheduler: string, saveEvery: number, sampleEvery: number, samplePrompts: Array<string>, resolutions: Array<number>, quantize: boolean, dtype: string }, progress: { step: number, totalSteps: number, secondsPerStep: number | null, etaSeconds: number | null, vramUsedMb: number | null, gpuUtilization: number | null } | null, lossSummary: { points: number, lastStep: number | null, lastLoss: number | null, minLoss: number | null, minLossStep: number | null, emaLoss: number | null }, agent: { id: string, name: string, hostname: string | null } | null, error: { code: string, message: string, logTail: string | null } | null, sweep: { id: string } | null, resumedFrom: { id: string, step: number, run: { id: string } } | null, parent: { id: string, name: string } | null, continuations: Array<{ id: string, name: string, status: RunStatus }>, bestCheckpoint: { id: string } | null, checkpoints: Array<{ id: string, step: number, sizeBytes: number | null, isFinal: boolean, prunedAt: string | null, createdAt: string, meanRating: number | null, emaLoss: number | null, downloadUrl: string | null, ratings: Array<{ id: string, score: number, notes: string | null, createdAt: string }> }>, samples: Array<{ id: string, step: number, promptIndex: number, strength: number, prompt: string | null, url: string | null, thumbnailUrl: string | null }> } };

export type ContinueRunMutationVariables = Exact<{
  id: string;
  steps: number;
}>;


export type ContinueRunMutation = { continueRun: { id: string } };

export type RunRowFragment = { id: string, name: string, status: RunStatus, priority: number, queuedAt: string, costUsd: number | null, experiment: { id: string, name: string }, dataset: { id: string, name: string }, captionStrategy: { id: string, name: string, style: CaptionStyle | null }, hyperparameters: { rank: number, learningRate: number, steps: number }, progress: { step: number, totalSteps: number, secondsPerStep: number | null, etaSeconds: number | null } | null, lossSummary: { lastStep: number | null, lastLoss: number | null, minLoss: number | null, emaLoss: number | null }, agent: { id: string, name: string } | null, sweep: { id: string, createdAt: string } | null, bestCheckpoint: { id: string, meanRating: number | null } | null };

export type RunsQueryVariables = Exact<{
  filter?: RunFilter | null | undefined;
  orderBy?: RunOrder | null | undefined;
  first?: number | null | undefined;
}>;


export type RunsQuery = { runs: { totalCount: number, edges: Array<{ node: { id: string, name: string, status: RunStatus, priority: number, queuedAt: string, costUsd: number | null, experiment: { id: string, name: string }, dataset: { id: string, name: string }, captionStrategy: { id: string, name: string, style: CaptionStyle | null }, hyperparameters: { rank: number, learningRate: number, steps: number }, progress: { step: number, totalSteps: number, secondsPerStep: number | null, etaSeconds: number | null } | null, lossSummary: { lastStep: number | null, lastLoss: number | null, minLoss: number | null, emaLoss: number | null }, agent: { id: string, name: string } | null, sweep: { id: string, createdAt: string } | null, bestCheckpoint: { id: string, meanRating: number | null } | null } }> } };

export type RunsLiveSubscriptionVariables = Exact<{
  id: string;
}>;


export type RunsLiveSubscription = { runUpdated: { id: string, name: string, status: RunStatus, priority: number, queuedAt: string, costUsd: number | null, experiment: { id: string, name: string }, dataset: { id: string, name: string }, captionStrategy: { id: string, name: string, style: CaptionStyle | null }, hyperparameters: { rank: number, learningRate: number, steps: number }, progress: { step: number, totalSteps: number, secondsPerStep: number | null, etaSeconds: number | null } | null, lossSummary: { lastStep: number | null, lastLoss: number | null, minLoss: number | null, emaLoss: number | null }, agent: { id: string, name: string } | null, sweep: { id: string, createdAt: string } | null, bestCheckpoint: { id: string, meanRating: number | null } | null } };

export type RunChoicesQueryVariables = Exact<{
  filter?: RunFilter | null | undefined;
}>;


export type RunChoicesQuery = { experiments: { edges: Array<{ node: { id: string, name: string } }> }, captionStrategies: Array<{ id: string, name: string }>, runs: { edges: Array<{ node: { id: string, sweep: { id: string, createdAt: string } | null } }> } };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}
export const CheckpointFieldsFragmentDoc = new TypedDocumentString(`
    fragment CheckpointFields on Checkpoint {
  id
  step
  sizeBytes
  isFinal
  prunedAt
  createdAt
  meanRating
  emaLoss
  downloadUrl
  ratings {
    id
    score
    notes
    createdAt
  }
}
    `, {"fragmentName":"CheckpointFields"}) as unknown as TypedDocumentString<CheckpointFieldsFragment, unknown>;
export const SampleFieldsFragmentDoc = new TypedDocumentString(`
    fragment SampleFields on Sample {
  id
  step
  promptIndex
  strength
  prompt
  url
  thumbnailUrl
}
    `, {"fragmentName":"SampleFields"}) as unknown as TypedDocumentString<SampleFieldsFragment, unknown>;
export const RunDetailFragmentDoc = new TypedDocumentString(`
    fragment RunDetail on Run {
  id
  name
  status
  attempt
  maxAttempts
  priority
  queuedAt
  startedAt
  finishedAt
  tags
  notes
  experiment {
    id
    name
  }
  dataset {
    id
    name
    imageCount
  }
  captionStrategy {
    id
    name
    kind
    style
    triggerWord
    template
  }
  hyperparameters {
    baseModel
    rank
    alpha
    learningRate
    steps
    batchSize
    gradientAccumulation
    optimizer
    lrScheduler
    saveEvery
    sampleEvery
    samplePrompts
    resolutions
    quantize
    dtype
  }
  progress {
    step
    totalSteps
    secondsPerStep
    etaSeconds
    vramUsedMb
    gpuUtilization
  }
  lossSummary {
    points
    lastStep
    lastLoss
    minLoss
    minLossStep
    emaLoss
  }
  agent {
    id
    name
    hostname
  }
  error {
    code
    message
    logTail
  }
  gpuSeconds
  costUsd
  storageBytes
  sweep {
    id
  }
  resumedSteps
  resumedFrom {
    id
    step
    run {
      id
    }
  }
  parent {
    id
    name
  }
  continuations {
    id
    name
    status
  }
  bestCheckpoint {
    id
  }
  checkpoints {
    ...CheckpointFields
  }
  samples {
    ...SampleFields
  }
}
    fragment CheckpointFields on Checkpoint {
  id
  step
  sizeBytes
  isFinal
  prunedAt
  createdAt
  meanRating
  emaLoss
  downloadUrl
  ratings {
    id
    score
    notes
    createdAt
  }
}
fragment SampleFields on Sample {
  id
  step
  promptIndex
  strength
  prompt
  url
  thumbnailUrl
}`, {"fragmentName":"RunDetail"}) as unknown as TypedDocumentString<RunDetailFragment, unknown>;
export const RunEventFieldsFragmentDoc = new TypedDocumentString(`
    fragment RunEventFields on RunEvent {
  id
  type
  message
  data
  at
}
    `, {"fragmentName":"RunEventFields"}) as unknown as TypedDocumentString<RunEventFieldsFragment, unknown>;
export const RunRowFragmentDoc = new TypedDocumentString(`
    fragment RunRow on Run {
  id
  name
  status
  priority
  queuedAt
  costUsd
  experiment {
    id
    name
  }
  dataset {
    id
    name
  }
  captionStrategy {
    id
    name
    style
  }
  hyperparameters {
    rank
    learningRate
    steps
  }
  progress {
    step
    totalSteps
    secondsPerStep
    etaSeconds
  }
  lossSummary {
    lastStep
    lastLoss
    minLoss
    emaLoss
  }
  agent {
    id
    name
  }
  sweep {
    id
    createdAt
  }
  bestCheckpoint {
    id
    meanRating
  }
}
    `, {"fragmentName":"RunRow"}) as unknown as TypedDocumentString<RunRowFragment, unknown>;
export const ViewerDocument = new TypedDocumentString(`
    query Viewer {
  viewer {
    role
    name
  }
}
    `) as unknown as TypedDocumentString<ViewerQuery, ViewerQueryVariables>;
export const RateDocument = new TypedDocumentString(`
    mutation Rate($c: ID!, $s: Int!, $n: String) {
  rateCheckpoint(checkpointId: $c, score: $s, notes: $n) {
    id
    checkpoint {
      ...CheckpointFields
    }
  }
}
    fragment CheckpointFields on Checkpoint {
  id
  step
  sizeBytes
  isFinal
  prunedAt
  createdAt
  meanRating
  emaLoss
  downloadUrl
  ratings {
    id
    score
    notes
    createdAt
  }
}`) as unknown as TypedDocumentString<RateMutation, RateMutationVariables>;
export const PromoteDocument = new TypedDocumentString(`
    mutation Promote($r: ID!, $c: ID!) {
  promoteCheckpoint(runId: $r, checkpointId: $c) {
    id
    bestCheckpoint {
      id
    }
  }
}
    `) as unknown as TypedDocumentString<PromoteMutation, PromoteMutationVariables>;
export const BeginDatasetUploadDocument = new TypedDocumentString(`
    mutation BeginDatasetUpload($d: ID!, $i: ArtifactUploadInput!) {
  beginDatasetUpload(datasetId: $d, input: $i) {
    artifact {
      id
      stored
    }
    alreadyStored
    partSize
    parts {
      number
      url
    }
  }
}
    `) as unknown as TypedDocumentString<BeginDatasetUploadMutation, BeginDatasetUploadMutationVariables>;
export const CompleteUploadDocument = new TypedDocumentString(`
    mutation CompleteUpload($a: ID!, $p: [CompletedPartInput!]!) {
  completeUpload(artifactId: $a, parts: $p) {
    id
    stored
  }
}
    `) as unknown as TypedDocumentString<CompleteUploadMutation, CompleteUploadMutationVariables>;
export const AgentsDocument = new TypedDocumentString(`
    query Agents {
  viewer {
    role
    agent {
      id
    }
  }
  agents {
    id
    name
    hostname
    gpus {
      index
      name
      memoryMb
    }
    labels
    hourlyCostUsd
    status
    lastSeenAt
    version
    currentRun {
      id
      name
      status
      progress {
        step
        totalSteps
        vramUsedMb
        gpuUtilization
      }
    }
  }
}
    `) as unknown as TypedDocumentString<AgentsQuery, AgentsQueryVariables>;
export const AgentRunsDocument = new TypedDocumentString(`
    query AgentRuns($id: ID!) {
  runs(filter: {agentId: $id}, first: 5) {
    totalCount
    edges {
      node {
        id
        name
        status
      }
    }
  }
}
    `) as unknown as TypedDocumentString<AgentRunsQuery, AgentRunsQueryVariables>;
export const DrainDocument = new TypedDocumentString(`
    mutation Drain($id: ID!, $d: Boolean!) {
  setAgentDraining(agentId: $id, draining: $d) {
    id
    status
  }
}
    `) as unknown as TypedDocumentString<DrainMutation, DrainMutationVariables>;
export const ComparePickerDocument = new TypedDocumentString(`
    query ComparePicker($filter: RunFilter, $all: RunFilter) {
  experiments(first: 500) {
    edges {
      node {
        id
        name
      }
    }
  }
  runs(filter: $filter, first: 200) {
    edges {
      node {
        id
        name
        status
        sweep {
          id
        }
      }
    }
  }
  sweeps: runs(filter: $all, first: 500) {
    edges {
      node {
        id
        sweep {
          id
          createdAt
        }
      }
    }
  }
}
    `) as unknown as TypedDocumentString<ComparePickerQuery, ComparePickerQueryVariables>;
export const CurvesDocument = new TypedDocumentString(`
    query Curves($ids: [ID!]!) {
  lossCurves(runIds: $ids, maxPoints: 500) {
    run {
      id
      name
    }
    buckets {
      step
      mean
    }
  }
}
    `) as unknown as TypedDocumentString<CurvesQuery, CurvesQueryVariables>;
export const CompareGroupsDocument = new TypedDocumentString(`
    query CompareGroups($filter: RunFilter, $groupBy: [RunDimension!]!) {
  compareRuns(filter: $filter, groupBy: $groupBy) {
    key {
      rank
      learningRate
      steps
      captionStrategy {
        id
        name
      }
      dataset {
        id
        name
      }
      optimizer
      batchSize
      baseModel
    }
    runCount
    succeeded
    meanLastLoss
    minLoss
    meanEmaLoss
    bestMeanRating
    meanCostUsd
    meanDurationSeconds
  }
}
    `) as unknown as TypedDocumentString<CompareGroupsQuery, CompareGroupsQueryVariables>;
export const MatrixDocument = new TypedDocumentString(`
    query Matrix($filter: RunFilter) {
  checkpointMatrix(filter: $filter) {
    steps
    rows {
      run {
        id
        name
        experiment {
          id
        }
        bestCheckpoint {
          id
        }
        captionStrategy {
          id
          triggerWord
        }
        hyperparameters {
          samplePrompts
        }
        checkpoints {
          ...CheckpointFields
        }
        samples {
          ...SampleFields
        }
      }
      cells {
        step
        checkpoint {
          id
        }
        meanRating
        emaLoss
      }
    }
  }
}
    fragment CheckpointFields on Checkpoint {
  id
  step
  sizeBytes
  isFinal
  prunedAt
  createdAt
  meanRating
  emaLoss
  downloadUrl
  ratings {
    id
    score
    notes
    createdAt
  }
}
fragment SampleFields on Sample {
  id
  step
  promptIndex
  strength
  prompt
  url
  thumbnailUrl
}`) as unknown as TypedDocumentString<MatrixQuery, MatrixQueryVariables>;
export const SweepBestDocument = new TypedDocumentString(`
    query SweepBest($id: ID!) {
  sweep(id: $id) {
    id
    queued
    running
    done
    createdAt
    byLoss: bestRun(by: EMA_LOSS) {
      id
      name
      lossSummary {
        emaLoss
      }
      bestCheckpoint {
        ...CheckpointFields
      }
    }
    byRating: bestRun(by: BEST_RATING) {
      id
      name
      bestCheckpoint {
        ...CheckpointFields
      }
    }
  }
}
    fragment CheckpointFields on Checkpoint {
  id
  step
  sizeBytes
  isFinal
  prunedAt
  createdAt
  meanRating
  emaLoss
  downloadUrl
  ratings {
    id
    score
    notes
    createdAt
  }
}`) as unknown as TypedDocumentString<SweepBestQuery, SweepBestQueryVariables>;
export const CompareLiveDocument = new TypedDocumentString(`
    subscription CompareLive($id: ID!) {
  runUpdated(experimentId: $id) {
    id
    status
    lossSummary {
      lastStep
    }
  }
}
    `) as unknown as TypedDocumentString<CompareLiveSubscription, CompareLiveSubscriptionVariables>;
export const CreateChoicesDocument = new TypedDocumentString(`
    query CreateChoices {
  experiments(first: 500) {
    edges {
      node {
        id
        name
      }
    }
  }
  datasets(first: 200) {
    edges {
      node {
        id
        name
        imageCount
        stored
        uri
      }
    }
  }
  captionStrategies {
    id
    name
    kind
  }
  agents {
    id
    hourlyCostUsd
  }
  runs(first: 50, filter: {status: [RUNNING, SUCCEEDED]}) {
    edges {
      node {
        id
        progress {
          secondsPerStep
        }
      }
    }
  }
}
    `) as unknown as TypedDocumentString<CreateChoicesQuery, CreateChoicesQueryVariables>;
export const CreateExperimentDocument = new TypedDocumentString(`
    mutation CreateExperiment($i: CreateExperimentInput!) {
  createExperiment(input: $i) {
    id
    name
  }
}
    `) as unknown as TypedDocumentString<CreateExperimentMutation, CreateExperimentMutationVariables>;
export const CreateDatasetDocument = new TypedDocumentString(`
    mutation CreateDataset($i: CreateDatasetInput!) {
  createDataset(input: $i) {
    id
    name
  }
}
    `) as unknown as TypedDocumentString<CreateDatasetMutation, CreateDatasetMutationVariables>;
export const CreateStrategyDocument = new TypedDocumentString(`
    mutation CreateStrategy($i: CreateCaptionStrategyInput!) {
  createCaptionStrategy(input: $i) {
    id
    name
  }
}
    `) as unknown as TypedDocumentString<CreateStrategyMutation, CreateStrategyMutationVariables>;
export const SetCaptionsDocument = new TypedDocumentString(`
    mutation SetCaptions($d: ID!, $s: ID!, $c: [CaptionInput!]!) {
  setCaptions(datasetId: $d, strategyId: $s, captions: $c)
}
    `) as unknown as TypedDocumentString<SetCaptionsMutation, SetCaptionsMutationVariables>;
export const QueueRunDocument = new TypedDocumentString(`
    mutation QueueRun($i: QueueRunInput!) {
  queueRun(input: $i) {
    id
    name
  }
}
    `) as unknown as TypedDocumentString<QueueRunMutation, QueueRunMutationVariables>;
export const QueueSweepDocument = new TypedDocumentString(`
    mutation QueueSweep($i: QueueSweepInput!) {
  queueSweep(input: $i) {
    id
    name
    sweep {
      id
    }
  }
}
    `) as unknown as TypedDocumentString<QueueSweepMutation, QueueSweepMutationVariables>;
export const DatasetsDocument = new TypedDocumentString(`
    query Datasets {
  datasets(first: 200) {
    totalCount
    edges {
      node {
        id
        name
        uri
        imageCount
        storedImageCount
        stored
        createdAt
        description
      }
    }
  }
}
    `) as unknown as TypedDocumentString<DatasetsQuery, DatasetsQueryVariables>;
export const DatasetDocument = new TypedDocumentString(`
    query Dataset($id: ID!, $strategy: ID!, $withCaption: Boolean!) {
  dataset(id: $id) {
    id
    name
    uri
    imageCount
    storedImageCount
    stored
    description
    createdAt
    images(first: 500) {
      totalCount
      edges {
        node {
          id
          fileName
          width
          height
          url
          thumbnailUrl
          sourceCaption
          caption(strategyId: $strategy) @include(if: $withCaption)
          storedCaption(strategyId: $strategy) @include(if: $withCaption)
        }
      }
    }
  }
  captionStrategies {
    id
    name
    kind
    triggerWord
    template
  }
}
    `) as unknown as TypedDocumentString<DatasetQuery, DatasetQueryVariables>;
export const SaveCaptionDocument = new TypedDocumentString(`
    mutation SaveCaption($d: ID!, $s: ID!, $c: [CaptionInput!]!) {
  setCaptions(datasetId: $d, strategyId: $s, captions: $c)
}
    `) as unknown as TypedDocumentString<SaveCaptionMutation, SaveCaptionMutationVariables>;
export const CaptionDiffDocument = new TypedDocumentString(`
    query CaptionDiff($id: ID!, $a: ID!, $b: ID!) {
  dataset(id: $id) {
    id
    captionDiff(strategyA: $a, strategyB: $b) {
      fileName
      a
      b
    }
  }
}
    `) as unknown as TypedDocumentString<CaptionDiffQuery, CaptionDiffQueryVariables>;
export const CurveDocument = new TypedDocumentString(`
    query Curve($id: ID!) {
  run(id: $id) {
    id
    lossCurve(maxPoints: 1000) {
      step
      toStep
      min
      max
      mean
      count
    }
  }
}
    `) as unknown as TypedDocumentString<CurveQuery, CurveQueryVariables>;
export const RunLossDocument = new TypedDocumentString(`
    subscription RunLoss($id: ID!, $since: Int) {
  runLoss(runId: $id, sinceStep: $since) {
    points {
      step
      loss
    }
  }
}
    `) as unknown as TypedDocumentString<RunLossSubscription, RunLossSubscriptionVariables>;
export const RunPageDocument = new TypedDocumentString(`
    query RunPage($id: ID!) {
  run(id: $id) {
    ...RunDetail
    trainerConfig
    events(first: 100) {
      ...RunEventFields
    }
  }
  agents {
    id
    name
  }
}
    fragment CheckpointFields on Checkpoint {
  id
  step
  sizeBytes
  isFinal
  prunedAt
  createdAt
  meanRating
  emaLoss
  downloadUrl
  ratings {
    id
    score
    notes
    createdAt
  }
}
fragment SampleFields on Sample {
  id
  step
  promptIndex
  strength
  prompt
  url
  thumbnailUrl
}
fragment RunDetail on Run {
  id
  name
  status
  attempt
  maxAttempts
  priority
  queuedAt
  startedAt
  finishedAt
  tags
  notes
  experiment {
    id
    name
  }
  dataset {
    id
    name
    imageCount
  }
  captionStrategy {
    id
    name
    kind
    style
    triggerWord
    template
  }
  hyperparameters {
    baseModel
    rank
    alpha
    learningRate
    steps
    batchSize
    gradientAccumulation
    optimizer
    lrScheduler
    saveEvery
    sampleEvery
    samplePrompts
    resolutions
    quantize
    dtype
  }
  progress {
    step
    totalSteps
    secondsPerStep
    etaSeconds
    vramUsedMb
    gpuUtilization
  }
  lossSummary {
    points
    lastStep
    lastLoss
    minLoss
    minLossStep
    emaLoss
  }
  agent {
    id
    name
    hostname
  }
  error {
    code
    message
    logTail
  }
  gpuSeconds
  costUsd
  storageBytes
  sweep {
    id
  }
  resumedSteps
  resumedFrom {
    id
    step
    run {
      id
    }
  }
  parent {
    id
    name
  }
  continuations {
    id
    name
    status
  }
  bestCheckpoint {
    id
  }
  checkpoints {
    ...CheckpointFields
  }
  samples {
    ...SampleFields
  }
}
fragment RunEventFields on RunEvent {
  id
  type
  message
  data
  at
}`) as unknown as TypedDocumentString<RunPageQuery, RunPageQueryVariables>;
export const RunLiveDocument = new TypedDocumentString(`
    subscription RunLive($id: ID!) {
  runUpdated(runId: $id) {
    ...RunDetail
  }
}
    fragment CheckpointFields on Checkpoint {
  id
  step
  sizeBytes
  isFinal
  prunedAt
  createdAt
  meanRating
  emaLoss
  downloadUrl
  ratings {
    id
    score
    notes
    createdAt
  }
}
fragment SampleFields on Sample {
  id
  step
  promptIndex
  strength
  prompt
  url
  thumbnailUrl
}
fragment RunDetail on Run {
  id
  name
  status
  attempt
  maxAttempts
  priority
  queuedAt
  startedAt
  finishedAt
  tags
  notes
  experiment {
    id
    name
  }
  dataset {
    id
    name
    imageCount
  }
  captionStrategy {
    id
    name
    kind
    style
    triggerWord
    template
  }
  hyperparameters {
    baseModel
    rank
    alpha
    learningRate
    steps
    batchSize
    gradientAccumulation
    optimizer
    lrScheduler
    saveEvery
    sampleEvery
    samplePrompts
    resolutions
    quantize
    dtype
  }
  progress {
    step
    totalSteps
    secondsPerStep
    etaSeconds
    vramUsedMb
    gpuUtilization
  }
  lossSummary {
    points
    lastStep
    lastLoss
    minLoss
    minLossStep
    emaLoss
  }
  agent {
    id
    name
    hostname
  }
  error {
    code
    message
    logTail
  }
  gpuSeconds
  costUsd
  storageBytes
  sweep {
    id
  }
  resumedSteps
  resumedFrom {
    id
    step
    run {
      id
    }
  }
  parent {
    id
    name
  }
  continuations {
    id
    name
    status
  }
  bestCheckpoint {
    id
  }
  checkpoints {
    ...CheckpointFields
  }
  samples {
    ...SampleFields
  }
}`) as unknown as TypedDocumentString<RunLiveSubscription, RunLiveSubscriptionVariables>;
export const RunEventsLiveDocument = new TypedDocumentString(`
    subscription RunEventsLive($id: ID!) {
  runEvents(runId: $id) {
    ...RunEventFields
  }
}
    fragment RunEventFields on RunEvent {
  id
  type
  message
  data
  at
}`) as unknown as TypedDocumentString<RunEventsLiveSubscription, RunEventsLiveSubscriptionVariables>;
export const CancelRunDocument = new TypedDocumentString(`
    mutation CancelRun($id: ID!) {
  cancelRun(id: $id) {
    ...RunDetail
  }
}
    fragment CheckpointFields on Checkpoint {
  id
  step
  sizeBytes
  isFinal
  prunedAt
  createdAt
  meanRating
  emaLoss
  downloadUrl
  ratings {
    id
    score
    notes
    createdAt
  }
}
fragment SampleFields on Sample {
  id
  step
  promptIndex
  strength
  prompt
  url
  thumbnailUrl
}
fragment RunDetail on Run {
  id
  name
  status
  attempt
  maxAttempts
  priority
  queuedAt
  startedAt
  finishedAt
  tags
  notes
  experiment {
    id
    name
  }
  dataset {
    id
    name
    imageCount
  }
  captionStrategy {
    id
    name
    kind
    style
    triggerWord
    template
  }
  hyperparameters {
    baseModel
    rank
    alpha
    learningRate
    steps
    batchSize
    gradientAccumulation
    optimizer
    lrScheduler
    saveEvery
    sampleEvery
    samplePrompts
    resolutions
    quantize
    dtype
  }
  progress {
    step
    totalSteps
    secondsPerStep
    etaSeconds
    vramUsedMb
    gpuUtilization
  }
  lossSummary {
    points
    lastStep
    lastLoss
    minLoss
    minLossStep
    emaLoss
  }
  agent {
    id
    name
    hostname
  }
  error {
    code
    message
    logTail
  }
  gpuSeconds
  costUsd
  storageBytes
  sweep {
    id
  }
  resumedSteps
  resumedFrom {
    id
    step
    run {
      id
    }
  }
  parent {
    id
    name
  }
  continuations {
    id
    name
    status
  }
  bestCheckpoint {
    id
  }
  checkpoints {
    ...CheckpointFields
  }
  samples {
    ...SampleFields
  }
}`) as unknown as TypedDocumentString<CancelRunMutation, CancelRunMutationVariables>;
export const RetryRunDocument = new TypedDocumentString(`
    mutation RetryRun($id: ID!) {
  retryRun(id: $id) {
    ...RunDetail
  }
}
    fragment CheckpointFields on Checkpoint {
  id
  step
  sizeBytes
  isFinal
  prunedAt
  createdAt
  meanRating
  emaLoss
  downloadUrl
  ratings {
    id
    score
    notes
    createdAt
  }
}
fragment SampleFields on Sample {
  id
  step
  promptIndex
  strength
  prompt
  url
  thumbnailUrl
}
fragment RunDetail on Run {
  id
  name
  status
  attempt
  maxAttempts
  priority
  queuedAt
  startedAt
  finishedAt
  tags
  notes
  experiment {
    id
    name
  }
  dataset {
    id
    name
    imageCount
  }
  captionStrategy {
    id
    name
    kind
    style
    triggerWord
    template
  }
  hyperparameters {
    baseModel
    rank
    alpha
    learningRate
    steps
    batchSize
    gradientAccumulation
    optimizer
    lrScheduler
    saveEvery
    sampleEvery
    samplePrompts
    resolutions
    quantize
    dtype
  }
  progress {
    step
    totalSteps
    secondsPerStep
    etaSeconds
    vramUsedMb
    gpuUtilization
  }
  lossSummary {
    points
    lastStep
    lastLoss
    minLoss
    minLossStep
    emaLoss
  }
  agent {
    id
    name
    hostname
  }
  error {
    code
    message
    logTail
  }
  gpuSeconds
  costUsd
  storageBytes
  sweep {
    id
  }
  resumedSteps
  resumedFrom {
    id
    step
    run {
      id
    }
  }
  parent {
    id
    name
  }
  continuations {
    id
    name
    status
  }
  bestCheckpoint {
    id
  }
  checkpoints {
    ...CheckpointFields
  }
  samples {
    ...SampleFields
  }
}`) as unknown as TypedDocumentString<RetryRunMutation, RetryRunMutationVariables>;
export const ContinueRunDocument = new TypedDocumentString(`
    mutation ContinueRun($id: ID!, $steps: Int!) {
  continueRun(runId: $id, steps: $steps) {
    id
  }
}
    `) as unknown as TypedDocumentString<ContinueRunMutation, ContinueRunMutationVariables>;
export const RunsDocument = new TypedDocumentString(`
    query Runs($filter: RunFilter, $orderBy: RunOrder, $first: Int) {
  runs(filter: $filter, orderBy: $orderBy, first: $first) {
    totalCount
    edges {
      node {
        ...RunRow
      }
    }
  }
}
    fragment RunRow on Run {
  id
  name
  status
  priority
  queuedAt
  costUsd
  experiment {
    id
    name
  }
  dataset {
    id
    name
  }
  captionStrategy {
    id
    name
    style
  }
  hyperparameters {
    rank
    learningRate
    steps
  }
  progress {
    step
    totalSteps
    secondsPerStep
    etaSeconds
  }
  lossSummary {
    lastStep
    lastLoss
    minLoss
    emaLoss
  }
  agent {
    id
    name
  }
  sweep {
    id
    createdAt
  }
  bestCheckpoint {
    id
    meanRating
  }
}`) as unknown as TypedDocumentString<RunsQuery, RunsQueryVariables>;
export const RunsLiveDocument = new TypedDocumentString(`
    subscription RunsLive($id: ID!) {
  runUpdated(experimentId: $id) {
    ...RunRow
  }
}
    fragment RunRow on Run {
  id
  name
  status
  priority
  queuedAt
  costUsd
  experiment {
    id
    name
  }
  dataset {
    id
    name
  }
  captionStrategy {
    id
    name
    style
  }
  hyperparameters {
    rank
    learningRate
    steps
  }
  progress {
    step
    totalSteps
    secondsPerStep
    etaSeconds
  }
  lossSummary {
    lastStep
    lastLoss
    minLoss
    emaLoss
  }
  agent {
    id
    name
  }
  sweep {
    id
    createdAt
  }
  bestCheckpoint {
    id
    meanRating
  }
}`) as unknown as TypedDocumentString<RunsLiveSubscription, RunsLiveSubscriptionVariables>;
export const RunChoicesDocument = new TypedDocumentString(`
    query RunChoices($filter: RunFilter) {
  experiments(first: 500) {
    edges {
      node {
        id
        name
      }
    }
  }
  captionStrategies {
    id
    name
  }
  runs(filter: $filter, first: 500) {
    edges {
      node {
        id
        sweep {
          id
          createdAt
        }
      }
    }
  }
}
    `) as unknown as TypedDocumentString<RunChoicesQuery, RunChoicesQueryVariables>;