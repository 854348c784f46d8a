/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
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

export type CaptionKind =
  | 'FILES'
  | 'NONE'
  | 'STORED'
  | 'TRIGGER_ONLY';

export type CheckpointInput = {
  isFinal?: boolean | null | undefined;
  path: string;
  /** The trainer removed the file ("Removing old save"): the checkpoint stays listed with prunedAt set. */
  pruned?: boolean | null | undefined;
  sha256?: string | null | undefined;
  sizeBytes?: number | null | undefined;
  step: number;
};

export type CompletedPartInput = {
  etag: string;
  number: number;
};

export type GpuInput = {
  index: number;
  memoryMb: number;
  name: string;
};

export type ProgressInput = {
  gpuUtilization?: number | null | undefined;
  secondsPerStep?: number | null | undefined;
  step: number;
  totalSteps?: number | null | undefined;
  vramUsedMb?: number | null | undefined;
};

export type RegisterAgentInput = {
  gpus: Array<GpuInput>;
  hostname?: string | null | undefined;
  hourlyCostUsd?: number | null | undefined;
  labels?: Array<string> | null | undefined;
  name: string;
  version?: string | null | undefined;
};

export type RunErrorInput = {
  code: string;
  logTail?: string | null | undefined;
  message: string;
};

export type RunOutcome =
  | 'CANCELLED'
  | 'FAILED'
  | 'SUCCEEDED';

export type RunStatus =
  | 'CANCELLED'
  | 'CANCELLING'
  | 'CLAIMED'
  | 'FAILED'
  | 'QUEUED'
  | 'RUNNING'
  | 'SUCCEEDED';

export type SampleInput = {
  path: string;
  prompt?: string | null | undefined;
  promptIndex: number;
  step: number;
};

export type RegisterAgentMutationVariables = Exact<{
  input: RegisterAgentInput;
}>;


export type RegisterAgentMutation = { registerAgent: { id: string, name: string } };

export type ClaimRunMutationVariables = Exact<{
  agentId: string;
  wait?: number | null | undefined;
}>;


export type ClaimRunMutation = { claimRun: { leaseToken: string, attempt: number, leaseExpiresAt: string, trainerConfig: string, captions: Array<{ fileName: string, text: string }>, resume: { step: number, checkpointUrl: string, checkpointSha256: string, checkpointSizeBytes: number, optimizerStateUrl: string | null, optimizerStateSha256: string | null, optimizerStateSizeBytes: number | null } | null, run: { id: string, name: string, hyperparameters: { steps: number }, requirements: { gpuCount: number }, captionStrategy: { kind: CaptionKind }, dataset: { id: string, uri: string, imageCount: number } } } | null };

export type DatasetImagesQueryVariables = Exact<{
  id: string;
  after?: string | null | undefined;
}>;


export type DatasetImagesQuery = { dataset: { images: { edges: Array<{ node: { fileName: string } }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } } | null };

export type StartRunMutationVariables = Exact<{
  r: string;
  t: string;
}>;


export type StartRunMutation = { startRun: { id: string } };

export type HeartbeatMutationVariables = Exact<{
  r: string;
  t: string;
  p?: ProgressInput | null | undefined;
}>;


export type HeartbeatMutation = { heartbeat: { leaseExpiresAt: string, cancelRequested: boolean } };

export type ReportLossMutationVariables = Exact<{
  r: string;
  t: string;
  s: Array<number> | number;
  l: Array<number> | number;
  lr?: Array<number | null | undefined> | number | null | undefined;
}>;


export type ReportLossMutation = { reportLossColumns: { accepted: number, duplicates: number } };

export type ReportCheckpointMutationVariables = Exact<{
  r: string;
  t: string;
  i: CheckpointInput;
}>;


export type ReportCheckpointMutation = { reportCheckpoint: { id: string } };

export type ReportSampleMutationVariables = Exact<{
  r: string;
  t: string;
  i: SampleInput;
}>;


export type ReportSampleMutation = { reportSample: { id: string } };

export type CompleteRunMutationVariables = Exact<{
  r: string;
  t: string;
  o: RunOutcome;
  e?: RunErrorInput | null | undefined;
}>;


export type CompleteRunMutation = { completeRun: { id: string, status: RunStatus } };

export type BeginRunUploadMutationVariables = Exact<{
  r: string;
  t: string;
  i: ArtifactUploadInput;
}>;


export type BeginRunUploadMutation = { beginRunUpload: { alreadyStored: boolean, partSize: number | null, artifact: { id: string, stored: boolean }, parts: Array<{ number: number, url: string }> } };

export type CompleteUploadMutationVariables = Exact<{
  a: string;
  p: Array<CompletedPartInput> | CompletedPartInput;
}>;


export type CompleteUploadMutation = { completeUpload: { id: string, stored: boolean } };

export type DatasetFilesQueryVariables = Exact<{
  id: string;
  after?: string | null | undefined;
  captionFiles: boolean;
}>;


export type DatasetFilesQuery = { dataset: { images: { edges: Array<{ node: { fileName: string, sha256: string | null, url: string | null, captionFile?: { fileName: string, sha256: string, url: string | null } | null } }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } } | null };

export type DrainMutationVariables = Exact<{
  id: string;
  d: boolean;
}>;


export type DrainMutation = { setAgentDraining: { id: string } };

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

export const RegisterAgentDocument = new TypedDocumentString(`
    mutation RegisterAgent($input: RegisterAgentInput!) {
  registerAgent(input: $input) {
    id
    name
  }
}
    `) as unknown as TypedDocumentString<RegisterAgentMutation, RegisterAgentMutationVariables>;
export const ClaimRunDocument = new TypedDocumentString(`
    mutation ClaimRun($agentId: ID!, $wait: Int) {
  claimRun(agentId: $agentId, waitSeconds: $wait) {
    leaseToken
    attempt
    leaseExpiresAt
    trainerConfig
    captions {
      fileName
      text
    }
    resume {
      step
      checkpointUrl
      checkpointSha256
      checkpointSizeBytes
      optimizerStateUrl
      optimizerStateSha256
      optimizerStateSizeBytes
    }
    run {
      id
      name
      hyperparameters {
        steps
      }
      requirements {
        gpuCount
      }
      captionStrategy {
        kind
      }
      dataset {
        id
        uri
        imageCount
      }
    }
  }
}
    `) as unknown as TypedDocumentString<ClaimRunMutation, ClaimRunMutationVariables>;
export const DatasetImagesDocument = new TypedDocumentString(`
    query DatasetImages($id: ID!, $after: String) {
  dataset(id: $id) {
    images(first: 500, after: $after) {
      edges {
        node {
          fileName
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
}
    `) as unknown as TypedDocumentString<DatasetImagesQuery, DatasetImagesQueryVariables>;
export const StartRunDocument = new TypedDocumentString(`
    mutation StartRun($r: ID!, $t: String!) {
  startRun(runId: $r, leaseToken: $t) {
    id
  }
}
    `) as unknown as TypedDocumentString<StartRunMutation, StartRunMutationVariables>;
export const HeartbeatDocument = new TypedDocumentString(`
    mutation Heartbeat($r: ID!, $t: String!, $p: ProgressInput) {
  heartbeat(runId: $r, leaseToken: $t, progress: $p) {
    leaseExpiresAt
    cancelRequested
  }
}
    `) as unknown as TypedDocumentString<HeartbeatMutation, HeartbeatMutationVariables>;
export const ReportLossDocument = new TypedDocumentString(`
    mutation ReportLoss($r: ID!, $t: String!, $s: [Int!]!, $l: [Float!]!, $lr: [Float]) {
  reportLossColumns(runId: $r, leaseToken: $t, steps: $s, losses: $l, lrs: $lr) {
    accepted
    duplicates
  }
}
    `) as unknown as TypedDocumentString<ReportLossMutation, ReportLossMutationVariables>;
export const ReportCheckpointDocument = new TypedDocumentString(`
    mutation ReportCheckpoint($r: ID!, $t: String!, $i: CheckpointInput!) {
  reportCheckpoint(runId: $r, leaseToken: $t, input: $i) {
    id
  }
}
    `) as unknown as TypedDocumentString<ReportCheckpointMutation, ReportCheckpointMutationVariables>;
export const ReportSampleDocument = new TypedDocumentString(`
    mutation ReportSample($r: ID!, $t: String!, $i: SampleInput!) {
  reportSample(runId: $r, leaseToken: $t, input: $i) {
    id
  }
}
    `) as unknown as TypedDocumentString<ReportSampleMutation, ReportSampleMutationVariables>;
export const CompleteRunDocument = new TypedDocumentString(`
    mutation CompleteRun($r: ID!, $t: String!, $o: RunOutcome!, $e: RunErrorInput) {
  completeRun(runId: $r, leaseToken: $t, outcome: $o, error: $e) {
    id
    status
  }
}
    `) as unknown as TypedDocumentString<CompleteRunMutation, CompleteRunMutationVariables>;
export const BeginRunUploadDocument = new TypedDocumentString(`
    mutation BeginRunUpload($r: ID!, $t: String!, $i: ArtifactUploadInput!) {
  beginRunUpload(runId: $r, leaseToken: $t, input: $i) {
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
    `) as unknown as TypedDocumentString<BeginRunUploadMutation, BeginRunUploadMutationVariables>;
export const CompleteUploadDocument = new TypedDocumentString(`
    mutation CompleteUpload($a: ID!, $p: [CompletedPartInput!]!) {
  completeUpload(artifactId: $a, parts: $p) {
    id
    stored
  }
}
    `) as unknown as TypedDocumentString<CompleteUploadMutation, CompleteUploadMutationVariables>;
export const DatasetFilesDocument = new TypedDocumentString(`
    query DatasetFiles($id: ID!, $after: String, $captionFiles: Boolean!) {
  dataset(id: $id) {
    images(first: 500, after: $after) {
      edges {
        node {
          fileName
          sha256
          url
          captionFile @include(if: $captionFiles) {
            fileName
            sha256
            url
          }
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
}
    `) as unknown as TypedDocumentString<DatasetFilesQuery, DatasetFilesQueryVariables>;
export const DrainDocument = new TypedDocumentString(`
    mutation Drain($id: ID!, $d: Boolean!) {
  setAgentDraining(agentId: $id, draining: $d) {
    id
  }
}
    `) as unknown as TypedDocumentString<DrainMutation, DrainMutationVariables>;