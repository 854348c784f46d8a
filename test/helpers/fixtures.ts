// Records most tests start from, created through the API as a client would.
import type { GqlClient } from './server.js';

export const sha = (n: number) => n.toString(16).padStart(64, '0');

export async function createExperiment(client: GqlClient, input: Record<string, unknown> = {}) {
  const data = await client.ok(`mutation($input: CreateExperimentInput!) { createExperiment(input: $input) { id name } }`, {
    input: { name: 'p3r5on concept', goal: 'CONCEPT', ...input },
  });
  return data.createExperiment.id as string;
}

export async function createDataset(client: GqlClient, images = 3, input: Record<string, unknown> = {}) {
  const data = await client.ok(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }`, {
    input: {
      name: 'p3r5on photos',
      uri: '/data/datasets/p3r5on',
      images: Array.from({ length: images }, (_, i) => ({ fileName: `img${i}.jpg`, sha256: sha(i + 1), width: 1024, height: 1024 })),
      ...input,
    },
  });
  return data.createDataset.id as string;
}

export async function createStrategy(client: GqlClient, input: Record<string, unknown> = {}) {
  const data = await client.ok(`mutation($input: CreateCaptionStrategyInput!) { createCaptionStrategy(input: $input) { id } }`, {
    input: { name: 'trigger only', kind: 'TRIGGER_ONLY', triggerWord: 'p3r5on', style: 'SIMPLE', ...input },
  });
  return data.createCaptionStrategy.id as string;
}

export interface Basics {
  experimentId: string;
  datasetId: string;
  strategyId: string;
}

export async function createBasics(client: GqlClient): Promise<Basics> {
  const [experimentId, datasetId, strategyId] = await Promise.all([createExperiment(client), createDataset(client), createStrategy(client)]);
  return { experimentId, datasetId, strategyId };
}

export async function queueRun(client: GqlClient, basics: Basics, input: Record<string, unknown> = {}) {
  const data = await client.ok(`mutation($input: QueueRunInput!) { queueRun(input: $input) { id name status } }`, {
    input: { experimentId: basics.experimentId, datasetId: basics.datasetId, captionStrategyId: basics.strategyId, ...input },
  });
  return data.queueRun as { id: string; name: string; status: string };
}
