import type { Resolvers } from '../../graphql/generated/resolvers.js';
import type { Context } from '../../graphql/context.js';
import { requireLoaded } from '../../graphql/require-loaded.js';
import { isStoredDataset } from '../datasets/datasets.service.js';
import { assertMayReadDatasetFiles, assertMayReadRunFiles } from './access.js';
import { checkpointDownloadName } from './media.js';
import { isStored, slotOf } from './artifacts.service.js';
import type { ArtifactRecord } from './artifacts.store.js';
import { principalOf } from '../../graphql/permissions.js';

const runArtifact = async (ctx: Context, runId: string, kind: ArtifactRecord['kind'], slot: string) =>
  (await ctx.loaders.artifacts.artifactsByRun.load(runId)).find((a) => a.kind === kind && a.slot === slot) ?? null;

/** Whichever came first, the report or the upload: they meet by step (and prompt). */
const checkpointArtifact = (ctx: Context, c: { runId: string; step: number }) =>
  runArtifact(ctx, c.runId, 'CHECKPOINT', slotOf({ kind: 'CHECKPOINT', step: c.step, fileName: '' }));
const sampleArtifact = (ctx: Context, s: { runId: string; step: number; promptIndex: number }) =>
  runArtifact(ctx, s.runId, 'SAMPLE', slotOf({ kind: 'SAMPLE', step: s.step, promptIndex: s.promptIndex, fileName: '' }));

const imageArtifact = (ctx: Context, image: { datasetId: string; fileName: string }) =>
  ctx.loaders.artifacts.datasetArtifact.load({ datasetId: image.datasetId, kind: 'DATASET_IMAGE', slot: slotOf({ kind: 'DATASET_IMAGE', fileName: image.fileName }) });

/** The image's caption file, `<stem>.txt`: captions are matched to images by name without extension (findDatasetImageFor). */
const captionFileOf = (ctx: Context, image: { datasetId: string; fileName: string }) =>
  ctx.loaders.artifacts.datasetArtifact.load({ datasetId: image.datasetId, kind: 'DATASET_CAPTION', slot: slotOf({ kind: 'DATASET_CAPTION', fileName: `${image.fileName.replace(/\.[^.]*$/, '')}.txt` }) });

/** A signed URL of a stored artifact, for a key that may read its run's or dataset's files. */
async function urlOf(ctx: Context, artifact: ArtifactRecord | null, options: { thumbnail?: boolean; downloadName?: string } = {}) {
  if (!artifact || !isStored(artifact)) return null;
  if (artifact.runId) await assertMayReadRunFiles(ctx, artifact.runId);
  else await assertMayReadDatasetFiles(ctx, artifact.datasetId!);
  const blob = await ctx.loaders.artifacts.blob.load(artifact.sha256);
  return blob ? ctx.artifacts.signedGet(artifact, blob, ctx.origin, options) : null;
}

export const artifactResolvers: Resolvers = {
  Mutation: {
    beginRunUpload: (_, args, ctx) => ctx.artifacts.beginRunUpload(principalOf(ctx), args, ctx.origin),
    beginDatasetUpload: (_, args, ctx) => ctx.artifacts.beginDatasetUpload(principalOf(ctx), args, ctx.origin),
    completeUpload: (_, args, ctx) => ctx.artifacts.completeUpload(principalOf(ctx), args),
    completeUploads: (_, args, ctx) => ctx.artifacts.completeUploads(principalOf(ctx), args),
    pruneArtifacts: (_, args, ctx) => ctx.artifacts.pruneArtifacts(args),
  },
  Artifact: {
    stored: (a) => isStored(a),
    url: (a, _, ctx) => urlOf(ctx, a),
    thumbnailUrl: (a, _, ctx) => urlOf(ctx, a, { thumbnail: true }),
  },
  PruneResult: {
    run: async (p, _, ctx) => requireLoaded(await ctx.loaders.run.load(p.runId), 'run'),
  },
  Checkpoint: {
    artifact: (c, _, ctx) => checkpointArtifact(ctx, c),
    downloadUrl: async (c, _, ctx) => {
      const artifact = await checkpointArtifact(ctx, c);
      if (!artifact || !isStored(artifact)) return null;
      const run = requireLoaded(await ctx.loaders.run.load(c.runId), 'run');
      return urlOf(ctx, artifact, { downloadName: checkpointDownloadName(run.name, c.step, c.isFinal) });
    },
  },
  Sample: {
    artifact: (s, _, ctx) => sampleArtifact(ctx, s),
    url: async (s, _, ctx) => urlOf(ctx, await sampleArtifact(ctx, s)),
    thumbnailUrl: async (s, _, ctx) => urlOf(ctx, await sampleArtifact(ctx, s), { thumbnail: true }),
  },
  DatasetImage: {
    url: async (image, _, ctx) => urlOf(ctx, await imageArtifact(ctx, image)),
    thumbnailUrl: async (image, _, ctx) => urlOf(ctx, await imageArtifact(ctx, image), { thumbnail: true }),
    captionFile: (image, _, ctx) => captionFileOf(ctx, image),
  },
  Dataset: {
    stored: async (d, _, ctx) => isStoredDataset(d) && (await ctx.loaders.artifacts.storedImageCount.load(d.id)) >= d.imageCount,
    storedImageCount: (d, _, ctx) => (isStoredDataset(d) ? ctx.loaders.artifacts.storedImageCount.load(d.id) : 0),
  },
  Run: {
    artifacts: async (run, { kind }, ctx) => {
      const all = await ctx.loaders.artifacts.artifactsByRun.load(run.id);
      return kind ? all.filter((a) => a.kind === kind) : all;
    },
    storageBytes: (run, _, ctx) => ctx.loaders.artifacts.storageBytes.load(run.id),
  },
};
