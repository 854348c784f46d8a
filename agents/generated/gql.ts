/* eslint-disable */
import * as types from './graphql.js';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "mutation RegisterAgent($input: RegisterAgentInput!) { registerAgent(input: $input) { id name } }": typeof types.RegisterAgentDocument,
    "mutation ClaimRun($agentId: ID!, $wait: Int) {\n        claimRun(agentId: $agentId, waitSeconds: $wait) {\n          leaseToken attempt leaseExpiresAt trainerConfig captions { fileName text }\n          resume { step checkpointUrl checkpointSha256 checkpointSizeBytes optimizerStateUrl optimizerStateSha256 optimizerStateSizeBytes }\n          run { id name hyperparameters { steps } requirements { gpuCount } captionStrategy { kind } dataset { id uri imageCount } }\n        }\n      }": typeof types.ClaimRunDocument,
    "query DatasetImages($id: ID!, $after: String) {\n          dataset(id: $id) { images(first: 500, after: $after) { edges { node { fileName } } pageInfo { hasNextPage endCursor } } }\n        }": typeof types.DatasetImagesDocument,
    "mutation StartRun($r: ID!, $t: String!) { startRun(runId: $r, leaseToken: $t) { id } }": typeof types.StartRunDocument,
    "mutation Heartbeat($r: ID!, $t: String!, $p: ProgressInput) { heartbeat(runId: $r, leaseToken: $t, progress: $p) { leaseExpiresAt cancelRequested } }": typeof types.HeartbeatDocument,
    "mutation ReportLoss($r: ID!, $t: String!, $s: [Int!]!, $l: [Float!]!, $lr: [Float]) { reportLossColumns(runId: $r, leaseToken: $t, steps: $s, losses: $l, lrs: $lr) { accepted duplicates } }": typeof types.ReportLossDocument,
    "mutation ReportCheckpoint($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { id } }": typeof types.ReportCheckpointDocument,
    "mutation ReportSample($r: ID!, $t: String!, $i: SampleInput!) { reportSample(runId: $r, leaseToken: $t, input: $i) { id } }": typeof types.ReportSampleDocument,
    "mutation CompleteRun($r: ID!, $t: String!, $o: RunOutcome!, $e: RunErrorInput) { completeRun(runId: $r, leaseToken: $t, outcome: $o, error: $e) { id status } }": typeof types.CompleteRunDocument,
    "mutation BeginRunUpload($r: ID!, $t: String!, $i: ArtifactUploadInput!) {\n        beginRunUpload(runId: $r, leaseToken: $t, input: $i) { artifact { id stored } alreadyStored partSize parts { number url } }\n      }": typeof types.BeginRunUploadDocument,
    "mutation CompleteUpload($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { id stored } }": typeof types.CompleteUploadDocument,
    "query DatasetFiles($id: ID!, $after: String, $captionFiles: Boolean!) {\n          dataset(id: $id) {\n            images(first: 500, after: $after) {\n              edges { node { fileName sha256 url captionFile @include(if: $captionFiles) { fileName sha256 url } } }\n              pageInfo { hasNextPage endCursor }\n            }\n          }\n        }": typeof types.DatasetFilesDocument,
    "mutation Drain($id: ID!, $d: Boolean!) { setAgentDraining(agentId: $id, draining: $d) { id } }": typeof types.DrainDocument,
};
const documents: Documents = {
    "mutation RegisterAgent($input: RegisterAgentInput!) { registerAgent(input: $input) { id name } }": types.RegisterAgentDocument,
    "mutation ClaimRun($agentId: ID!, $wait: Int) {\n        claimRun(agentId: $agentId, waitSeconds: $wait) {\n          leaseToken attempt leaseExpiresAt trainerConfig captions { fileName text }\n          resume { step checkpointUrl checkpointSha256 checkpointSizeBytes optimizerStateUrl optimizerStateSha256 optimizerStateSizeBytes }\n          run { id name hyperparameters { steps } requirements { gpuCount } captionStrategy { kind } dataset { id uri imageCount } }\n        }\n      }": types.ClaimRunDocument,
    "query DatasetImages($id: ID!, $after: String) {\n          dataset(id: $id) { images(first: 500, after: $after) { edges { node { fileName } } pageInfo { hasNextPage endCursor } } }\n        }": types.DatasetImagesDocument,
    "mutation StartRun($r: ID!, $t: String!) { startRun(runId: $r, leaseToken: $t) { id } }": types.StartRunDocument,
    "mutation Heartbeat($r: ID!, $t: String!, $p: ProgressInput) { heartbeat(runId: $r, leaseToken: $t, progress: $p) { leaseExpiresAt cancelRequested } }": types.HeartbeatDocument,
    "mutation ReportLoss($r: ID!, $t: String!, $s: [Int!]!, $l: [Float!]!, $lr: [Float]) { reportLossColumns(runId: $r, leaseToken: $t, steps: $s, losses: $l, lrs: $lr) { accepted duplicates } }": types.ReportLossDocument,
    "mutation ReportCheckpoint($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { id } }": types.ReportCheckpointDocument,
    "mutation ReportSample($r: ID!, $t: String!, $i: SampleInput!) { reportSample(runId: $r, leaseToken: $t, input: $i) { id } }": types.ReportSampleDocument,
    "mutation CompleteRun($r: ID!, $t: String!, $o: RunOutcome!, $e: RunErrorInput) { completeRun(runId: $r, leaseToken: $t, outcome: $o, error: $e) { id status } }": types.CompleteRunDocument,
    "mutation BeginRunUpload($r: ID!, $t: String!, $i: ArtifactUploadInput!) {\n        beginRunUpload(runId: $r, leaseToken: $t, input: $i) { artifact { id stored } alreadyStored partSize parts { number url } }\n      }": types.BeginRunUploadDocument,
    "mutation CompleteUpload($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { id stored } }": types.CompleteUploadDocument,
    "query DatasetFiles($id: ID!, $after: String, $captionFiles: Boolean!) {\n          dataset(id: $id) {\n            images(first: 500, after: $after) {\n              edges { node { fileName sha256 url captionFile @include(if: $captionFiles) { fileName sha256 url } } }\n              pageInfo { hasNextPage endCursor }\n            }\n          }\n        }": types.DatasetFilesDocument,
    "mutation Drain($id: ID!, $d: Boolean!) { setAgentDraining(agentId: $id, draining: $d) { id } }": types.DrainDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation RegisterAgent($input: RegisterAgentInput!) { registerAgent(input: $input) { id name } }"): typeof import('./graphql.js').RegisterAgentDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation ClaimRun($agentId: ID!, $wait: Int) {\n        claimRun(agentId: $agentId, waitSeconds: $wait) {\n          leaseToken attempt leaseExpiresAt trainerConfig captions { fileName text }\n          resume { step checkpointUrl checkpointSha256 checkpointSizeBytes optimizerStateUrl optimizerStateSha256 optimizerStateSizeBytes }\n          run { id name hyperparameters { steps } requirements { gpuCount } captionStrategy { kind } dataset { id uri imageCount } }\n        }\n      }"): typeof import('./graphql.js').ClaimRunDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query DatasetImages($id: ID!, $after: String) {\n          dataset(id: $id) { images(first: 500, after: $after) { edges { node { fileName } } pageInfo { hasNextPage endCursor } } }\n        }"): typeof import('./graphql.js').DatasetImagesDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation StartRun($r: ID!, $t: String!) { startRun(runId: $r, leaseToken: $t) { id } }"): typeof import('./graphql.js').StartRunDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation Heartbeat($r: ID!, $t: String!, $p: ProgressInput) { heartbeat(runId: $r, leaseToken: $t, progress: $p) { leaseExpiresAt cancelRequested } }"): typeof import('./graphql.js').HeartbeatDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation ReportLoss($r: ID!, $t: String!, $s: [Int!]!, $l: [Float!]!, $lr: [Float]) { reportLossColumns(runId: $r, leaseToken: $t, steps: $s, losses: $l, lrs: $lr) { accepted duplicates } }"): typeof import('./graphql.js').ReportLossDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation ReportCheckpoint($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { id } }"): typeof import('./graphql.js').ReportCheckpointDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation ReportSample($r: ID!, $t: String!, $i: SampleInput!) { reportSample(runId: $r, leaseToken: $t, input: $i) { id } }"): typeof import('./graphql.js').ReportSampleDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CompleteRun($r: ID!, $t: String!, $o: RunOutcome!, $e: RunErrorInput) { completeRun(runId: $r, leaseToken: $t, outcome: $o, error: $e) { id status } }"): typeof import('./graphql.js').CompleteRunDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation BeginRunUpload($r: ID!, $t: String!, $i: ArtifactUploadInput!) {\n        beginRunUpload(runId: $r, leaseToken: $t, input: $i) { artifact { id stored } alreadyStored partSize parts { number url } }\n      }"): typeof import('./graphql.js').BeginRunUploadDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CompleteUpload($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { id stored } }"): typeof import('./graphql.js').CompleteUploadDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query DatasetFiles($id: ID!, $after: String, $captionFiles: Boolean!) {\n          dataset(id: $id) {\n            images(first: 500, after: $after) {\n              edges { node { fileName sha256 url captionFile @include(if: $captionFiles) { fileName sha256 url } } }\n              pageInfo { hasNextPage endCursor }\n            }\n          }\n        }"): typeof import('./graphql.js').DatasetFilesDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation Drain($id: ID!, $d: Boolean!) { setAgentDraining(agentId: $id, draining: $d) { id } }"): typeof import('./graphql.js').DrainDocument;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
