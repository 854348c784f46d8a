// Per-request DataLoaders: one statement per kind of record per tick, whatever the query's shape.
import DataLoader from 'dataloader';
import type { Executor } from '../db/client.js';
import * as experiments from '../modules/experiments/experiments.store.js';
import * as datasets from '../modules/datasets/datasets.store.js';
import * as captions from '../modules/captions/captions.store.js';
import * as runs from '../modules/runs/runs.store.js';
import * as agents from '../modules/agents/agents.store.js';
import * as checkpoints from '../modules/checkpoints/checkpoints.store.js';
import { createArtifactLoaders } from '../modules/artifacts/artifacts.loaders.js';
import { findImportsByRuns } from '../modules/imports/imports.store.js';

function byId<T extends { id: string }>(fetch: (ids: readonly string[]) => Promise<T[]>) {
  return new DataLoader<string, T | null>(async (ids) => {
    const found = new Map((await fetch(ids)).map((row) => [row.id, row]));
    return ids.map((id) => found.get(id) ?? null);
  });
}

function groupedBy<T>(fetch: (ids: readonly string[]) => Promise<T[]>, keyOf: (row: T) => string | null) {
  return new DataLoader<string, T[]>(async (ids) => {
    const groups = new Map<string, T[]>(ids.map((id) => [id, []]));
    for (const row of await fetch(ids)) groups.get(keyOf(row) ?? '')?.push(row);
    return ids.map((id) => groups.get(id)!);
  });
}

export function createLoaders(db: Executor) {
  return {
    experiment: byId((ids) => experiments.findExperimentsByIds(db, ids)),
    dataset: byId((ids) => datasets.findDatasetsByIds(db, ids)),
    captionStrategy: byId((ids) => captions.findStrategiesByIds(db, ids)),
    run: byId((ids) => runs.findRunsByIds(db, ids)),
    sweep: byId((ids) => runs.findSweepsByIds(db, ids)),
    agent: byId((ids) => agents.findAgentsByIds(db, ids)),
    checkpoint: byId((ids) => checkpoints.findCheckpointsByIds(db, ids)),
    runImport: new DataLoader<string, Awaited<ReturnType<typeof findImportsByRuns>>[number] | null>(async (ids) => {
      const found = new Map((await findImportsByRuns(db, ids)).map((i) => [i.runId, i]));
      return ids.map((id) => found.get(id) ?? null);
    }),
    runSummary: new DataLoader<string, Awaited<ReturnType<typeof runs.findSummariesByRuns>>[number] | null>(async (ids) => {
      const found = new Map((await runs.findSummariesByRuns(db, ids)).map((s) => [s.runId, s]));
      return ids.map((id) => found.get(id) ?? null);
    }),
    checkpointsByRun: groupedBy((ids) => checkpoints.findCheckpointsByRuns(db, ids), (r) => r.runId),
    samplesByRun: groupedBy((ids) => checkpoints.findSamplesByRuns(db, ids), (r) => r.runId),
    ratingsByCheckpoint: groupedBy((ids) => checkpoints.findRatingsByCheckpoints(db, ids), (r) => r.checkpointId),
    sweepsByExperiment: groupedBy((ids) => runs.findSweepsByExperiments(db, ids), (r) => r.experimentId),
    runsBySweep: groupedBy((ids) => runs.findRunsBySweeps(db, ids), (r) => r.sweepId),
    continuationsByRun: groupedBy((ids) => runs.findContinuationsOf(db, ids), (r) => r.parentRunId),
    activeRunsByAgent: groupedBy((ids) => agents.findActiveRunsByAgents(db, ids), (r) => r.agentId),
    storedCaption: new DataLoader<{ imageId: string; strategyId: string }, string | null, string>(
      async (keys) => {
        const found = await captions.findStoredCaptions(db, keys);
        return keys.map((k) => found.get(`${k.imageId}:${k.strategyId}`) ?? null);
      },
      { cacheKeyFn: (k) => `${k.imageId}:${k.strategyId}` },
    ),
    artifacts: createArtifactLoaders(db),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
