import { asc, inArray, sql } from 'drizzle-orm';
import { captionStrategies } from '../../db/schema.js';
import { rows, type Executor } from '../../db/client.js';
import { strategyInScope, type ReadScope } from '../agents/read-scope.js';

export type CaptionStrategyRecord = typeof captionStrategies.$inferSelect;

export async function insertStrategy(db: Executor, values: typeof captionStrategies.$inferInsert) {
  const [row] = await db.insert(captionStrategies).values(values).returning();
  return row!;
}

export function findStrategiesByIds(db: Executor, ids: readonly string[]) {
  return db.select().from(captionStrategies).where(inArray(captionStrategies.id, [...ids]));
}

export function listStrategies(db: Executor, readScope: ReadScope) {
  return db
    .select()
    .from(captionStrategies)
    .where(strategyInScope(readScope, captionStrategies.id))
    .orderBy(asc(captionStrategies.createdAt), asc(captionStrategies.id));
}

/* upsertCaptions: one statement; (file name, text) pairs joined to the dataset's images. */
export async function upsertCaptions(db: Executor, datasetId: string, strategyId: string, pairs: { fileName: string; text: string }[]) {
  const written = await rows<{ n: number }>(
    db,
    sql`/* upsertCaptions */
      with upserted as (
        insert into captions (image_id, strategy_id, text)
        select i.id, ${strategyId}::uuid, c.text
        from unnest(${sql.param(pairs.map((p) => p.fileName))}::text[], ${sql.param(pairs.map((p) => p.text))}::text[]) as c(file_name, text)
        join dataset_images i on i.dataset_id = ${datasetId} and i.file_name = c.file_name
        on conflict (image_id, strategy_id) do update set text = excluded.text, updated_at = now()
        returning 1
      )
      select count(*)::int as n from upserted`,
  );
  return written[0]!.n;
}

/** Stored texts keyed "imageId:strategyId", for the pairs asked. */
export async function findStoredCaptions(db: Executor, keys: readonly { imageId: string; strategyId: string }[]) {
  const found = await rows<{ image_id: string; strategy_id: string; text: string }>(
    db,
    sql`/* findStoredCaptions */
      select c.image_id, c.strategy_id, c.text
      from captions c
      join unnest(${sql.param(keys.map((k) => k.imageId))}::uuid[], ${sql.param(keys.map((k) => k.strategyId))}::uuid[]) as k(image_id, strategy_id)
        on c.image_id = k.image_id and c.strategy_id = k.strategy_id`,
  );
  return new Map(found.map((r) => [`${r.image_id}:${r.strategy_id}`, r.text]));
}

/** Every image of a dataset in order, with its stored text under each of the given strategies. */
export function imagesWithStoredCaptions(db: Executor, datasetId: string, strategyIds: string[]) {
  return rows<{ id: string; file_name: string; caption: string | null; texts: Record<string, string> | null }>(
    db,
    sql`/* imagesWithStoredCaptions */
      select i.id, i.file_name, i.caption,
        (select jsonb_object_agg(c.strategy_id, c.text) from captions c
          where c.image_id = i.id and c.strategy_id = any(${sql.param(strategyIds)}::uuid[])) as texts
      from dataset_images i
      where i.dataset_id = ${datasetId}
      order by i.position`,
  );
}
