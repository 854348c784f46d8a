// Every SQL statement of the artifact store. Artifacts reference blobs by sha256; a blob's row (and
// so its bytes) lives as long as some artifact that is not pruned names its sha256.
import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm';
import { rows, type Executor } from '../../db/client.js';
import { mapRow } from '../../db/map-row.js';
import { artifactBlobs, artifacts } from '../../db/schema.js';
import type { LeaseFence } from '../dispatch/fence.js';
import { FINISHED_SQL, HELD_SQL } from '../runs/lifecycle.js';
import { insertEventsCte } from '../runs/events.store.js';
import { announceEventsExpression, announceRunChangedExpression } from '../../live/run-feeds.js';

export type ArtifactRecord = typeof artifacts.$inferSelect;
export type NewArtifact = typeof artifacts.$inferInsert;
export type BlobRecord = typeof artifactBlobs.$inferSelect;
export type ArtifactKind = ArtifactRecord['kind'];

export type Owner = { runId: string; datasetId?: undefined } | { datasetId: string; runId?: undefined };


/**
 * runForUpload: the run an agent may upload for, locked FOR SHARE like every fenced write. The
 * lease token must be the run's current one; besides the held statuses, the attempt that finished
 * the run keeps its token (until a retry clears it) and may still send what it made, since uploads
 * trail the trainer. A requeued run's token is cleared, so a zombie finds nothing.
 */
export async function runForUpload(db: Executor, fence: LeaseFence) {
  const [row] = await rows<{ id: string; attempt: number }>(
    db,
    sql`/* runForUpload */
    select r.id, r.attempt from runs r
    where r.id = ${fence.runId} and r.lease_token = ${fence.leaseToken}
      and r.agent_id in (select id from agents where api_key_id = ${fence.apiKeyId})
      and (r.status in ${HELD_SQL} or r.status in ${FINISHED_SQL})
    for share`,
  );
  return row ?? null;
}

/**
 * The artifacts in the slots of one owner's declarations, locked FOR UPDATE in one order (kind,
 * slot), so two begins declaring the same files take turns instead of deadlocking.
 */
export async function findSlotsForUpdate(db: Executor, owner: Owner, keys: readonly { kind: ArtifactKind; slot: string }[]) {
  if (keys.length === 0) return [];
  const found = await rows(
    db,
    sql`/* findSlotsForUpdate */
    select a.* from artifacts a
    join unnest(${sql.param(keys.map((k) => k.kind))}::text[], ${sql.param(keys.map((k) => k.slot))}::text[]) as k(kind, slot)
      on a.kind = k.kind and a.slot = k.slot
    where ${owner.runId ? sql`a.run_id = ${owner.runId}` : sql`a.dataset_id = ${owner.datasetId!}`}
    order by a.kind, a.slot
    for update of a`,
  );
  return found.map((r) => mapRow(artifacts, r));
}

export async function insertArtifacts(db: Executor, values: NewArtifact[]) {
  if (values.length === 0) return [];
  return db.insert(artifacts).values(values).returning();
}

export async function deleteArtifact(db: Executor, id: string) {
  const [row] = await db.delete(artifacts).where(eq(artifacts.id, id)).returning();
  return row ?? null;
}

/**
 * The stored blobs of these sha256s, locked FOR SHARE in one order: a collection that wants to
 * delete one waits for this transaction, then sees the artifact that now references it
 * (collectBlobs).
 */
export async function lockBlobs(db: Executor, shas: readonly string[]) {
  if (shas.length === 0) return [];
  return db
    .select()
    .from(artifactBlobs)
    .where(inArray(artifactBlobs.sha256, [...new Set(shas)]))
    .orderBy(asc(artifactBlobs.sha256))
    .for('share');
}

export async function findBlobs(db: Executor, shas: readonly string[]) {
  if (shas.length === 0) return [];
  return db.select().from(artifactBlobs).where(inArray(artifactBlobs.sha256, [...shas]));
}

/** Records verified bytes (distinct sha256s): the rows inserted; where the same bytes were stored meanwhile, the existing row stands (left out). */
export async function insertBlobs(db: Executor, blobs: (typeof artifactBlobs.$inferInsert)[]) {
  if (blobs.length === 0) return [];
  return db.insert(artifactBlobs).values(blobs).onConflictDoNothing().returning();
}

/** Artifacts whose bytes are stored, each with its content type, in one statement (those stored already are left out). */
export async function markStoredMany(db: Executor, stored: readonly { id: string; contentType: string }[]) {
  if (stored.length === 0) return [];
  const found = await rows(
    db,
    sql`/* markStoredMany */
    update artifacts a set stored_at = now(), content_type = v.content_type, upload_key = null, upload_id = null, part_size = null, completing_until = null
    from unnest(${sql.param(stored.map((s) => s.id))}::uuid[], ${sql.param(stored.map((s) => s.contentType))}::text[]) as v(id, content_type)
    where a.id = v.id and a.stored_at is null
    returning a.*`,
  );
  return found.map((r) => mapRow(artifacts, r));
}

/**
 * An unfinished upload declared again by another key (the run's next attempt on another agent, or
 * another editor): that key sends the rest and completes it.
 */
export async function takeOverUpload(db: Executor, id: string, apiKeyId: string, attempt: number | null) {
  const [row] = await db.update(artifacts).set({ begunByKeyId: apiKeyId, attempt }).where(eq(artifacts.id, id)).returning();
  return row!;
}

/** Records the store's upload id, unless a concurrent begin recorded one first (then null). */
export async function setUploadId(db: Executor, id: string, uploadKey: string, uploadId: string) {
  const [row] = await db
    .update(artifacts)
    .set({ uploadId })
    .where(and(eq(artifacts.id, id), eq(artifacts.uploadKey, uploadKey), isNull(artifacts.uploadId)))
    .returning();
  return row ?? null;
}

/**
 * claimListedCompletions: one completeUpload at a time per artifact, for at most `seconds` (a
 * verifier that died leaves the claim to lapse); not those stored, pruned or being completed. The
 * artifacts a completeUpload(s) call lists are read and claimed in one statement: every listed one
 * comes back as it stands, `claimed` when this call claimed it. Nothing is claimed unless every
 * listed artifact exists, was begun by `apiKeyId` and is not pruned (the caller answers which one
 * is not).
 */
export async function claimListedCompletions(db: Executor, ids: readonly string[], apiKeyId: string, seconds: number) {
  if (ids.length === 0) return [];
  const found = await rows<Record<string, unknown> & { claimed: boolean }>(
    db,
    sql`/* claimListedCompletions */
    with listed as (select * from artifacts where id = any(${sql.param([...ids])}::uuid[])),
    allowed as (
      select count(*) = ${ids.length} and coalesce(bool_and(begun_by_key_id is not distinct from ${apiKeyId}::uuid and pruned_at is null), false) as ok from listed
    ),
    claimed as (
      update artifacts a set completing_until = now() + make_interval(secs => ${seconds})
      from allowed
      where allowed.ok and a.id = any(${sql.param([...ids])}::uuid[]) and a.stored_at is null and a.pruned_at is null and a.upload_key is not null
        and (a.completing_until is null or a.completing_until < now())
      returning a.*
    )
    select c.*, true as claimed from claimed c
    union all
    select l.*, false as claimed from listed l where l.id not in (select id from claimed)`,
  );
  return found.map((r) => ({ artifact: mapRow(artifacts, r), claimed: r.claimed === true }));
}

/**
 * What a run hears of its artifacts being stored, in one statement: a CHECKPOINT_STORED event per
 * stored checkpoint of `storedIds` (with a step), and a runUpdated note per run of `runIds`. (As
 * appendEvents, then announceRunsChanged of the runs read, which took four statements.)
 */
export async function announceStored(db: Executor, runIds: readonly string[], storedIds: readonly string[]) {
  if (runIds.length === 0) return;
  await db.execute(sql`/* announceStored */
    with ${insertEventsCte(
      'event',
      sql`select a.run_id, 'CHECKPOINT_STORED', 'Stored checkpoint at step ' || a.step || ' (' || a.size_bytes || ' bytes)',
          jsonb_build_object('step', a.step, 'artifactId', a.id, 'sizeBytes', a.size_bytes, 'sha256', a.sha256)
        from artifacts a where a.id = any(${sql.param([...storedIds])}::uuid[]) and a.kind = 'CHECKPOINT' and a.step is not null
        order by a.run_id, a.step`,
    )}
    select ${announceEventsExpression('event')} as events_announced,
      (select count(${announceRunChangedExpression('r')}) from runs r where r.id = any(${sql.param([...runIds])}::uuid[])) as runs_announced`);
}

/** After a failed completion: the same upload again (missing parts), or a fresh one (bad bytes). */
export async function releaseCompletion(db: Executor, id: string, freshUpload: { uploadKey: string } | null) {
  await db
    .update(artifacts)
    .set(freshUpload ? { completingUntil: null, uploadKey: freshUpload.uploadKey, uploadId: null } : { completingUntil: null })
    .where(eq(artifacts.id, id));
}

export function findArtifactsByIds(db: Executor, ids: readonly string[]) {
  return db.select().from(artifacts).where(inArray(artifacts.id, [...ids]));
}

export function findArtifactsByRuns(db: Executor, runIds: readonly string[]) {
  return db
    .select()
    .from(artifacts)
    .where(inArray(artifacts.runId, [...runIds]))
    .orderBy(asc(artifacts.createdAt), asc(artifacts.id));
}

/** findDatasetArtifacts: by (dataset, kind, slot) triples, one statement for a page of images. */
export async function findDatasetArtifacts(db: Executor, keys: readonly { datasetId: string; kind: ArtifactKind; slot: string }[]) {
  const found = await rows(
    db,
    sql`/* findDatasetArtifacts */
    select a.* from artifacts a
    join unnest(${sql.param(keys.map((k) => k.datasetId))}::uuid[], ${sql.param(keys.map((k) => k.kind))}::text[], ${sql.param(keys.map((k) => k.slot))}::text[])
      as k(dataset_id, kind, slot)
      on a.dataset_id = k.dataset_id and a.kind = k.kind and a.slot = k.slot`,
  );
  return found.map((r) => mapRow(artifacts, r));
}

/** Per dataset: how many of its images have their bytes stored. */
export async function storedImageCounts(db: Executor, datasetIds: readonly string[]) {
  const found = await rows<{ dataset_id: string; stored: number }>(
    db,
    sql`/* storedImageCounts */
    select i.dataset_id, count(a.id)::int as stored
    from dataset_images i
    left join artifacts a on a.dataset_id = i.dataset_id and a.kind = 'DATASET_IMAGE' and a.slot = 'name:' || i.file_name
      and a.stored_at is not null and a.pruned_at is null and a.sha256 = i.sha256
    where i.dataset_id = any(${sql.param([...datasetIds])}::uuid[])
    group by i.dataset_id`,
  );
  return new Map(found.map((r) => [r.dataset_id, Number(r.stored)]));
}

/** Per run: bytes of the distinct blobs its stored artifacts reference. */
export async function storageBytes(db: Executor, runIds: readonly string[]) {
  const found = await rows<{ run_id: string; bytes: string | number }>(
    db,
    sql`/* storageBytes */
    select run_id, coalesce(sum(size_bytes), 0)::float8 as bytes from (
      select distinct a.run_id, b.sha256, b.size_bytes
      from artifacts a join artifact_blobs b on b.sha256 = a.sha256
      where a.run_id = any(${sql.param([...runIds])}::uuid[]) and a.stored_at is not null and a.pruned_at is null
    ) held group by run_id`,
  );
  return new Map(found.map((r) => [r.run_id, Number(r.bytes)]));
}

/**
 * dropObsoleteOptimizerState: optimizer state is only good for resuming from its own checkpoint, and
 * a run resumes from its newest stored one; older optimizer states (stored or still uploading) go.
 */
export async function dropObsoleteOptimizerState(db: Executor, runId: string) {
  const found = await rows(
    db,
    sql`/* dropObsoleteOptimizerState */
    with newest as (
      select max(step) as step from artifacts
      where run_id = ${runId} and kind = 'CHECKPOINT' and step is not null and stored_at is not null and pruned_at is null
    )
    update artifacts a set pruned_at = now(), completing_until = null
    from newest
    where a.run_id = ${runId} and a.kind = 'OPTIMIZER_STATE' and a.pruned_at is null and a.step < newest.step
    returning a.*`,
  );
  return found.map((r) => mapRow(artifacts, r));
}

/**
 * pruneCheckpoints: drops the bytes of a run's stored checkpoints beyond the newest `keep`, except
 * the final one, the promoted one, rated ones, and, while the run can still be resumed, its newest
 * stored one, and one an unfinished continued run starts from. Their optimizer state goes with them; checkpoint records get pruned_at and stay.
 */
export async function pruneCheckpoints(db: Executor, runId: string, keep: number) {
  const found = await rows(
    db,
    sql`/* pruneCheckpoints */
    with stored as (
      select a.id, a.step, row_number() over (order by a.step desc) as newest_rank
      from artifacts a
      where a.run_id = ${runId} and a.kind = 'CHECKPOINT' and a.step is not null and a.stored_at is not null and a.pruned_at is null
    ),
    doomed as (
      select s.id, s.step from stored s
      join runs r on r.id = ${runId}
      left join checkpoints c on c.run_id = r.id and c.step = s.step
      where s.newest_rank > ${keep}
        and not coalesce(c.is_final, false)
        and c.id is distinct from r.best_checkpoint_id
        and not exists (select 1 from ratings rt where rt.checkpoint_id = c.id)
        and not (s.newest_rank = 1 and r.status not in ${FINISHED_SQL})
        -- A continued run that has not finished may still need it to start from.
        and not exists (select 1 from runs cr where cr.continued_from_checkpoint_id = c.id and cr.status not in ${FINISHED_SQL})
    ),
    pruned as (
      update artifacts a set pruned_at = now(), completing_until = null
      where a.run_id = ${runId} and a.pruned_at is null
        and ((a.kind = 'CHECKPOINT' and a.id in (select id from doomed))
          or (a.kind = 'OPTIMIZER_STATE' and a.step in (select step from doomed)))
      returning a.*
    ),
    marked as (
      update checkpoints c set pruned_at = coalesce(c.pruned_at, now())
      where c.run_id = ${runId} and c.step in (select step from doomed)
      returning c.id
    )
    select p.*, (select array_agg(id) from marked) as checkpoint_ids from pruned p`,
  );
  return {
    artifacts: found.map((r) => mapRow(artifacts, r)),
    checkpointIds: (found[0]?.checkpoint_ids as string[] | null | undefined) ?? [],
  };
}

/**
 * collectBlobs: deletes the rows of blobs among `shas` that no unpruned artifact references and
 * returns them, so their objects can be deleted after COMMIT. Two statements: the first locks the
 * candidates (waiting for any begin that holds one FOR SHARE), the second re-checks references in a
 * fresh snapshot. One statement would re-check only the blob row after waiting, not the artifacts,
 * and could delete bytes a concurrent begin had just counted on.
 */
export async function collectBlobs(db: Executor, shas: readonly string[]) {
  const unique = [...new Set(shas)];
  if (unique.length === 0) return [];
  const unreferenced = sql`not exists (select 1 from artifacts a where a.sha256 = b.sha256 and a.pruned_at is null)`;
  const locked = await rows<{ sha256: string }>(
    db,
    sql`/* lockUnreferencedBlobs */
    select b.sha256 from artifact_blobs b where b.sha256 = any(${sql.param(unique)}::text[]) and ${unreferenced}
    order by b.sha256 for update of b`,
  );
  if (locked.length === 0) return [];
  const deleted = await rows(
    db,
    sql`/* deleteUnreferencedBlobs */
    delete from artifact_blobs b where b.sha256 = any(${sql.param(locked.map((l) => l.sha256))}::text[]) and ${unreferenced}
    returning b.*`,
  );
  return deleted.map((r) => mapRow(artifactBlobs, r));
}

/** Runs (of `runIds`) an AGENT key may read: one of its agents holds or once held them. */
export async function runsReadableByAgentKey(db: Executor, apiKeyId: string, runIds: readonly string[]) {
  const found = await rows<{ id: string }>(
    db,
    sql`/* runsReadableByAgentKey */
    with mine as (select id from agents where api_key_id = ${apiKeyId})
    select r.id from runs r
    where r.id = any(${sql.param([...runIds])}::uuid[])
      and (r.agent_id in (select id from mine)
        or exists (select 1 from run_events e where e.run_id = r.id and e.type = 'CLAIMED'
                   and e.data->>'agentId' in (select id::text from mine)))`,
  );
  return new Set(found.map((r) => r.id));
}

/** Datasets (of `datasetIds`) an AGENT key may read: the datasets of runs it may read. */
export async function datasetsReadableByAgentKey(db: Executor, apiKeyId: string, datasetIds: readonly string[]) {
  const found = await rows<{ dataset_id: string }>(
    db,
    sql`/* datasetsReadableByAgentKey */
    with mine as (select id from agents where api_key_id = ${apiKeyId})
    select distinct r.dataset_id from runs r
    where r.dataset_id = any(${sql.param([...datasetIds])}::uuid[])
      and (r.agent_id in (select id from mine)
        or exists (select 1 from run_events e where e.run_id = r.id and e.type = 'CLAIMED'
                   and e.data->>'agentId' in (select id::text from mine)))`,
  );
  return new Set(found.map((r) => r.dataset_id));
}

/**
 * findDatasetImageFor: the image a dataset file belongs to. An image file must be the image of that
 * name; a caption `<stem>.txt` belongs to the image whose name without its extension is `<stem>`.
 */
export async function findDatasetImageFor(db: Executor, datasetId: string, fileName: string, kind: 'DATASET_IMAGE' | 'DATASET_CAPTION') {
  const stem = fileName.replace(/\.txt$/, '');
  const [row] = await rows<{ id: string; file_name: string; sha256: string | null }>(
    db,
    kind === 'DATASET_IMAGE'
      ? sql`/* findDatasetImageFor */ select id, file_name, sha256 from dataset_images where dataset_id = ${datasetId} and file_name = ${fileName}`
      : sql`/* findDatasetImageFor */ select id, file_name, sha256 from dataset_images
          where dataset_id = ${datasetId} and regexp_replace(file_name, '\\.[^.]*$', '') = ${stem} limit 1`,
  );
  return row ?? null;
}
