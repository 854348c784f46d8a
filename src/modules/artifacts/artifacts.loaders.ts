// Per-request loaders of the artifact module: one statement per kind of lookup per tick.
import DataLoader from 'dataloader';
import type { Executor } from '../../db/client.js';
import * as store from './artifacts.store.js';

type SlotKey = { datasetId: string; kind: store.ArtifactKind; slot: string };

function mapLoader<V>(fetch: (ids: readonly string[]) => Promise<Map<string, V>>, missing: V) {
  return new DataLoader<string, V>(async (ids) => {
    const found = await fetch(ids);
    return ids.map((id) => found.get(id) ?? missing);
  });
}

/** A loader per API key for "may read", built on first use (the key is the request's). */
function readableBy(fetch: (apiKeyId: string, ids: readonly string[]) => Promise<Set<string>>) {
  const byKey = new Map<string, DataLoader<string, boolean>>();
  return (apiKeyId: string) => {
    let loader = byKey.get(apiKeyId);
    if (!loader) {
      loader = new DataLoader<string, boolean>(async (ids) => {
        const readable = await fetch(apiKeyId, ids);
        return ids.map((id) => readable.has(id));
      });
      byKey.set(apiKeyId, loader);
    }
    return loader;
  };
}

export function createArtifactLoaders(db: Executor) {
  return {
    artifactsByRun: new DataLoader<string, store.ArtifactRecord[]>(async (runIds) => {
      const groups = new Map<string, store.ArtifactRecord[]>(runIds.map((id) => [id, []]));
      for (const a of await store.findArtifactsByRuns(db, runIds)) groups.get(a.runId!)?.push(a);
      return runIds.map((id) => groups.get(id)!);
    }),
    datasetArtifact: new DataLoader<SlotKey, store.ArtifactRecord | null, string>(
      async (keys) => {
        const found = new Map((await store.findDatasetArtifacts(db, keys)).map((a) => [`${a.datasetId}:${a.kind}:${a.slot}`, a]));
        return keys.map((k) => found.get(`${k.datasetId}:${k.kind}:${k.slot}`) ?? null);
      },
      { cacheKeyFn: (k) => `${k.datasetId}:${k.kind}:${k.slot}` },
    ),
    blob: new DataLoader<string, store.BlobRecord | null>(async (shas) => {
      const found = new Map((await store.findBlobs(db, shas)).map((b) => [b.sha256, b]));
      return shas.map((sha) => found.get(sha) ?? null);
    }),
    storageBytes: mapLoader((ids) => store.storageBytes(db, ids), 0),
    storedImageCount: mapLoader((ids) => store.storedImageCounts(db, ids), 0),
    runReadableByAgentKey: readableBy((keyId, ids) => store.runsReadableByAgentKey(db, keyId, ids)),
    datasetReadableByAgentKey: readableBy((keyId, ids) => store.datasetsReadableByAgentKey(db, keyId, ids)),
  };
}

export type ArtifactLoaders = ReturnType<typeof createArtifactLoaders>;
