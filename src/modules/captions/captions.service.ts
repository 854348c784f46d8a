import { z } from 'zod';
import type { Executor } from '../../db/client.js';
import { badInput, notFound } from '../../graphql/errors.js';
import { parseId } from '../../graphql/ids.js';
import { name, optionalText, parseInput } from '../validation.js';
import * as datasets from '../datasets/datasets.store.js';
import * as store from './captions.store.js';
import type { ReadScope } from '../agents/read-scope.js';
import { NAME_TAG, NAME_TAG_IN_CAPTIONS_REFUSED, NAME_TAG_REFUSED } from '../runs/ai-toolkit.js';
import { renderCaption } from './render.js';
import type { ServiceDeps } from '../service-deps.js';

const createInput = z
  .object({
    name,
    kind: z.enum(['NONE', 'TRIGGER_ONLY', 'FILES', 'STORED']),
    style: z.enum(['SIMPLE', 'DESCRIPTIVE', 'GENERAL', 'TAGS', 'CUSTOM']).nullish(),
    triggerWord: z
      .string()
      .trim()
      .min(1, 'must not be empty')
      .max(100, 'must be at most 100 characters')
      .refine((w) => !/[\n\r]/.test(w), 'must be one line')
      .refine((w) => !w.includes(NAME_TAG), NAME_TAG_REFUSED)
      .nullish(),
    template: z
      .string()
      .max(1000, 'must be at most 1,000 characters')
      .refine((t) => !t.includes(NAME_TAG), NAME_TAG_IN_CAPTIONS_REFUSED)
      .nullish(),
    dropoutRate: z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1').nullish(),
    shuffleTokens: z.boolean().nullish(),
    description: optionalText,
  })
  .superRefine((s, ctx) => {
    if (s.kind === 'TRIGGER_ONLY' && !s.triggerWord) {
      ctx.addIssue({ code: 'custom', path: ['triggerWord'], message: 'a TRIGGER_ONLY strategy needs a trigger word' });
    }
    if (s.template && s.kind !== 'STORED') {
      ctx.addIssue({ code: 'custom', path: ['template'], message: 'only a STORED strategy uses a template' });
    }
  });

export function createCaptionStrategy({ db: { orm: db } }: ServiceDeps, input: unknown) {
  const s = parseInput(createInput, input, 'input');
  return store.insertStrategy(db, {
    name: s.name,
    kind: s.kind,
    style: s.style ?? null,
    triggerWord: s.triggerWord ?? null,
    template: s.template ?? null,
    dropoutRate: s.dropoutRate ?? 0.05,
    shuffleTokens: s.shuffleTokens ?? false,
    description: s.description ?? null,
  });
}

export const listCaptionStrategies = ({ db }: ServiceDeps, readScope: ReadScope = null) => store.listStrategies(db.orm, readScope);

export async function requireStrategy(db: Executor, id: string, field: string) {
  const [strategy] = await store.findStrategiesByIds(db, [parseId(id, field)]);
  if (!strategy) throw notFound(field, 'Caption strategy', id);
  return strategy;
}

const MAX_CAPTIONS = 100_000;
const captionsInput = z
  .array(z.object({ fileName: z.string().min(1, 'must not be empty'), text: z.string().max(10_000, 'must be at most 10,000 characters') }))
  .max(MAX_CAPTIONS, `at most ${MAX_CAPTIONS} captions per call`);

export async function setCaptions({ db }: ServiceDeps, args: { datasetId: string; strategyId: string; captions: unknown }) {
  const pairs = parseInput(captionsInput, args.captions, 'captions');
  const seen = new Set<string>();
  pairs.forEach((p, i) => {
    if (seen.has(p.fileName)) throw badInput(`captions.${i}.fileName`, `"${p.fileName}" appears twice`);
    seen.add(p.fileName);
  });
  const datasetId = parseId(args.datasetId, 'datasetId');
  return db.transaction(async (tx) => {
    const [dataset] = await datasets.findDatasetsByIds(tx, [datasetId]);
    if (!dataset) throw notFound('datasetId', 'Dataset', args.datasetId);
    const strategy = await requireStrategy(tx, args.strategyId, 'strategyId');
    if (strategy.kind !== 'STORED') {
      throw badInput('strategyId', `captions are stored only for a STORED strategy; this one is ${strategy.kind}`);
    }
    const ids = await datasets.imageIdsByName(tx, dataset.id, [...seen]);
    const missing = pairs.findIndex((p) => !ids.has(p.fileName));
    if (missing >= 0) throw badInput(`captions.${missing}.fileName`, `"${pairs[missing]!.fileName}" is not an image of this dataset`);
    return store.upsertCaptions(tx, dataset.id, strategy.id, pairs);
  });
}

/** Per image of the dataset, the caption each of two strategies gives it. */
export async function captionDiff({ db: { orm: db } }: ServiceDeps, datasetId: string, strategyAId: string, strategyBId: string) {
  const a = await requireStrategy(db, strategyAId, 'strategyA');
  const b = await requireStrategy(db, strategyBId, 'strategyB');
  const images = await store.imagesWithStoredCaptions(db, datasetId, [a.id, b.id]);
  return images.map((image) => ({
    fileName: image.file_name,
    a: renderCaption(a, image.texts?.[a.id]),
    b: renderCaption(b, image.texts?.[b.id]),
  }));
}

/**
 * The captions a run's agent stages: one per image that gets a caption file. `images` is every
 * image of the dataset with its stored text for this strategy (the claim statement reads them).
 */
export function stagedCaptions(strategy: store.CaptionStrategyRecord, images: [fileName: string, storedText: string | null][]) {
  return images.flatMap(([fileName, storedText]) => {
    const text = renderCaption(strategy, storedText);
    return text == null ? [] : [{ fileName, text }];
  });
}
