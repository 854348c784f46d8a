import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { cursorParts, decodeCursor, pageSize, toConnection } from '../../graphql/connection.js';
import { badInput } from '../../graphql/errors.js';
import { isId } from '../../graphql/ids.js';
import { name, optionalText, parseInput } from '../validation.js';
import * as store from './datasets.store.js';
import type { ReadScope } from '../agents/read-scope.js';
import type { ServiceDeps } from '../service-deps.js';

export const MAX_IMAGES = 100_000;

export const plainFileName = z
  .string()
  .min(1, 'must not be empty')
  .max(255, 'must be at most 255 characters')
  .refine((f) => !/[/\\\0]/.test(f) && f !== '.' && f !== '..', 'must be a plain file name (no folders)');

/** Datasets created without a uri keep their files in loralab's artifact store. */
const STORED_URI_PREFIX = 'loralab://datasets/';
export const isStoredDataset = (dataset: Pick<store.DatasetRecord, 'uri'>) => dataset.uri.startsWith(STORED_URI_PREFIX);

const imageInput = z.object({
  fileName: plainFileName,
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
    .transform((s) => s.toLowerCase())
    .nullish(),
  width: z.number().int().min(1, 'must be positive').max(65_536).nullish(),
  height: z.number().int().min(1, 'must be positive').max(65_536).nullish(),
  caption: z.string().max(10_000, 'must be at most 10,000 characters').nullish(),
});

const createInput = z.object({
  name,
  uri: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(2000)
    .refine((u) => u.startsWith('/') || u.startsWith('file://'), 'must be an absolute path or a file:// URL that agents can read')
    .nullish(),
  description: optionalText,
  images: z.array(imageInput).max(MAX_IMAGES, `at most ${MAX_IMAGES} images`),
});

/** sha256 over "name\0sha256\n" in name order; null unless every image has a sha256. */
export function contentHash(images: { fileName: string; sha256?: string | null }[]) {
  if (images.length === 0 || images.some((i) => !i.sha256)) return null;
  const hash = createHash('sha256');
  for (const i of [...images].sort((a, b) => (a.fileName < b.fileName ? -1 : a.fileName > b.fileName ? 1 : 0))) {
    hash.update(`${i.fileName}\0${i.sha256}\n`);
  }
  return hash.digest('hex');
}

export async function createDataset({ db }: ServiceDeps, input: unknown) {
  const values = parseInput(createInput, input, 'input');
  const seen = new Set<string>();
  values.images.forEach((image, i) => {
    if (seen.has(image.fileName)) throw badInput(`input.images.${i}.fileName`, `"${image.fileName}" appears twice`);
    seen.add(image.fileName);
    // A stored dataset's bytes are checked against these on upload, and by every agent that fetches them.
    if (!values.uri && !image.sha256) throw badInput(`input.images.${i}.sha256`, 'is required for a dataset stored in loralab (created without uri)');
  });
  const id = randomUUID();
  return db.transaction(async (tx) => {
    const dataset = await store.insertDataset(tx, {
      id,
      name: values.name,
      uri: values.uri ?? `${STORED_URI_PREFIX}${id}`,
      description: values.description ?? null,
      imageCount: values.images.length,
      contentHash: contentHash(values.images),
    });
    await store.insertImages(
      tx,
      dataset.id,
      values.images.map((i) => ({
        fileName: i.fileName,
        sha256: i.sha256 ?? null,
        width: i.width ?? null,
        height: i.height ?? null,
        caption: i.caption ?? null,
      })),
    );
    return dataset;
  });
}

export async function listDatasets({ db: { orm: db } }: ServiceDeps, args: { first?: number | null; after?: string | null }, readScope: ReadScope = null) {
  const first = pageSize(args.first);
  const after = decodeCursor(args.after, [cursorParts.time, cursorParts.id]) as [string, string] | null;
  const found = await store.listDatasets(db, { limit: first + 1, after, readScope });
  return toConnection(found, first, (r) => [r.cursorTs, r.id], () => store.countDatasets(db, readScope), after != null);
}

export async function getDataset({ db: { orm: db } }: ServiceDeps, id: string, readScope: ReadScope = null) {
  if (!isId(id)) return null;
  const [row] = await store.findDatasetsByIds(db, [id], readScope);
  return row ?? null;
}

export async function listImages({ db: { orm: db } }: ServiceDeps, dataset: store.DatasetRecord, args: { first?: number | null; after?: string | null }) {
  const first = pageSize(args.first);
  const after = decodeCursor(args.after, [(v) => cursorParts.int(v) && (v as number) >= 0]) as [number] | null;
  const found = await store.listImages(db, dataset.id, { limit: first + 1, afterPosition: after?.[0] ?? null });
  return toConnection(found, first, (r) => [r.position], async () => dataset.imageCount, after != null);
}
