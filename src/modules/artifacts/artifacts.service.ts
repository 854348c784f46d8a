// The artifact store's rules: declaring an upload (resumable, deduplicated, lease-fenced for
// agents), completing it (verified before it counts as stored), signed URLs for those who may read
// the files, and retention (what is pruned, and which bytes are then deleted for real).
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../../config.js';
import type { Database, Executor } from '../../db/client.js';
import { ARTIFACT_KINDS } from '../../db/schema.js';
import { apiError, badInput, forbidden, notFound } from '../../graphql/errors.js';
import { parseId } from '../../graphql/ids.js';
import type { Principal } from '../keys/keys.service.js';
import { explainFencedMiss } from '../dispatch/dispatch.service.js';
import { findDatasetsByIds, type DatasetRecord } from '../datasets/datasets.store.js';
import { plainFileName, isStoredDataset } from '../datasets/datasets.service.js';
import { appendEvents } from '../runs/events.store.js';
import { announceRunChanged } from '../../live/run-feeds.js';
import { findRunsByIds } from '../runs/runs.store.js';
import { findCheckpointsByIds, type CheckpointRecord } from '../checkpoints/checkpoints.store.js';
import { parseInput } from '../validation.js';
import { blobKey, partCount, thumbnailKey, UploadGoneError, type ArrivedBytes, type BlobDriver, type UploadTarget } from './drivers/driver.js';
import { EMBEDDED_STORE_DIR, FileDriver } from './drivers/file.js';
import { loadSigningKey, UrlSigner } from './signing.js';
import { isImageType, makeThumbnail, OCTET_STREAM, safeFileName, sniffContentType, SNIFF_BYTES, TEXT_PLAIN, THUMBNAIL_SOURCE_MAX_BYTES } from './media.js';
import { OffThreadSha256 } from './off-thread-sha256.js';
import * as store from './artifacts.store.js';
import type { ArtifactKind, ArtifactRecord, Owner } from './artifacts.store.js';
import { countArtifactBytes, countArtifactVerification } from '../../telemetry/metrics.js';
import type { ServiceDeps } from '../service-deps.js';

export type { ArtifactRecord };

export const RUN_KINDS: ArtifactKind[] = ['CHECKPOINT', 'OPTIMIZER_STATE', 'SAMPLE', 'TRAINER_CONFIG', 'TRAINER_LOG'];
export const DATASET_KINDS: ArtifactKind[] = ['DATASET_IMAGE', 'DATASET_CAPTION'];
const TEXT_KINDS = new Set<ArtifactKind>(['DATASET_CAPTION', 'TRAINER_CONFIG', 'TRAINER_LOG']);
const THUMBNAIL_KINDS = new Set<ArtifactKind>(['SAMPLE', 'DATASET_IMAGE']);

/** How long one completeUpload may hold an artifact while it verifies the bytes. */
const COMPLETION_CLAIM_SECONDS = 900;
/** Signed URLs are made per minute: the same URL all minute long, so browsers keep images cached. */
const URL_WINDOW_SECONDS = 60;

export interface ArtifactUploadResult {
  artifact: ArtifactRecord;
  alreadyStored: boolean;
  partSize: number | null;
  parts: { number: number; url: string }[];
}

export interface PruneOutcome {
  runId: string;
  pruned: CheckpointRecord[];
  freedBytes: number;
}

const sha256Hex = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
  .transform((s) => s.toLowerCase());

const uploadInput = z.object({
  kind: z.enum(ARTIFACT_KINDS),
  fileName: plainFileName,
  sizeBytes: z.number().int('must be a whole number of bytes').min(0, 'must not be negative'),
  sha256: sha256Hex,
  contentType: z.string().trim().max(200, 'must be at most 200 characters').nullish(),
  step: z.number().int().min(0, 'must be 0 or more').nullish(),
  promptIndex: z.number().int().min(0, 'must be 0 or more').nullish(),
});
type Declaration = z.output<typeof uploadInput>;

/** Files per beginImportUploads or completeUploads call. */
export const MAX_UPLOADS_PER_CALL = 100;

const completedParts = z
  .array(z.object({ number: z.number().int().min(1, 'must be 1 or more'), etag: z.string().max(200, 'must be at most 200 characters') }))
  .max(10_000, 'at most 10,000 parts');

const completedUploads = z.array(z.object({ artifactId: z.string(), parts: completedParts })).max(MAX_UPLOADS_PER_CALL, `at most ${MAX_UPLOADS_PER_CALL} uploads per call`);

/** One upload of a completion must start over: its bytes are gone or not the declared ones (the error to answer). */
class FreshUploadError extends Error {
  constructor(readonly cause: unknown) {
    super('the upload starts over');
  }
}

type Decision = { artifact: ArtifactRecord; alreadyStored: boolean; replaced: ArtifactRecord | null; effects: { pruned: ArtifactRecord[] } | null };

/**
 * What makes two declarations the same artifact: a checkpoint (or its optimizer state) by step, a
 * sample by step and prompt, anything else by file name. Declaring a slot again resumes its upload
 * (same bytes) or replaces it (other bytes: a newer attempt's file for the same step).
 */
export function slotOf(d: Pick<Declaration, 'kind' | 'step' | 'promptIndex' | 'fileName'>) {
  if ((d.kind === 'CHECKPOINT' || d.kind === 'OPTIMIZER_STATE') && d.step != null) return `step:${d.step}`;
  if (d.kind === 'SAMPLE' && d.step != null && d.promptIndex != null) return `sample:${d.step}:${d.promptIndex}`;
  return `name:${d.fileName}`;
}

export const isStored = (a: ArtifactRecord) => a.storedAt != null && a.prunedAt == null;

const targetOf = (a: ArtifactRecord): UploadTarget => ({ key: a.uploadKey!, uploadId: a.uploadId, size: a.sizeBytes, partSize: a.partSize! });

const unquote = (etag: string) => etag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');

export class ArtifactService {
  constructor(
    readonly driver: BlobDriver,
    /** The embedded driver's URL signer; null with S3 (the bucket checks its own URLs). */
    readonly signer: UrlSigner | null,
    private readonly db: Database,
    private readonly config: Config,
    private readonly log: Logger,
  ) {}

  // --- uploads -------------------------------------------------------------------------------

  async beginRunUpload(principal: Principal, args: { runId: string; leaseToken: string; input: unknown }, origin: string) {
    const runId = parseId(args.runId, 'runId');
    const d = this.parseDeclaration(args.input, RUN_KINDS);
    return this.begin({ runId }, d, principal, origin, async (tx) => {
      const fence = { runId, leaseToken: args.leaseToken, apiKeyId: principal.keyId };
      const run = await store.runForUpload(tx, fence);
      if (!run) return explainFencedMiss(tx, principal, runId, args.leaseToken, 'upload files for');
      return run.attempt;
    });
  }

  /** An upload for a run written by someone other than its agent (an import): `authorize` fences it and answers the run's attempt. */
  async beginRunUploadAuthorizedBy(principal: Principal, args: { runId: string; input: unknown }, origin: string, authorize: (tx: Executor) => Promise<number>) {
    const runId = parseId(args.runId, 'runId');
    return this.begin({ runId }, this.parseDeclaration(args.input, RUN_KINDS), principal, origin, authorize);
  }

  async beginDatasetUpload(principal: Principal, args: { datasetId: string; input: unknown }, origin: string) {
    const datasetId = parseId(args.datasetId, 'datasetId');
    const d = this.parseDeclaration(args.input, DATASET_KINDS);
    return this.begin({ datasetId }, d, principal, origin, async (tx) => {
      const [dataset] = await findDatasetsByIds(tx, [datasetId]);
      if (!dataset) throw notFound('datasetId', 'Dataset', args.datasetId);
      if (!isStoredDataset(dataset)) throw badInput('datasetId', `dataset ${datasetId} lives at ${dataset.uri}; only a dataset created without uri keeps its files in loralab`);
      await checkDatasetFile(tx, dataset, d);
      return null;
    });
  }

  private parseDeclaration(input: unknown, kinds: ArtifactKind[], field = 'input'): Declaration {
    const d = parseInput(uploadInput, input, field);
    if (!kinds.includes(d.kind)) throw badInput(`${field}.kind`, `must be one of ${kinds.join(', ')} here`);
    if (d.sizeBytes > this.config.artifacts.maxBytes) {
      throw apiError('PAYLOAD_TOO_LARGE', `${field}.sizeBytes: ${d.sizeBytes} bytes is more than the ${this.config.artifacts.maxBytes} an artifact may have`, {
        field: `${field}.sizeBytes`,
      });
    }
    return d;
  }

  /** An import's files (beginImportUploads): many declarations for one run, `authorize` fencing them once. */
  async beginRunUploadsAuthorizedBy(principal: Principal, args: { runId: string; inputs: unknown }, origin: string, authorize: (tx: Executor) => Promise<number>) {
    const runId = parseId(args.runId, 'runId');
    if (!Array.isArray(args.inputs)) throw badInput('inputs', 'must be a list');
    if (args.inputs.length > MAX_UPLOADS_PER_CALL) throw badInput('inputs', `at most ${MAX_UPLOADS_PER_CALL} files per call`);
    const declarations = args.inputs.map((input, i) => this.parseDeclaration(input, RUN_KINDS, `inputs.${i}`));
    return this.beginMany({ runId }, declarations, principal, origin, authorize);
  }

  private async begin(owner: Owner, d: Declaration, principal: Principal, origin: string, authorize: (tx: Executor) => Promise<number | null>) {
    return (await this.beginMany(owner, [d], principal, origin, authorize))[0]!;
  }

  /**
   * begin…Upload(s): in one transaction, fenced once, each declaration under a lock on its slot
   * (decide). Slots are locked in one order (kind, slot) whatever order the caller listed them in,
   * so two calls declaring the same files cannot deadlock. The store is only asked after COMMIT.
   */
  private async beginMany(owner: Owner, ds: Declaration[], principal: Principal, origin: string, authorize: (tx: Executor) => Promise<number | null>) {
    const keyOf = (d: { kind: ArtifactKind; slot: string }) => `${d.kind}\0${d.slot}`;
    const keys = ds.map((d) => ({ kind: d.kind, slot: slotOf(d) }));
    const order = keys.map((k, i) => ({ i, key: keyOf(k) })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.i - b.i));
    const { decided, effects } = await this.db.transaction(async (tx) => {
      const attempt = await authorize(tx);
      const out: Decision[] = [];
      // The same slot twice in one call: one after the other, each seeing the one before.
      if (new Set(order.map((o) => o.key)).size < ds.length) {
        for (const { i } of order) out[i] = await this.decide(tx, owner, ds[i]!, principal, attempt);
        return { decided: out, effects: null };
      }
      // Usually every slot is new: their locks, the blobs they may share and their rows take one
      // statement each, however many files. A slot declared before goes through decide.
      const existing = new Set((await store.findSlotsForUpdate(tx, owner, keys)).map((a) => keyOf(a)));
      const fresh = ds.flatMap((d, i) => (existing.has(keyOf(keys[i]!)) ? [] : [i]));
      const blobs = new Map((await store.lockBlobs(tx, fresh.map((i) => ds[i]!.sha256))).map((b) => [b.sha256, b]));
      for (const { i, key } of order) if (existing.has(key)) out[i] = await this.decide(tx, owner, ds[i]!, principal, attempt);
      const inserted = new Map(
        (
          await store.insertArtifacts(
            tx,
            fresh.map((i) => this.newArtifact(owner, ds[i]!, blobs.get(ds[i]!.sha256) ?? null, principal, attempt)),
          )
        ).map((a) => [keyOf(a), a]),
      );
      for (const i of fresh) {
        const artifact = inserted.get(keyOf(keys[i]!))!;
        out[i] = { artifact, alreadyStored: artifact.storedAt != null, replaced: null, effects: null };
      }
      // Files whose bytes are stored already (another run's, say) are stored at once.
      const storedAtOnce = fresh.map((i) => out[i]!.artifact).filter((a) => a.storedAt != null);
      return { decided: out, effects: storedAtOnce.length ? await this.onStored(tx, storedAtOnce) : null };
    });

    // A replaced artifact's unfinished upload and, when nothing else references them, its bytes.
    await this.settle([...decided.flatMap((x) => [...(x.replaced ? [x.replaced] : []), ...(x.effects?.pruned ?? [])]), ...(effects?.pruned ?? [])]);
    return Promise.all(
      decided.map((x) =>
        x.alreadyStored ? ({ artifact: x.artifact, alreadyStored: true, partSize: null, parts: [] } satisfies ArtifactUploadResult) : this.missingParts(x.artifact, origin),
      ),
    );
  }

  /**
   * One declaration, in the begin's transaction: under a lock on the artifact's slot, either the
   * same declaration again (resume, or "already stored" when the bytes arrived meanwhile), or a new
   * artifact, stored at once when the same bytes are stored already.
   */
  private async decide(tx: Executor, owner: Owner, d: Declaration, principal: Principal, attempt: number | null): Promise<Decision> {
    const [existing = null] = await store.findSlotsForUpdate(tx, owner, [{ kind: d.kind, slot: slotOf(d) }]);
    let replaced: ArtifactRecord | null = null;
    if (existing && existing.sha256 === d.sha256 && existing.sizeBytes === d.sizeBytes) {
      if (existing.prunedAt) throw apiError('CONFLICT', `This ${d.kind.toLowerCase()} was stored and then pruned by retention; it is not stored again`, { field: 'input' });
      if (existing.storedAt) return { artifact: existing, alreadyStored: true, replaced, effects: null };
      const [blob] = await store.lockBlobs(tx, [d.sha256]);
      if (!blob) {
        const resumed = existing.begunByKeyId === principal.keyId ? existing : await store.takeOverUpload(tx, existing.id, principal.keyId, attempt);
        return { artifact: resumed, alreadyStored: false, replaced, effects: null };
      }
      // The same bytes were stored by another upload meanwhile: this one has nothing left to send.
      const [stored] = await store.markStoredMany(tx, [{ id: existing.id, contentType: blob.contentType }]);
      return { artifact: stored, alreadyStored: true, replaced: existing, effects: await this.onStored(tx, [stored]) };
    }
    if (existing) replaced = await store.deleteArtifact(tx, existing.id);
    const [blob = null] = await store.lockBlobs(tx, [d.sha256]);
    const [artifact] = await store.insertArtifacts(tx, [this.newArtifact(owner, d, blob, principal, attempt)]);
    return { artifact, alreadyStored: blob != null, replaced, effects: blob ? await this.onStored(tx, [artifact]) : null };
  }

  /** The row of a new artifact: stored at once when `blob` (the same bytes) is stored already, else to upload. */
  private newArtifact(owner: Owner, d: Declaration, blob: store.BlobRecord | null, principal: Principal, attempt: number | null): store.NewArtifact {
    return {
      ...owner,
      kind: d.kind,
      slot: slotOf(d),
      step: d.step ?? null,
      promptIndex: d.promptIndex ?? null,
      fileName: d.fileName,
      sizeBytes: d.sizeBytes,
      sha256: d.sha256,
      contentType: blob?.contentType ?? d.contentType ?? null,
      attempt,
      begunByKeyId: principal.keyId,
      uploadKey: blob ? null : blobKey(d.sha256),
      partSize: blob ? null : this.config.artifacts.partSizeBytes,
      storedAt: blob ? new Date() : null,
    };
  }

  /** The parts of an upload the store has not received, each with a fresh signed PUT URL. */
  private async missingParts(artifact: ArtifactRecord, origin: string): Promise<ArtifactUploadResult> {
    let current = artifact;
    let received: Awaited<ReturnType<BlobDriver['receivedParts']>> = [];
    if (current.uploadId == null) current = await this.openUpload(current);
    try {
      received = await this.driver.receivedParts(targetOf(current));
    } catch (err) {
      if (!(err instanceof UploadGoneError)) throw err;
      // The store forgot the upload (aborted by a bucket lifecycle rule, say): start a fresh one.
      await store.releaseCompletion(this.db.orm, current.id, { uploadKey: blobKey(current.sha256) });
      current = await this.openUpload((await store.findArtifactsByIds(this.db.orm, [current.id]))[0]!);
    }
    const target = targetOf(current);
    const expiresAt = this.expiresAt(this.config.artifacts.uploadUrlTtlSeconds);
    const parts = [];
    for (const number of missingPartNumbers(target, received)) {
      parts.push({ number, url: this.absolute(await this.driver.partUrl(target, number, expiresAt), origin) });
    }
    return { artifact: current, alreadyStored: false, partSize: target.partSize, parts };
  }

  /** Prepares the store for an artifact's upload (idempotent); records an S3 multipart upload id. */
  private async openUpload(artifact: ArtifactRecord): Promise<ArtifactRecord> {
    const target = targetOf(artifact);
    const uploadId = await this.driver.createUpload(target);
    if (uploadId == null) return artifact;
    const recorded = await store.setUploadId(this.db.orm, artifact.id, target.key, uploadId);
    if (recorded) return recorded;
    // A concurrent begin opened one first: use that one.
    await this.driver.abortUpload({ ...target, uploadId });
    return (await store.findArtifactsByIds(this.db.orm, [artifact.id]))[0]!;
  }

  /**
   * completeUpload: the parts the store received (whatever the caller lists, which may be only the
   * ones it sent since a restart) must cover the file exactly; listed ETags must match them. Only
   * bytes whose size and sha256 are the declared ones are recorded: the blob is shared by every
   * later upload of that sha256, so unverified bytes would let one client poison another's files.
   * The sha256 is the one the driver computed as the bytes arrived when it can vouch for all of
   * them (the embedded store, parts received by this process), else the object is read back whole.
   */
  async completeUpload(principal: Principal, args: { artifactId: string; parts: unknown }) {
    const id = parseId(args.artifactId, 'artifactId');
    const listed = parseInput(completedParts, args.parts, 'parts');
    return (await this.completeMany(principal, [{ id, listed, field: '' }]))[0]!;
  }

  /** completeUploads: completeUpload of several uploads, their records written in one transaction. */
  async completeUploads(principal: Principal, args: { uploads: unknown }) {
    const uploads = parseInput(completedUploads, args.uploads, 'uploads');
    const seen = new Set<string>();
    return this.completeMany(
      principal,
      uploads.map((u, i) => {
        const id = parseId(u.artifactId, `uploads.${i}.artifactId`);
        if (seen.has(id)) throw badInput(`uploads.${i}.artifactId`, `artifact ${id} is listed twice`);
        seen.add(id);
        return { id, listed: u.parts, field: `uploads.${i}.` };
      }),
    );
  }

  /**
   * Every upload is checked before any is claimed (an artifact that is missing, another key's or
   * pruned fails the whole call); the claimed ones are verified at once, and those whose bytes
   * verify are recorded in one transaction, whatever happened to the others. A failure is then
   * answered: the first one's error. Artifacts come back in the order asked.
   */
  private async completeMany(principal: Principal, uploads: { id: string; listed: z.output<typeof completedParts>; field: string }[]): Promise<ArtifactRecord[]> {
    // The checks and the claims in one statement: it claims nothing unless every upload passes them.
    const listed = await store.claimListedCompletions(this.db.orm, uploads.map((u) => u.id), principal.keyId, COMPLETION_CLAIM_SECONDS);
    const found = new Map(listed.map((l) => [l.artifact.id, l.artifact]));
    const claimed = new Map(listed.filter((l) => l.claimed).map((l) => [l.artifact.id, l.artifact]));
    const results = new Map<string, ArtifactRecord>();
    for (const { id, field } of uploads) {
      const artifact = found.get(id);
      if (!artifact) throw notFound(`${field}artifactId`, 'Artifact', id);
      if (artifact.begunByKeyId !== principal.keyId) throw forbidden(`Artifact ${id} was begun by another key; only that key may complete it`);
      if (artifact.prunedAt) throw apiError('CONFLICT', `Artifact ${id} was dropped by retention before it was complete`, { field: `${field}artifactId` });
      if (artifact.storedAt) results.set(id, artifact);
    }
    const pending = uploads.filter((u) => !results.has(u.id));
    const released = new Map<string, { uploadKey: string } | null>([...claimed.keys()].map((id) => [id, null]));
    try {
      const unclaimed = pending.filter((u) => !claimed.has(u.id));
      if (unclaimed.length) {
        for (const now of await store.findArtifactsByIds(this.db.orm, unclaimed.map((u) => u.id))) if (now.storedAt) results.set(now.id, now);
        const busy = unclaimed.find((u) => !results.has(u.id));
        if (busy) throw apiError('CONFLICT', `Artifact ${busy.id} is being completed by another call; call again when it returns`, { field: `${busy.field}artifactId` });
      }

      const checks = await Promise.all(
        pending.map(async (u) => {
          const artifact = claimed.get(u.id)!;
          try {
            return { ok: true as const, artifact, ...(await this.verify(artifact, u.listed, u.field)) };
          } catch (err) {
            if (err instanceof FreshUploadError) {
              released.set(u.id, { uploadKey: blobKey(artifact.sha256) });
              return { ok: false as const, err: err.cause };
            }
            return { ok: false as const, err };
          }
        }),
      );
      const verified = checks.filter((c) => c.ok);
      if (verified.length) {
        const done = await this.db.transaction(async (tx) => {
          // One row per sha256: of two uploads of the same bytes in one call, the second finds the first's.
          const firsts = [...new Map(verified.map((v) => [v.artifact.sha256, v])).values()];
          const insertedBlobs = await store.insertBlobs(
            tx,
            firsts.map((v) => ({ sha256: v.artifact.sha256, sizeBytes: v.seen.size, storageKey: v.artifact.uploadKey!, contentType: v.contentType, thumbnailKey: v.thumbKey })),
          );
          const inserted = new Set(insertedBlobs.map((b) => b.storageKey));
          const blobs = new Map(insertedBlobs.map((b) => [b.sha256, b]));
          // Our artifacts reference these sha256s, so blobs stored meanwhile cannot be collected under us.
          for (const b of await store.lockBlobs(tx, verified.map((v) => v.artifact.sha256).filter((sha) => !blobs.has(sha)))) blobs.set(b.sha256, b);
          const marked = new Map(
            (await store.markStoredMany(tx, verified.map((v) => ({ id: v.artifact.id, contentType: blobs.get(v.artifact.sha256)!.contentType })))).map((a) => [a.id, a]),
          );
          const stored = verified.map((v) => ({
            artifact: marked.get(v.artifact.id)!,
            redundant: !inserted.has(v.artifact.uploadKey!),
            storageKey: v.artifact.uploadKey!,
            thumbKey: v.thumbKey,
            size: v.seen.size,
          }));
          return { stored, effects: await this.onStored(tx, stored.map((s) => s.artifact)) };
        });
        for (const s of done.stored) {
          released.delete(s.artifact.id);
          results.set(s.artifact.id, s.artifact);
          countArtifactBytes('in', s.size);
        }
        // The same bytes were stored by another upload while one was under way: keep one copy.
        const redundant = done.stored.filter((s) => s.redundant).flatMap((s) => [s.storageKey, ...(s.thumbKey ? [s.thumbKey] : [])]);
        if (redundant.length) await this.driver.delete(redundant);
        await this.settle([...done.effects.pruned, ...done.stored.filter((s) => s.artifact.prunedAt).map((s) => s.artifact)]);
      }
      const failed = checks.find((c) => !c.ok);
      if (failed) throw failed.err;
      return uploads.map((u) => results.get(u.id)!);
    } finally {
      // Claims not recorded: the same upload again (missing parts), or a fresh one (bad bytes).
      await Promise.all([...released].map(([id, fresh]) => store.releaseCompletion(this.db.orm, id, fresh)));
    }
  }

  /**
   * The checks of one claimed upload, before it is recorded: its parts joined into the object, its
   * size and sha256 the declared ones, its type sniffed and, for an image, its thumbnail stored.
   * A FreshUploadError means the upload must start over (its bytes are gone or wrong).
   */
  private async verify(claimed: ArtifactRecord, listed: z.output<typeof completedParts>, field: string) {
    const target = targetOf(claimed);
    let received: Awaited<ReturnType<BlobDriver['receivedParts']>> = [];
    let finishedBefore = false;
    try {
      received = await this.driver.receivedParts(target);
    } catch (err) {
      // An earlier completion joined the parts and then died before recording them: verify that object.
      if (!(err instanceof UploadGoneError)) throw err;
      finishedBefore = true;
    }
    const wantsThumbnail = THUMBNAIL_KINDS.has(claimed.kind) && claimed.sizeBytes <= THUMBNAIL_SOURCE_MAX_BYTES;
    let arrived: ArrivedBytes | null = null;
    if (!finishedBefore) {
      checkReceivedParts(target, received, listed, field);
      // The last bytes are hashed while the file is synced; a thumbnail needs the bytes anyway,
      // so such a (small) file is read back whole.
      [arrived] = await Promise.all([wantsThumbnail ? null : (this.driver.arrivedDigest?.(target, received) ?? null), this.driver.finishUpload(target, received)]);
    }
    let seen;
    try {
      seen = arrived ? { ...arrived, bytes: null } : await inspect(await this.driver.read(target.key), wantsThumbnail, claimed.sizeBytes);
      countArtifactVerification(arrived ? 'as_received' : 'read_back');
    } catch (err) {
      if (!finishedBefore) throw err;
      throw new FreshUploadError(badInput(`${field}parts`, 'The store has no parts of this upload any more; call begin again and send every part'));
    }
    if (seen.size !== claimed.sizeBytes || seen.sha256 !== claimed.sha256) {
      await this.driver.delete([target.key]);
      throw new FreshUploadError(
        badInput(
          `${field}parts`,
          seen.size !== claimed.sizeBytes
            ? `${seen.size} bytes arrived; the upload declared ${claimed.sizeBytes}. Call begin again and send every part`
            : `the bytes that arrived have sha256 ${seen.sha256}; the upload declared ${claimed.sha256}. Call begin again and send every part`,
        ),
      );
    }
    const contentType = sniffContentType(seen.head, TEXT_KINDS.has(claimed.kind));
    const thumbnail = seen.bytes && isImageType(contentType) ? await makeThumbnail(seen.bytes) : null;
    const thumbKey = thumbnail ? thumbnailKey(claimed.sha256) : null;
    if (thumbnail) await this.driver.put(thumbKey!, thumbnail, 'image/webp');
    return { seen, contentType, thumbKey };
  }

  /**
   * What follows from run artifacts being stored, in their transaction, once per run however many
   * were stored: optimizer state older than the newest stored checkpoint goes, the
   * ARTIFACT_KEEP_CHECKPOINTS policy prunes, each stored checkpoint is a run event, and runUpdated
   * subscribers hear of it (a sample's URL).
   */
  private async onStored(tx: Executor, stored: ArtifactRecord[]) {
    const pruned: ArtifactRecord[] = [];
    const runIds = [...new Set(stored.flatMap((a) => (a.runId ? [a.runId] : [])))];
    for (const runId of runIds) {
      const ofRun = stored.filter((a) => a.runId === runId);
      if (ofRun.some((a) => a.kind === 'CHECKPOINT' || a.kind === 'OPTIMIZER_STATE')) pruned.push(...(await store.dropObsoleteOptimizerState(tx, runId)));
      const checkpoints = ofRun.filter((a) => a.kind === 'CHECKPOINT');
      if (checkpoints.length && this.config.artifacts.keepCheckpoints != null) pruned.push(...(await store.pruneCheckpoints(tx, runId, this.config.artifacts.keepCheckpoints)).artifacts);
    }
    // Each stored checkpoint's event and each run's note, in one statement.
    await store.announceStored(tx, runIds, stored.map((a) => a.id));
    return { pruned };
  }

  /**
   * After COMMIT: aborts the unfinished uploads of dropped artifacts and deletes the bytes no
   * artifact references any more. A failure here leaves orphaned objects, never missing ones.
   */
  private async settle(dropped: ArtifactRecord[]) {
    if (dropped.length === 0) return 0;
    try {
      await Promise.all(dropped.filter((a) => a.uploadKey && !a.storedAt).map((a) => this.driver.abortUpload(targetOf(a))));
      const collected = await this.db.transaction((tx) => store.collectBlobs(tx, dropped.map((a) => a.sha256)));
      await this.driver.delete(collected.flatMap((b) => [b.storageKey, ...(b.thumbnailKey ? [b.thumbnailKey] : [])]));
      return collected.reduce((sum, b) => sum + b.sizeBytes, 0);
    } catch (err) {
      this.log.error({ err }, 'could not delete the bytes of dropped artifacts');
      return 0;
    }
  }

  // --- retention -----------------------------------------------------------------------------

  async pruneArtifacts(args: { runId: string; keep: number }): Promise<PruneOutcome> {
    const runId = parseId(args.runId, 'runId');
    if (!Number.isInteger(args.keep) || args.keep < 0) throw badInput('keep', 'must be 0 or more');
    const outcome = await this.db.transaction(async (tx) => {
      const [run] = await findRunsByIds(tx, [runId]);
      if (!run) throw notFound('runId', 'Run', args.runId);
      const { artifacts, checkpointIds } = await store.pruneCheckpoints(tx, runId, args.keep);
      const pruned = [...artifacts, ...(await store.dropObsoleteOptimizerState(tx, runId))];
      if (checkpointIds.length) {
        await appendEvents(tx, [
          {
            runId,
            type: 'ARTIFACTS_PRUNED',
            message: `Dropped the stored bytes of ${checkpointIds.length} checkpoint${checkpointIds.length === 1 ? '' : 's'} (keeping the newest ${args.keep})`,
            data: { steps: artifacts.filter((a) => a.kind === 'CHECKPOINT').map((a) => a.step), keep: args.keep },
          },
        ]);
        await announceRunChanged(tx, run);
      }
      return { pruned, checkpoints: await findCheckpointsByIds(tx, checkpointIds) };
    });
    const freedBytes = await this.settle(outcome.pruned);
    return { runId, pruned: outcome.checkpoints.sort((a, b) => a.step - b.step), freedBytes };
  }

  // --- URLs ----------------------------------------------------------------------------------

  private expiresAt(ttlSeconds: number) {
    const window = Math.floor(Date.now() / 1000 / URL_WINDOW_SECONDS) * URL_WINDOW_SECONDS;
    return window + ttlSeconds;
  }

  /** The embedded driver signs paths of this server; clients get them absolute. */
  private absolute(url: string, origin: string) {
    return url.startsWith('/') ? `${this.config.publicUrl ?? origin}${url}` : url;
  }

  /**
   * A signed GET URL of a stored artifact's bytes (or its thumbnail). Images and text are shown
   * inline, anything else is a download; the type is the one sniffed from the bytes.
   */
  async signedGet(
    artifact: ArtifactRecord,
    blob: store.BlobRecord,
    origin: string,
    options: { thumbnail?: boolean; downloadName?: string } = {},
  ): Promise<string | null> {
    if (!isStored(artifact)) return null;
    const expiresAt = this.expiresAt(this.config.artifacts.urlTtlSeconds);
    if (options.thumbnail) {
      if (!blob.thumbnailKey) return null;
      const name = `${path.parse(safeFileName(artifact.fileName)).name}.webp`;
      return this.absolute(await this.driver.getUrl({ key: blob.thumbnailKey, fileName: name, contentType: 'image/webp', disposition: 'inline', expiresAt }), origin);
    }
    const contentType = blob.contentType;
    const inline = !options.downloadName && (isImageType(contentType) || contentType === TEXT_PLAIN);
    return this.absolute(
      await this.driver.getUrl({
        key: blob.storageKey,
        fileName: options.downloadName ?? safeFileName(artifact.fileName),
        contentType: inline ? contentType : OCTET_STREAM,
        disposition: inline ? 'inline' : 'attachment',
        expiresAt,
      }),
      origin,
    );
  }

  /** Fine with PostgreSQL only when every replica sees the same DATA_DIR. */
  warnAboutReplicas() {
    if (this.driver.kind === 'file' && this.config.databaseUrl) {
      this.log.warn(
        { artifacts: (this.driver as FileDriver).root },
        'ARTIFACT_STORE=file with PostgreSQL: every API replica must share this DATA_DIR (or use ARTIFACT_STORE=s3://BUCKET)',
      );
    }
  }

  close() {
    return this.driver.close();
  }
}

/** Numbers of the parts still to send: those not received, or received with the wrong size. */
function missingPartNumbers(target: UploadTarget, received: { number: number; size: number }[]) {
  const have = new Map(received.map((p) => [p.number, p.size]));
  const missing = [];
  for (let number = 1; number <= partCount(target); number++) {
    if (have.get(number) !== expectedPartSize(target, number)) missing.push(number);
  }
  return missing;
}

const expectedPartSize = (target: UploadTarget, number: number) => Math.max(0, Math.min(target.partSize, target.size - (number - 1) * target.partSize));

function checkReceivedParts(target: UploadTarget, received: { number: number; size: number; etag: string }[], listed: { number: number; etag: string }[], field: string) {
  const count = partCount(target);
  const byNumber = new Map(received.map((p) => [p.number, p]));
  const seen = new Set<number>();
  listed.forEach((part, i) => {
    if (part.number > count) throw badInput(`${field}parts.${i}.number`, `this upload has ${count} part${count === 1 ? '' : 's'}`);
    if (seen.has(part.number)) throw badInput(`${field}parts.${i}.number`, `part ${part.number} is listed twice`);
    seen.add(part.number);
    const got = byNumber.get(part.number);
    if (got && unquote(got.etag) !== unquote(part.etag)) {
      throw badInput(`${field}parts.${i}.etag`, `part ${part.number} was received with another ETag (${got.etag}): it was sent again since; use the ETag of the last PUT`);
    }
  });
  const missing = missingPartNumbers(target, received);
  if (missing.length) {
    const wrong = missing.filter((n) => byNumber.has(n));
    throw badInput(
      `${field}parts`,
      wrong.length
        ? `part ${wrong[0]} has ${byNumber.get(wrong[0]!)!.size} bytes, not ${expectedPartSize(target, wrong[0]!)}: send it again (begin returns it)`
        : `part${missing.length === 1 ? '' : 's'} ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', …' : ''} not received yet (begin again to get their URLs)`,
    );
  }
}

/**
 * Reads an object once: its size, sha256, first bytes (to sniff) and, when asked, all of it (a
 * thumbnail's source). A small file is hashed here; a larger one on the worker thread
 * (off-thread-sha256.ts), so that reading and hashing overlap and the event loop stays free.
 */
async function inspect(stream: AsyncIterable<Buffer>, keepBytes: boolean, declaredSize: number) {
  const offThread = declaredSize >= OFF_THREAD_HASH_BYTES ? new OffThreadSha256() : null;
  const hash = offThread ? null : createHash('sha256');
  let size = 0;
  const head: Buffer[] = [];
  let headBytes = 0;
  let kept: Buffer[] | null = keepBytes ? [] : null;
  try {
    for await (const chunk of stream) {
      if (offThread) await offThread.update(chunk);
      else hash!.update(chunk);
      size += chunk.length;
      if (headBytes < SNIFF_BYTES) {
        head.push(chunk.subarray(0, SNIFF_BYTES - headBytes));
        headBytes += Math.min(chunk.length, SNIFF_BYTES - headBytes);
      }
      if (kept) {
        if (size <= THUMBNAIL_SOURCE_MAX_BYTES) kept.push(chunk);
        else kept = null;
      }
    }
  } catch (err) {
    offThread?.drop();
    throw err;
  }
  const sha256 = offThread ? await offThread.digest() : hash!.digest('hex');
  return { size, sha256, head: Buffer.concat(head), bytes: kept ? Buffer.concat(kept) : null };
}

/** Below this, handing bytes to the worker thread costs more than hashing them here. */
const OFF_THREAD_HASH_BYTES = 8 * 1024 * 1024;

/** A file declared for a stored dataset must be one of its images (same name and sha256), or a caption beside one. */
async function checkDatasetFile(tx: Executor, dataset: DatasetRecord, d: Declaration) {
  const image = await store.findDatasetImageFor(tx, dataset.id, d.fileName, d.kind as 'DATASET_IMAGE' | 'DATASET_CAPTION');
  if (d.kind === 'DATASET_IMAGE') {
    if (!image) throw badInput('input.fileName', `dataset ${dataset.id} has no image named "${d.fileName}"`);
    if (image.sha256 !== d.sha256) throw badInput('input.sha256', `"${d.fileName}" was declared with sha256 ${image.sha256} when the dataset was created`);
    return;
  }
  if (!d.fileName.endsWith('.txt')) throw badInput('input.fileName', 'a caption file is named after its image, with .txt (img01.jpg → img01.txt)');
  if (!image) throw badInput('input.fileName', `dataset ${dataset.id} has no image that "${d.fileName}" could caption`);
}

/**
 * The artifact service is built once from the same bundle the other services are handed (it is
 * itself part of it, as `artifacts`: the object store and its signer live as long as the server).
 */
export async function createArtifactService({ db, config, log }: Pick<ServiceDeps, 'db' | 'config' | 'log'>) {
  if (config.artifacts.store.kind === 's3') {
    // The AWS SDK is loaded only by servers that use it.
    const { S3Driver } = await import('./drivers/s3.js');
    return new ArtifactService(await S3Driver.create(config.artifacts), null, db, config, log);
  }
  const signer = new UrlSigner(await loadSigningKey(db.orm));
  return new ArtifactService(new FileDriver(path.resolve(config.dataDir, EMBEDDED_STORE_DIR), signer), signer, db, config, log);
}
