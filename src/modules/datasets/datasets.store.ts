import { and, asc, count, desc, eq, gt, inArray, lt, or, sql, type SQL } from 'drizzle-orm';
import { datasetImages, datasets } from '../../db/schema.js';
import { rows, type Executor } from '../../db/client.js';
import { datasetInScope, type ReadScope } from '../agents/read-scope.js';

export type DatasetRecord = typeof datasets.$inferSelect & { cursorTs?: string };
export type DatasetImageRecord = typeof datasetImages.$inferSelect;

export interface NewImage {
  fileName: string;
  sha256: string | null;
  width: number | null;
  height: number | null;
  caption: string | null;
}

export async function insertDataset(db: Executor, values: typeof datasets.$inferInsert) {
  const [row] = await db.insert(datasets).values(values).returning();
  return row!;
}

/* insertImages: one statement for any number of images (drizzle's values() would hit the 65,535-parameter limit). */
export async function insertImages(db: Executor, datasetId: string, images: NewImage[]) {
  if (images.length === 0) return;
  await db.execute(sql`
    /* insertImages */
    insert into dataset_images (dataset_id, position, file_name, sha256, width, height, caption)
    select ${datasetId}::uuid, u.ord::int - 1, u.file_name, u.sha256, u.width, u.height, u.caption
    from unnest(
      ${sql.param(images.map((i) => i.fileName))}::text[],
      ${sql.param(images.map((i) => i.sha256))}::text[],
      ${sql.param(images.map((i) => i.width))}::int[],
      ${sql.param(images.map((i) => i.height))}::int[],
      ${sql.param(images.map((i) => i.caption))}::text[]
    ) with ordinality as u(file_name, sha256, width, height, caption, ord)`);
}

export function findDatasetsByIds(db: Executor, ids: readonly string[], readScope: ReadScope = null) {
  return db.select().from(datasets).where(and(inArray(datasets.id, [...ids]), datasetInScope(readScope, datasets.id)));
}

export function listDatasets(db: Executor, opts: { limit: number; after: [string, string] | null; readScope: ReadScope }) {
  let keyset: SQL | undefined;
  if (opts.after) {
    const [ts, id] = opts.after;
    keyset = or(lt(datasets.createdAt, sql`${ts}::timestamptz`), and(eq(datasets.createdAt, sql`${ts}::timestamptz`), lt(datasets.id, id)));
  }
  return db
    .select({
      id: datasets.id,
      name: datasets.name,
      uri: datasets.uri,
      description: datasets.description,
      imageCount: datasets.imageCount,
      contentHash: datasets.contentHash,
      createdAt: datasets.createdAt,
      cursorTs: sql<string>`${datasets.createdAt}::text`,
    })
    .from(datasets)
    .where(and(keyset, datasetInScope(opts.readScope, datasets.id)))
    .orderBy(desc(datasets.createdAt), desc(datasets.id))
    .limit(opts.limit);
}

export async function countDatasets(db: Executor, readScope: ReadScope) {
  const [row] = await db.select({ n: count() }).from(datasets).where(datasetInScope(readScope, datasets.id));
  return row!.n;
}

export function listImages(db: Executor, datasetId: string, opts: { limit: number; afterPosition: number | null }) {
  return db
    .select()
    .from(datasetImages)
    .where(
      and(
        eq(datasetImages.datasetId, datasetId),
        opts.afterPosition == null ? undefined : gt(datasetImages.position, opts.afterPosition),
      ),
    )
    .orderBy(asc(datasetImages.position))
    .limit(opts.limit);
}

/** Map of file name → image id for the names that exist in the dataset. */
export async function imageIdsByName(db: Executor, datasetId: string, fileNames: string[]) {
  const found = await rows<{ id: string; file_name: string }>(
    db,
    sql`/* imageIdsByName */
      select id, file_name from dataset_images
      where dataset_id = ${datasetId} and file_name = any(${sql.param(fileNames)}::text[])`,
  );
  return new Map(found.map((r) => [r.file_name, r.id]));
}
