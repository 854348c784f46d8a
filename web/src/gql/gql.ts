/* eslint-disable */
import * as types from './graphql';



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
    "query Viewer { viewer { role name } }": typeof types.ViewerDocument,
    "\n  fragment CheckpointFields on Checkpoint {\n    id step sizeBytes isFinal prunedAt createdAt meanRating emaLoss downloadUrl\n    ratings { id score notes createdAt }\n  }\n": typeof types.CheckpointFieldsFragmentDoc,
    "\n  mutation Rate($c: ID!, $s: Int!, $n: String) {\n    rateCheckpoint(checkpointId: $c, score: $s, notes: $n) { id checkpoint { ...CheckpointFields } }\n  }\n": typeof types.RateDocument,
    "\n  mutation Promote($r: ID!, $c: ID!) { promoteCheckpoint(runId: $r, checkpointId: $c) { id bestCheckpoint { id } } }\n": typeof types.PromoteDocument,
    "\n  mutation BeginDatasetUpload($d: ID!, $i: ArtifactUploadInput!) {\n    beginDatasetUpload(datasetId: $d, input: $i) { artifact { id stored } alreadyStored partSize parts { number url } }\n  }\n": typeof types.BeginDatasetUploadDocument,
    "mutation CompleteUpload($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { id stored } }": typeof types.CompleteUploadDocument,
    "\n  fragment SampleFields on Sample { id step promptIndex strength prompt url thumbnailUrl }\n": typeof types.SampleFieldsFragmentDoc,
    "\n  query Agents {\n    viewer { role agent { id } }\n    agents {\n      id name hostname gpus { index name memoryMb } labels hourlyCostUsd status lastSeenAt version\n      currentRun { id name status progress { step totalSteps vramUsedMb gpuUtilization } }\n    }\n  }\n": typeof types.AgentsDocument,
    "\n  query AgentRuns($id: ID!) { runs(filter: { agentId: $id }, first: 5) { totalCount edges { node { id name status } } } }\n": typeof types.AgentRunsDocument,
    "mutation Drain($id: ID!, $d: Boolean!) { setAgentDraining(agentId: $id, draining: $d) { id status } }": typeof types.DrainDocument,
    "\n  query ComparePicker($filter: RunFilter, $all: RunFilter) {\n    experiments(first: 500) { edges { node { id name } } }\n    runs(filter: $filter, first: 200) { edges { node { id name status sweep { id } } } }\n    sweeps: runs(filter: $all, first: 500) { edges { node { id sweep { id createdAt } } } }\n  }\n": typeof types.ComparePickerDocument,
    "query Curves($ids: [ID!]!) { lossCurves(runIds: $ids, maxPoints: 500) { run { id name } buckets { step mean } } }": typeof types.CurvesDocument,
    "\n  query CompareGroups($filter: RunFilter, $groupBy: [RunDimension!]!) {\n    compareRuns(filter: $filter, groupBy: $groupBy) {\n      key { rank learningRate steps captionStrategy { id name } dataset { id name } optimizer batchSize baseModel }\n      runCount succeeded meanLastLoss minLoss meanEmaLoss bestMeanRating meanCostUsd meanDurationSeconds\n    }\n  }\n": typeof types.CompareGroupsDocument,
    "\n  query Matrix($filter: RunFilter) {\n    checkpointMatrix(filter: $filter) {\n      steps\n      rows {\n        run { id name experiment { id } bestCheckpoint { id } captionStrategy { id triggerWord } hyperparameters { samplePrompts } checkpoints { ...CheckpointFields } samples { ...SampleFields } }\n        cells { step checkpoint { id } meanRating emaLoss }\n      }\n    }\n  }\n": typeof types.MatrixDocument,
    "\n  query SweepBest($id: ID!) {\n    sweep(id: $id) {\n      id queued running done createdAt\n      byLoss: bestRun(by: EMA_LOSS) { id name lossSummary { emaLoss } bestCheckpoint { ...CheckpointFields } }\n      byRating: bestRun(by: BEST_RATING) { id name bestCheckpoint { ...CheckpointFields } }\n    }\n  }\n": typeof types.SweepBestDocument,
    "subscription CompareLive($id: ID!) { runUpdated(experimentId: $id) { id status lossSummary { lastStep } } }": typeof types.CompareLiveDocument,
    "\n  query CreateChoices {\n    experiments(first: 500) { edges { node { id name } } }\n    datasets(first: 200) { edges { node { id name imageCount stored uri } } }\n    captionStrategies { id name kind }\n    agents { id hourlyCostUsd }\n    runs(first: 50, filter: { status: [RUNNING, SUCCEEDED] }) { edges { node { id progress { secondsPerStep } } } }\n  }\n": typeof types.CreateChoicesDocument,
    "mutation CreateExperiment($i: CreateExperimentInput!) { createExperiment(input: $i) { id name } }": typeof types.CreateExperimentDocument,
    "mutation CreateDataset($i: CreateDatasetInput!) { createDataset(input: $i) { id name } }": typeof types.CreateDatasetDocument,
    "mutation CreateStrategy($i: CreateCaptionStrategyInput!) { createCaptionStrategy(input: $i) { id name } }": typeof types.CreateStrategyDocument,
    "mutation SetCaptions($d: ID!, $s: ID!, $c: [CaptionInput!]!) { setCaptions(datasetId: $d, strategyId: $s, captions: $c) }": typeof types.SetCaptionsDocument,
    "mutation QueueRun($i: QueueRunInput!) { queueRun(input: $i) { id name } }": typeof types.QueueRunDocument,
    "mutation QueueSweep($i: QueueSweepInput!) { queueSweep(input: $i) { id name sweep { id } } }": typeof types.QueueSweepDocument,
    "\n  query Datasets { datasets(first: 200) { totalCount edges { node { id name uri imageCount storedImageCount stored createdAt description } } } }\n": typeof types.DatasetsDocument,
    "\n  query Dataset($id: ID!, $strategy: ID!, $withCaption: Boolean!) {\n    dataset(id: $id) {\n      id name uri imageCount storedImageCount stored description createdAt\n      images(first: 500) {\n        totalCount\n        edges { node { id fileName width height url thumbnailUrl sourceCaption caption(strategyId: $strategy) @include(if: $withCaption) storedCaption(strategyId: $strategy) @include(if: $withCaption) } }\n      }\n    }\n    captionStrategies { id name kind triggerWord template }\n  }\n": typeof types.DatasetDocument,
    "mutation SaveCaption($d: ID!, $s: ID!, $c: [CaptionInput!]!) { setCaptions(datasetId: $d, strategyId: $s, captions: $c) }": typeof types.SaveCaptionDocument,
    "query CaptionDiff($id: ID!, $a: ID!, $b: ID!) { dataset(id: $id) { id captionDiff(strategyA: $a, strategyB: $b) { fileName a b } } }": typeof types.CaptionDiffDocument,
    "\n  fragment RunDetail on Run {\n    id name status attempt maxAttempts priority queuedAt startedAt finishedAt tags notes\n    experiment { id name } dataset { id name imageCount }\n    captionStrategy { id name kind style triggerWord template }\n    hyperparameters { baseModel rank alpha learningRate steps batchSize gradientAccumulation optimizer lrScheduler saveEvery sampleEvery samplePrompts resolutions quantize dtype }\n    progress { step totalSteps secondsPerStep etaSeconds vramUsedMb gpuUtilization }\n    lossSummary { points lastStep lastLoss minLoss minLossStep emaLoss }\n    agent { id name hostname }\n    error { code message logTail }\n    gpuSeconds costUsd storageBytes\n    sweep { id }\n    resumedSteps\n    resumedFrom { id step run { id } }\n    parent { id name }\n    continuations { id name status }\n    bestCheckpoint { id }\n    checkpoints { ...CheckpointFields }\n    samples { ...SampleFields }\n  }\n": typeof types.RunDetailFragmentDoc,
    "fragment RunEventFields on RunEvent { id type message data at }": typeof types.RunEventFieldsFragmentDoc,
    "query Curve($id: ID!) { run(id: $id) { id lossCurve(maxPoints: 1000) { step toStep min max mean count } } }": typeof types.CurveDocument,
    "subscription RunLoss($id: ID!, $since: Int) { runLoss(runId: $id, sinceStep: $since) { points { step loss } } }": typeof types.RunLossDocument,
    "query RunPage($id: ID!) { run(id: $id) { ...RunDetail trainerConfig events(first: 100) { ...RunEventFields } } agents { id name } }": typeof types.RunPageDocument,
    "subscription RunLive($id: ID!) { runUpdated(runId: $id) { ...RunDetail } }": typeof types.RunLiveDocument,
    "subscription RunEventsLive($id: ID!) { runEvents(runId: $id) { ...RunEventFields } }": typeof types.RunEventsLiveDocument,
    "mutation CancelRun($id: ID!) { cancelRun(id: $id) { ...RunDetail } }": typeof types.CancelRunDocument,
    "mutation RetryRun($id: ID!) { retryRun(id: $id) { ...RunDetail } }": typeof types.RetryRunDocument,
    "mutation ContinueRun($id: ID!, $steps: Int!) { continueRun(runId: $id, steps: $steps) { id } }": typeof types.ContinueRunDocument,
    "\n  fragment RunRow on Run {\n    id name status priority queuedAt costUsd\n    experiment { id name } dataset { id name } captionStrategy { id name style }\n    hyperparameters { rank learningRate steps }\n    progress { step totalSteps secondsPerStep etaSeconds }\n    lossSummary { lastStep lastLoss minLoss emaLoss }\n    agent { id name }\n    sweep { id createdAt }\n    bestCheckpoint { id meanRating }\n  }\n": typeof types.RunRowFragmentDoc,
    "\n  query Runs($filter: RunFilter, $orderBy: RunOrder, $first: Int) {\n    runs(filter: $filter, orderBy: $orderBy, first: $first) { totalCount edges { node { ...RunRow } } }\n  }\n": typeof types.RunsDocument,
    "subscription RunsLive($id: ID!) { runUpdated(experimentId: $id) { ...RunRow } }": typeof types.RunsLiveDocument,
    "\n  query RunChoices($filter: RunFilter) {\n    experiments(first: 500) { edges { node { id name } } }\n    captionStrategies { id name }\n    runs(filter: $filter, first: 500) { edges { node { id sweep { id createdAt } } } }\n  }\n": typeof types.RunChoicesDocument,
};
const documents: Documents = {
    "query Viewer { viewer { role name } }": types.ViewerDocument,
    "\n  fragment CheckpointFields on Checkpoint {\n    id step sizeBytes isFinal prunedAt createdAt meanRating emaLoss downloadUrl\n    ratings { id score notes createdAt }\n  }\n": types.CheckpointFieldsFragmentDoc,
    "\n  mutation Rate($c: ID!, $s: Int!, $n: String) {\n    rateCheckpoint(checkpointId: $c, score: $s, notes: $n) { id checkpoint { ...CheckpointFields } }\n  }\n": types.RateDocument,
    "\n  mutation Promote($r: ID!, $c: ID!) { promoteCheckpoint(runId: $r, checkpointId: $c) { id bestCheckpoint { id } } }\n": types.PromoteDocument,
    "\n  mutation BeginDatasetUpload($d: ID!, $i: ArtifactUploadInput!) {\n    beginDatasetUpload(datasetId: $d, input: $i) { artifact { id stored } alreadyStored partSize parts { number url } }\n  }\n": types.BeginDatasetUploadDocument,
    "mutation CompleteUpload($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { id stored } }": types.CompleteUploadDocument,
    "\n  fragment SampleFields on Sample { id step promptIndex strength prompt url thumbnailUrl }\n": types.SampleFieldsFragmentDoc,
    "\n  query Agents {\n    viewer { role agent { id } }\n    agents {\n      id name hostname gpus { index name memoryMb } labels hourlyCostUsd status lastSeenAt version\n      currentRun { id name status progress { step totalSteps vramUsedMb gpuUtilization } }\n    }\n  }\n": types.AgentsDocument,
    "\n  query AgentRuns($id: ID!) { runs(filter: { agentId: $id }, first: 5) { totalCount edges { node { id name status } } } }\n": types.AgentRunsDocument,
    "mutation Drain($id: ID!, $d: Boolean!) { setAgentDraining(agentId: $id, draining: $d) { id status } }": types.DrainDocument,
    "\n  query ComparePicker($filter: RunFilter, $all: RunFilter) {\n    experiments(first: 500) { edges { node { id name } } }\n    runs(filter: $filter, first: 200) { edges { node { id name status sweep { id } } } }\n    sweeps: runs(filter: $all, first: 500) { edges { node { id sweep { id createdAt } } } }\n  }\n": types.ComparePickerDocument,
    "query Curves($ids: [ID!]!) { lossCurves(runIds: $ids, maxPoints: 500) { run { id name } buckets { step mean } } }": types.CurvesDocument,
    "\n  query CompareGroups($filter: RunFilter, $groupBy: [RunDimension!]!) {\n    compareRuns(filter: $filter, groupBy: $groupBy) {\n      key { rank learningRate steps captionStrategy { id name } dataset { id name } optimizer batchSize baseModel }\n      runCount succeeded meanLastLoss minLoss meanEmaLoss bestMeanRating meanCostUsd meanDurationSeconds\n    }\n  }\n": types.CompareGroupsDocument,
    "\n  query Matrix($filter: RunFilter) {\n    checkpointMatrix(filter: $filter) {\n      steps\n      rows {\n        run { id name experiment { id } bestCheckpoint { id } captionStrategy { id triggerWord } hyperparameters { samplePrompts } checkpoints { ...CheckpointFields } samples { ...SampleFields } }\n        cells { step checkpoint { id } meanRating emaLoss }\n      }\n    }\n  }\n": types.MatrixDocument,
    "\n  query SweepBest($id: ID!) {\n    sweep(id: $id) {\n      id queued running done createdAt\n      byLoss: bestRun(by: EMA_LOSS) { id name lossSummary { emaLoss } bestCheckpoint { ...CheckpointFields } }\n      byRating: bestRun(by: BEST_RATING) { id name bestCheckpoint { ...CheckpointFields } }\n    }\n  }\n": types.SweepBestDocument,
    "subscription CompareLive($id: ID!) { runUpdated(experimentId: $id) { id status lossSummary { lastStep } } }": types.CompareLiveDocument,
    "\n  query CreateChoices {\n    experiments(first: 500) { edges { node { id name } } }\n    datasets(first: 200) { edges { node { id name imageCount stored uri } } }\n    captionStrategies { id name kind }\n    agents { id hourlyCostUsd }\n    runs(first: 50, filter: { status: [RUNNING, SUCCEEDED] }) { edges { node { id progress { secondsPerStep } } } }\n  }\n": types.CreateChoicesDocument,
    "mutation CreateExperiment($i: CreateExperimentInput!) { createExperiment(input: $i) { id name } }": types.CreateExperimentDocument,
    "mutation CreateDataset($i: CreateDatasetInput!) { createDataset(input: $i) { id name } }": types.CreateDatasetDocument,
    "mutation CreateStrategy($i: CreateCaptionStrategyInput!) { createCaptionStrategy(input: $i) { id name } }": types.CreateStrategyDocument,
    "mutation SetCaptions($d: ID!, $s: ID!, $c: [CaptionInput!]!) { setCaptions(datasetId: $d, strategyId: $s, captions: $c) }": types.SetCaptionsDocument,
    "mutation QueueRun($i: QueueRunInput!) { queueRun(input: $i) { id name } }": types.QueueRunDocument,
    "mutation QueueSweep($i: QueueSweepInput!) { queueSweep(input: $i) { id name sweep { id } } }": types.QueueSweepDocument,
    "\n  query Datasets { datasets(first: 200) { totalCount edges { node { id name uri imageCount storedImageCount stored createdAt description } } } }\n": types.DatasetsDocument,
    "\n  query Dataset($id: ID!, $strategy: ID!, $withCaption: Boolean!) {\n    dataset(id: $id) {\n      id name uri imageCount storedImageCount stored description createdAt\n      images(first: 500) {\n        totalCount\n        edges { node { id fileName width height url thumbnailUrl sourceCaption caption(strategyId: $strategy) @include(if: $withCaption) storedCaption(strategyId: $strategy) @include(if: $withCaption) } }\n      }\n    }\n    captionStrategies { id name kind triggerWord template }\n  }\n": types.DatasetDocument,
    "mutation SaveCaption($d: ID!, $s: ID!, $c: [CaptionInput!]!) { setCaptions(datasetId: $d, strategyId: $s, captions: $c) }": types.SaveCaptionDocument,
    "query CaptionDiff($id: ID!, $a: ID!, $b: ID!) { dataset(id: $id) { id captionDiff(strategyA: $a, strategyB: $b) { fileName a b } } }": types.CaptionDiffDocument,
    "\n  fragment RunDetail on Run {\n    id name status attempt maxAttempts priority queuedAt startedAt finishedAt tags notes\n    experiment { id name } dataset { id name imageCount }\n    captionStrategy { id name kind style triggerWord template }\n    hyperparameters { baseModel rank alpha learningRate steps batchSize gradientAccumulation optimizer lrScheduler saveEvery sampleEvery samplePrompts resolutions quantize dtype }\n    progress { step totalSteps secondsPerStep etaSeconds vramUsedMb gpuUtilization }\n    lossSummary { points lastStep lastLoss minLoss minLossStep emaLoss }\n    agent { id name hostname }\n    error { code message logTail }\n    gpuSeconds costUsd storageBytes\n    sweep { id }\n    resumedSteps\n    resumedFrom { id step run { id } }\n    parent { id name }\n    continuations { id name status }\n    bestCheckpoint { id }\n    checkpoints { ...CheckpointFields }\n    samples { ...SampleFields }\n  }\n": types.RunDetailFragmentDoc,
    "fragment RunEventFields on RunEvent { id type message data at }": types.RunEventFieldsFragmentDoc,
    "query Curve($id: ID!) { run(id: $id) { id lossCurve(maxPoints: 1000) { step toStep min max mean count } } }": types.CurveDocument,
    "subscription RunLoss($id: ID!, $since: Int) { runLoss(runId: $id, sinceStep: $since) { points { step loss } } }": types.RunLossDocument,
    "query RunPage($id: ID!) { run(id: $id) { ...RunDetail trainerConfig events(first: 100) { ...RunEventFields } } agents { id name } }": types.RunPageDocument,
    "subscription RunLive($id: ID!) { runUpdated(runId: $id) { ...RunDetail } }": types.RunLiveDocument,
    "subscription RunEventsLive($id: ID!) { runEvents(runId: $id) { ...RunEventFields } }": types.RunEventsLiveDocument,
    "mutation CancelRun($id: ID!) { cancelRun(id: $id) { ...RunDetail } }": types.CancelRunDocument,
    "mutation RetryRun($id: ID!) { retryRun(id: $id) { ...RunDetail } }": types.RetryRunDocument,
    "mutation ContinueRun($id: ID!, $steps: Int!) { continueRun(runId: $id, steps: $steps) { id } }": types.ContinueRunDocument,
    "\n  fragment RunRow on Run {\n    id name status priority queuedAt costUsd\n    experiment { id name } dataset { id name } captionStrategy { id name style }\n    hyperparameters { rank learningRate steps }\n    progress { step totalSteps secondsPerStep etaSeconds }\n    lossSummary { lastStep lastLoss minLoss emaLoss }\n    agent { id name }\n    sweep { id createdAt }\n    bestCheckpoint { id meanRating }\n  }\n": types.RunRowFragmentDoc,
    "\n  query Runs($filter: RunFilter, $orderBy: RunOrder, $first: Int) {\n    runs(filter: $filter, orderBy: $orderBy, first: $first) { totalCount edges { node { ...RunRow } } }\n  }\n": types.RunsDocument,
    "subscription RunsLive($id: ID!) { runUpdated(experimentId: $id) { ...RunRow } }": types.RunsLiveDocument,
    "\n  query RunChoices($filter: RunFilter) {\n    experiments(first: 500) { edges { node { id name } } }\n    captionStrategies { id name }\n    runs(filter: $filter, first: 500) { edges { node { id sweep { id createdAt } } } }\n  }\n": types.RunChoicesDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query Viewer { viewer { role name } }"): typeof import('./graphql').ViewerDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment CheckpointFields on Checkpoint {\n    id step sizeBytes isFinal prunedAt createdAt meanRating emaLoss downloadUrl\n    ratings { id score notes createdAt }\n  }\n"): typeof import('./graphql').CheckpointFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation Rate($c: ID!, $s: Int!, $n: String) {\n    rateCheckpoint(checkpointId: $c, score: $s, notes: $n) { id checkpoint { ...CheckpointFields } }\n  }\n"): typeof import('./graphql').RateDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation Promote($r: ID!, $c: ID!) { promoteCheckpoint(runId: $r, checkpointId: $c) { id bestCheckpoint { id } } }\n"): typeof import('./graphql').PromoteDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation BeginDatasetUpload($d: ID!, $i: ArtifactUploadInput!) {\n    beginDatasetUpload(datasetId: $d, input: $i) { artifact { id stored } alreadyStored partSize parts { number url } }\n  }\n"): typeof import('./graphql').BeginDatasetUploadDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CompleteUpload($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { id stored } }"): typeof import('./graphql').CompleteUploadDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment SampleFields on Sample { id step promptIndex strength prompt url thumbnailUrl }\n"): typeof import('./graphql').SampleFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Agents {\n    viewer { role agent { id } }\n    agents {\n      id name hostname gpus { index name memoryMb } labels hourlyCostUsd status lastSeenAt version\n      currentRun { id name status progress { step totalSteps vramUsedMb gpuUtilization } }\n    }\n  }\n"): typeof import('./graphql').AgentsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AgentRuns($id: ID!) { runs(filter: { agentId: $id }, first: 5) { totalCount edges { node { id name status } } } }\n"): typeof import('./graphql').AgentRunsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation Drain($id: ID!, $d: Boolean!) { setAgentDraining(agentId: $id, draining: $d) { id status } }"): typeof import('./graphql').DrainDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ComparePicker($filter: RunFilter, $all: RunFilter) {\n    experiments(first: 500) { edges { node { id name } } }\n    runs(filter: $filter, first: 200) { edges { node { id name status sweep { id } } } }\n    sweeps: runs(filter: $all, first: 500) { edges { node { id sweep { id createdAt } } } }\n  }\n"): typeof import('./graphql').ComparePickerDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query Curves($ids: [ID!]!) { lossCurves(runIds: $ids, maxPoints: 500) { run { id name } buckets { step mean } } }"): typeof import('./graphql').CurvesDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query CompareGroups($filter: RunFilter, $groupBy: [RunDimension!]!) {\n    compareRuns(filter: $filter, groupBy: $groupBy) {\n      key { rank learningRate steps captionStrategy { id name } dataset { id name } optimizer batchSize baseModel }\n      runCount succeeded meanLastLoss minLoss meanEmaLoss bestMeanRating meanCostUsd meanDurationSeconds\n    }\n  }\n"): typeof import('./graphql').CompareGroupsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Matrix($filter: RunFilter) {\n    checkpointMatrix(filter: $filter) {\n      steps\n      rows {\n        run { id name experiment { id } bestCheckpoint { id } captionStrategy { id triggerWord } hyperparameters { samplePrompts } checkpoints { ...CheckpointFields } samples { ...SampleFields } }\n        cells { step checkpoint { id } meanRating emaLoss }\n      }\n    }\n  }\n"): typeof import('./graphql').MatrixDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query SweepBest($id: ID!) {\n    sweep(id: $id) {\n      id queued running done createdAt\n      byLoss: bestRun(by: EMA_LOSS) { id name lossSummary { emaLoss } bestCheckpoint { ...CheckpointFields } }\n      byRating: bestRun(by: BEST_RATING) { id name bestCheckpoint { ...CheckpointFields } }\n    }\n  }\n"): typeof import('./graphql').SweepBestDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "subscription CompareLive($id: ID!) { runUpdated(experimentId: $id) { id status lossSummary { lastStep } } }"): typeof import('./graphql').CompareLiveDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query CreateChoices {\n    experiments(first: 500) { edges { node { id name } } }\n    datasets(first: 200) { edges { node { id name imageCount stored uri } } }\n    captionStrategies { id name kind }\n    agents { id hourlyCostUsd }\n    runs(first: 50, filter: { status: [RUNNING, SUCCEEDED] }) { edges { node { id progress { secondsPerStep } } } }\n  }\n"): typeof import('./graphql').CreateChoicesDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CreateExperiment($i: CreateExperimentInput!) { createExperiment(input: $i) { id name } }"): typeof import('./graphql').CreateExperimentDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CreateDataset($i: CreateDatasetInput!) { createDataset(input: $i) { id name } }"): typeof import('./graphql').CreateDatasetDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CreateStrategy($i: CreateCaptionStrategyInput!) { createCaptionStrategy(input: $i) { id name } }"): typeof import('./graphql').CreateStrategyDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation SetCaptions($d: ID!, $s: ID!, $c: [CaptionInput!]!) { setCaptions(datasetId: $d, strategyId: $s, captions: $c) }"): typeof import('./graphql').SetCaptionsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation QueueRun($i: QueueRunInput!) { queueRun(input: $i) { id name } }"): typeof import('./graphql').QueueRunDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation QueueSweep($i: QueueSweepInput!) { queueSweep(input: $i) { id name sweep { id } } }"): typeof import('./graphql').QueueSweepDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Datasets { datasets(first: 200) { totalCount edges { node { id name uri imageCount storedImageCount stored createdAt description } } } }\n"): typeof import('./graphql').DatasetsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Dataset($id: ID!, $strategy: ID!, $withCaption: Boolean!) {\n    dataset(id: $id) {\n      id name uri imageCount storedImageCount stored description createdAt\n      images(first: 500) {\n        totalCount\n        edges { node { id fileName width height url thumbnailUrl sourceCaption caption(strategyId: $strategy) @include(if: $withCaption) storedCaption(strategyId: $strategy) @include(if: $withCaption) } }\n      }\n    }\n    captionStrategies { id name kind triggerWord template }\n  }\n"): typeof import('./graphql').DatasetDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation SaveCaption($d: ID!, $s: ID!, $c: [CaptionInput!]!) { setCaptions(datasetId: $d, strategyId: $s, captions: $c) }"): typeof import('./graphql').SaveCaptionDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query CaptionDiff($id: ID!, $a: ID!, $b: ID!) { dataset(id: $id) { id captionDiff(strategyA: $a, strategyB: $b) { fileName a b } } }"): typeof import('./graphql').CaptionDiffDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment RunDetail on Run {\n    id name status attempt maxAttempts priority queuedAt startedAt finishedAt tags notes\n    experiment { id name } dataset { id name imageCount }\n    captionStrategy { id name kind style triggerWord template }\n    hyperparameters { baseModel rank alpha learningRate steps batchSize gradientAccumulation optimizer lrScheduler saveEvery sampleEvery samplePrompts resolutions quantize dtype }\n    progress { step totalSteps secondsPerStep etaSeconds vramUsedMb gpuUtilization }\n    lossSummary { points lastStep lastLoss minLoss minLossStep emaLoss }\n    agent { id name hostname }\n    error { code message logTail }\n    gpuSeconds costUsd storageBytes\n    sweep { id }\n    resumedSteps\n    resumedFrom { id step run { id } }\n    parent { id name }\n    continuations { id name status }\n    bestCheckpoint { id }\n    checkpoints { ...CheckpointFields }\n    samples { ...SampleFields }\n  }\n"): typeof import('./graphql').RunDetailFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment RunEventFields on RunEvent { id type message data at }"): typeof import('./graphql').RunEventFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query Curve($id: ID!) { run(id: $id) { id lossCurve(maxPoints: 1000) { step toStep min max mean count } } }"): typeof import('./graphql').CurveDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "subscription RunLoss($id: ID!, $since: Int) { runLoss(runId: $id, sinceStep: $since) { points { step loss } } }"): typeof import('./graphql').RunLossDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query RunPage($id: ID!) { run(id: $id) { ...RunDetail trainerConfig events(first: 100) { ...RunEventFields } } agents { id name } }"): typeof import('./graphql').RunPageDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "subscription RunLive($id: ID!) { runUpdated(runId: $id) { ...RunDetail } }"): typeof import('./graphql').RunLiveDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "subscription RunEventsLive($id: ID!) { runEvents(runId: $id) { ...RunEventFields } }"): typeof import('./graphql').RunEventsLiveDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CancelRun($id: ID!) { cancelRun(id: $id) { ...RunDetail } }"): typeof import('./graphql').CancelRunDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation RetryRun($id: ID!) { retryRun(id: $id) { ...RunDetail } }"): typeof import('./graphql').RetryRunDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation ContinueRun($id: ID!, $steps: Int!) { continueRun(runId: $id, steps: $steps) { id } }"): typeof import('./graphql').ContinueRunDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment RunRow on Run {\n    id name status priority queuedAt costUsd\n    experiment { id name } dataset { id name } captionStrategy { id name style }\n    hyperparameters { rank learningRate steps }\n    progress { step totalSteps secondsPerStep etaSeconds }\n    lossSummary { lastStep lastLoss minLoss emaLoss }\n    agent { id name }\n    sweep { id createdAt }\n    bestCheckpoint { id meanRating }\n  }\n"): typeof import('./graphql').RunRowFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Runs($filter: RunFilter, $orderBy: RunOrder, $first: Int) {\n    runs(filter: $filter, orderBy: $orderBy, first: $first) { totalCount edges { node { ...RunRow } } }\n  }\n"): typeof import('./graphql').RunsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "subscription RunsLive($id: ID!) { runUpdated(experimentId: $id) { ...RunRow } }"): typeof import('./graphql').RunsLiveDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query RunChoices($filter: RunFilter) {\n    experiments(first: 500) { edges { node { id name } } }\n    captionStrategies { id name }\n    runs(filter: $filter, first: 500) { edges { node { id sweep { id createdAt } } } }\n  }\n"): typeof import('./graphql').RunChoicesDocument;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
