// `loralab import <folder>…`: each ai-toolkit output folder becomes a run (see docs/cli.md). A
// folder is read and checked whole first (config, files, loss_log.db); only then does the import
// write, under an import lease on its run: the loss (its points read out of loss_log.db as they
// are sent), the checkpoint and sample records, the bytes, and last the outcome. Importing the same job again sends the same things and the server keeps what it has, so
// nothing is added twice; a folder that grew adds what is new.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Api, CliError, EXIT } from './api.js';
import { FolderError, jobFoldersIn, jobKey, jobTimes, readDatasetFolder, readJobFolder, type FolderFile, type JobFolder } from './folder.js';
import { LossLogError, type LoggedLoss } from './loss-log.js';
import { formatBytes, Progress, type Writer } from './progress.js';
import { Batcher, hashFile, readAndHash, UPLOAD_FIELDS, uploadFile, type BeganUpload, type Declaration } from './upload.js';

export interface ImportOptions {
  experiment?: string;
  upload: boolean;
  /** Where the progress lines go (stderr). */
  progress?: Writer;
}

export interface FolderResult {
  folder: string;
  runId: string;
  runName: string;
  created: boolean;
  status: string;
  points: number;
  checkpoints: number;
  samples: number;
  bytesSent: number;
  warnings: string[];
}

/** Points per importLossText call (the server takes 50,000; half keeps a call well under its 4 MB body limit). */
const LOSS_BATCH = 25_000;
/**
 * The first call's points: fewer, so that it is read and sent sooner, and the server, which writes
 * a batch more slowly than the CLI reads one, starts writing while the CLI reads the next.
 */
const FIRST_LOSS_BATCH = 5_000;
/** Loss batches in flight at once: PostgreSQL writes one while the next is parsed and sent. */
const PARALLEL_LOSS = 2;
const FILE_BATCH = 1_000;
/**
 * Files read, hashed, declared, sent and completed at once. Each file's steps wait on the server
 * in turn (its transaction, the PUT, the completion that reads the bytes back), so several files
 * overlap those waits; IN_MEMORY_MAX bounds what each one holds.
 */
const PARALLEL_FILES = 6;
/** Files per beginImportUploads or completeUploads call (the server takes 100). */
const UPLOADS_PER_CALL = 100;
/**
 * Files up to this size (samples, the config, a short log) are hashed and declared together as the
 * upload starts, a hundred a call, not each one when a sending slot reaches it: a slot would
 * otherwise spend a round trip and the server a transaction on each of them. Their bytes are not
 * kept meanwhile (they are read again, from the page cache, when sent), so memory stays bounded
 * however many samples a run has.
 */
const DECLARED_AHEAD_MAX = 1024 * 1024;

interface Hashed extends FolderFile {
  sha256: string;
}

/** sha256 of a file whose size must not have changed since the folder was read. */
async function hashed(f: FolderFile, progress: Progress, keep: boolean): Promise<Hashed & { bytes: Buffer | null }> {
  const { sha256, sizeBytes, bytes } = keep ? await readAndHash(f.path, f.sizeBytes, (n) => progress.addRead(n)) : { ...(await hashFile(f.path, (n) => progress.addRead(n))), bytes: null };
  if (sizeBytes !== f.sizeBytes) throw new FolderError(`${f.path} changed while it was being read`);
  return { ...f, sha256, bytes };
}

/** Runs `work` on every item, at most `limit` at once; the first failure fails the whole (the rest stop taking items). */
async function inParallel<T>(items: T[], limit: number, work: (item: T) => Promise<void>) {
  const queue = [...items];
  let failed = false;
  await Promise.all(
    Array.from({ length: Math.min(limit, queue.length) }, async () => {
      for (let item = queue.shift(); item !== undefined && !failed; item = queue.shift()) {
        await work(item).catch((err) => {
          failed = true;
          throw err;
        });
      }
    }),
  );
}

/** Settles every promise before rethrowing the first failure, so nothing still runs when the import reports it. */
async function allSettled(promises: Promise<unknown>[]) {
  const results = await Promise.allSettled(promises);
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
}

export async function importFolder(api: Api, folder: string, options: ImportOptions, say: (line: string) => void): Promise<FolderResult> {
  const job: JobFolder = await readJobFolder(folder);
  try {
    return await importJob(api, folder, job, options, say);
  } finally {
    job.loss?.points.close();
  }
}

async function importJob(api: Api, folder: string, job: JobFolder, options: ImportOptions, say: (line: string) => void): Promise<FolderResult> {
  const dataset = await readDatasetFolder(job.datasetFolder, job.captionExt);
  const extras = [job.optimizer, job.logFile].filter((f): f is FolderFile => f !== null);
  const ownFiles: FolderFile[] = [...job.checkpoints, ...job.samples, ...extras];
  const datasetFiles: FolderFile[] = [];
  for (const image of dataset?.images ?? []) datasetFiles.push({ path: image, fileName: path.basename(image), sizeBytes: (await stat(image)).size, mtimeMs: 0 });
  // Without upload only the checkpoints' sha256 is sent (their records); with it every file's.
  const toHash = options.upload ? ownFiles : job.checkpoints;
  const ownBytes = toHash.reduce((n, f) => n + f.sizeBytes, 0);
  const hashBytes = ownBytes + datasetFiles.reduce((n, f) => n + f.sizeBytes, 0);
  const progress = new Progress(path.basename(folder), toHash.length + datasetFiles.length, { read: hashBytes, sent: options.upload ? ownBytes : 0 }, options.progress);
  try {
    progress.setPhase('reading');
    // The job's key names its first checkpoint's sha256, and the dataset its images': those are
    // read before the import begins; every other file is read when its turn to be sent comes.
    const firstCheckpoint = job.checkpoints[0];
    const first = firstCheckpoint ? await hashed(firstCheckpoint, progress, options.upload) : null;
    if (first) progress.fileDone();
    const images: Hashed[] = [];
    for (const f of datasetFiles) {
      const { bytes: _, ...h } = await hashed(f, progress, false);
      images.push(h);
      progress.fileDone();
    }

    progress.setPhase(options.upload ? 'sending' : 'recording');
    const experimentName = options.experiment ?? (path.basename(path.dirname(folder)) || 'imported');
    const { beginImport: lease } = await api.call<{ beginImport: { leaseToken: string; created: boolean; warnings: { key: string; message: string }[]; run: { id: string; name: string } } }>(
      `mutation BeginImport($input: BeginImportInput!) { beginImport(input: $input) { leaseToken created warnings { key message } run { id name } } }`,
      {
        input: {
          folder,
          jobKey: jobKey(job, first?.sha256 ?? null),
          trainerConfig: job.configText,
          experimentName,
          datasetImages: dataset ? images.map((i) => ({ fileName: i.fileName, sha256: i.sha256 })) : null,
          datasetHasCaptions: dataset ? dataset.hasCaptions : null,
        },
      },
    );
    const runId = lease.run.id;
    const fence = { runId, leaseToken: lease.leaseToken };

    // From here the loss, the records and the files go at once: each waits on the server for
    // different things (the loss table, a transaction per file, the store's disk).
    let points = 0;
    // Streamed: a batch is read out of loss_log.db while the ones before it are written (the CLI
    // reads on one core while the server writes on the other). The file was checked whole before
    // beginImport, so reading it on can no longer refuse it halfway.
    const sendLoss = async () => {
      if (!job.loss) return;
      const inFlight = new Set<Promise<void>>();
      let failure = null as { err: unknown } | null;
      try {
        for await (const slice of job.loss.points.batches(LOSS_BATCH, FIRST_LOSS_BATCH)) {
          while (inFlight.size >= PARALLEL_LOSS && !failure) await Promise.race(inFlight);
          if (failure) break;
          const sent: Promise<void> = sendLossBatch(api, fence, slice)
            .then((accepted) => {
              points += accepted; // after the wait (not `points += await …`), so concurrent batches all count
            })
            .catch((err) => {
              failure ??= { err };
            })
            .finally(() => inFlight.delete(sent));
          inFlight.add(sent);
          if (failure) break;
        }
      } finally {
        // Nothing still runs when the import reports how it ended.
        await Promise.all(inFlight);
      }
      if (failure) throw failure.err;
    };

    // Every file is read once, when its turn comes (to be sent, or with --no-upload only to be
    // recorded): hashed, its bytes kept when small. The records wait for the checkpoints' sha256.
    const sha = new Map(job.checkpoints.map((c) => [c.path, deferred<string>()]));
    const read = async (f: FolderFile, keep = options.upload) => {
      const file = f.path === first?.path ? first : await hashed(f, progress, keep);
      if (file !== first) progress.fileDone();
      sha.get(f.path)?.resolve(file.sha256);
      return file;
    };
    const readAll = async (files: FolderFile[], work: (f: Hashed & { bytes: Buffer | null }) => Promise<void>) => {
      try {
        await inParallel(files, PARALLEL_FILES, async (f) => work(await read(f)));
      } finally {
        // A read that failed leaves the records nothing to wait for.
        for (const d of sha.values()) d.reject(new Error('not read'));
      }
    };

    let checkpoints = 0;
    let samples = 0;
    const sendRecords = async () => {
      const checkpointInputs = await Promise.all(
        job.checkpoints.map(async (c) => ({ step: c.step, fileName: c.fileName, sizeBytes: c.sizeBytes, sha256: await sha.get(c.path)!.promise, isFinal: c.isFinal, createdAt: new Date(c.mtimeMs).toISOString() })),
      );
      const sampleInputs = job.samples.map((s) => ({ step: s.step, promptIndex: s.promptIndex, fileName: s.fileName, createdAt: new Date(s.at).toISOString() }));
      for (let i = 0; i < Math.max(checkpointInputs.length, sampleInputs.length, 1); i += FILE_BATCH) {
        const { importFiles } = await api.call<{ importFiles: { checkpointsAdded: number; samplesAdded: number } }>(
          `mutation ImportFiles($runId: ID!, $leaseToken: String!, $c: [ImportCheckpointInput!], $s: [ImportSampleInput!]) {
            importFiles(runId: $runId, leaseToken: $leaseToken, checkpoints: $c, samples: $s) { checkpointsAdded samplesAdded } }`,
          { ...fence, c: checkpointInputs.slice(i, i + FILE_BATCH), s: sampleInputs.slice(i, i + FILE_BATCH) },
        );
        checkpoints += importFiles.checkpointsAdded;
        samples += importFiles.samplesAdded;
      }
    };

    let bytesSent = 0;
    const sendFiles = async () => {
      if (!options.upload) return readAll(job.checkpoints, async () => {});
      const newest = job.checkpoints.at(-1);
      const declare = (f: FolderFile): Declaration => {
        const base = { fileName: f.fileName, sizeBytes: f.sizeBytes, sha256: '' };
        const c = job.checkpoints.find((x) => x.path === f.path);
        if (c) return { ...base, kind: 'CHECKPOINT', step: c.step };
        const s = job.samples.find((x) => x.path === f.path);
        if (s) return { ...base, kind: 'SAMPLE', step: s.step, promptIndex: s.promptIndex };
        // optimizer.pt is overwritten at every save: it belongs to the newest one.
        if (f.path === job.optimizer?.path) return { ...base, kind: 'OPTIMIZER_STATE', step: newest?.step ?? null };
        return { ...base, kind: 'TRAINER_LOG' };
      };
      // Declarations and completions go several files a call (each call one transaction on the
      // server): those the workers reach while a call is under way go together in the next one.
      const begins = new Batcher<Declaration, BeganUpload>(
        async (inputs) =>
          (
            await api.call<{ beginImportUploads: BeganUpload[] }>(
              `mutation BeginImportUploads($runId: ID!, $leaseToken: String!, $inputs: [ArtifactUploadInput!]!) { beginImportUploads(runId: $runId, leaseToken: $leaseToken, inputs: $inputs) { ${UPLOAD_FIELDS} } }`,
              { ...fence, inputs },
            )
          ).beginImportUploads,
        UPLOADS_PER_CALL,
      );
      const completions = new Batcher<{ artifactId: string; parts: { number: number; etag: string }[] }, unknown>(
        async (uploads) =>
          (await api.call<{ completeUploads: unknown[] }>(`mutation CompleteUploads($uploads: [CompleteUploadInput!]!) { completeUploads(uploads: $uploads) { id stored } }`, { uploads })).completeUploads,
        UPLOADS_PER_CALL,
      );
      // A sending slot does not wait for its file's completion: completions gather while one call
      // is under way (many files a call) and are waited for at the end.
      const completing: Promise<unknown>[] = [];
      const complete = async (artifactId: string, parts: { number: number; etag: string }[]) => {
        const done = completions.add({ artifactId, parts });
        done.catch(() => {}); // reported at the end, not as an unhandled rejection while the slots still run
        completing.push(done);
      };
      const small = ownFiles.filter((f) => f.sizeBytes <= DECLARED_AHEAD_MAX);
      const ahead = new Map(small.map((f) => [f.path, deferred<{ file: Hashed & { bytes: null }; began: Promise<BeganUpload> }>()]));
      const declareAhead = async () => {
        try {
          const files: (Hashed & { bytes: null })[] = [];
          await inParallel(small, PARALLEL_FILES, async (f) => void files.push({ ...(await read(f, false)), bytes: null }));
          const began = begins.addMany(files.map((f) => ({ ...declare(f), sha256: f.sha256 })));
          // A slot that failed stops taking files: the declarations it never reaches are nobody's to report.
          for (const b of began) b.catch(() => {});
          files.forEach((f, i) => ahead.get(f.path)!.resolve({ file: f, began: began[i]! }));
        } finally {
          for (const d of ahead.values()) d.reject(new Error('not declared'));
        }
      };
      // Small files between the large ones: a sample's round trips overlap a checkpoint's transfer.
      const sendAll = () =>
        inParallel(interleave(ownFiles), PARALLEL_FILES, async (f) => {
          const declared = ahead.get(f.path);
          const { file, began } = declared ? await declared.promise : { file: await read(f), began: null };
          // Not `bytesSent += await …`: that reads bytesSent before the wait, losing the other workers' bytes.
          const sent = await uploadFile(api, file.path, { ...declare(file), sha256: file.sha256 }, (d) => began ?? begins.add(d), (n) => progress.addSent(n), file.bytes, complete);
          bytesSent += sent;
        });
      try {
        // declareAhead first: when it fails, its error is the one reported (not a slot's "not declared").
        await allSettled([declareAhead(), sendAll()]);
      } finally {
        // A read that failed leaves the records nothing to wait for; nothing still runs when the import reports.
        for (const d of sha.values()) d.reject(new Error('not read'));
        await Promise.allSettled(completing);
      }
      await allSettled(completing);
    };

    await allSettled([sendFiles(), sendLoss(), sendRecords()]);

    const finished = await api.call<{ finishImport: { status: string } }>(
      `mutation FinishImport($runId: ID!, $leaseToken: String!, $input: FinishImportInput!) { finishImport(runId: $runId, leaseToken: $leaseToken, input: $input) { status } }`,
      { ...fence, input: { outcome: job.checkpoints.some((c) => c.isFinal) ? 'SUCCEEDED' : 'CANCELLED', ...jobTimes(job) } },
    );
    const warnings = [...job.warnings, ...lease.warnings].map((w) => `${w.key}: ${w.message}`);
    if (!job.loss) warnings.push(`no loss: neither loss_log.db nor a saved console log (log.txt) is in the folder`);
    const result: FolderResult = { folder, runId, runName: lease.run.name, created: lease.created, status: finished.finishImport.status, points, checkpoints, samples, bytesSent, warnings };
    progress.done(`${finished.finishImport.status}, ${lease.created ? 'new run' : 'known run'}`);
    for (const w of warnings) say(`  warning: ${w}`);
    return result;
  } catch (err) {
    progress.done('failed', false);
    throw err;
  }
}

/**
 * One batch of loss points; the points the server accepted. Each column goes as one string of
 * numbers (importLossText), which the server reads in a fraction of the time a list of 25,000
 * numbers takes GraphQL to coerce.
 */
async function sendLossBatch(api: Api, fence: { runId: string; leaseToken: string }, slice: LoggedLoss[]): Promise<number> {
  // String(n) is exact: the shortest decimal that reads back as the same double.
  const columns = {
    steps: slice.map((p) => p.step).join(','),
    losses: slice.map((p) => p.loss).join(','),
    lrs: slice.map((p) => (p.lr === null ? '' : String(p.lr))).join(','),
    recordedAtMs: slice.map((p) => (Number.isFinite(p.at) ? String(p.at) : '')).join(','),
  };
  const { importLossText } = await api.call<{ importLossText: { accepted: number } }>(
    `mutation ImportLoss($runId: ID!, $leaseToken: String!, $points: ImportLossTextInput!) { importLossText(runId: $runId, leaseToken: $leaseToken, points: $points) { accepted } }`,
    { ...fence, points: columns },
  );
  return importLossText.accepted;
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => {}); // rejected only when nobody will wait any more
  return { promise, resolve, reject };
}

/** Largest first, with the smallest slotted in between: workers that start a big file are joined by ones running through small ones. */
function interleave(files: FolderFile[]): FolderFile[] {
  const sorted = [...files].sort((a, b) => b.sizeBytes - a.sizeBytes);
  const out: FolderFile[] = [];
  for (let i = 0, j = sorted.length - 1; i <= j; i++, j--) {
    out.push(sorted[i]!);
    if (i !== j) out.push(sorted[j]!);
  }
  return out;
}

export interface ImportSummary {
  results: FolderResult[];
  failed: { folder: string; error: string }[];
}

/** Imports every job folder the arguments name, one after the other; a folder that fails does not stop the rest. */
export async function importFolders(api: Api, args: string[], options: ImportOptions, say: (line: string) => void): Promise<ImportSummary> {
  const summary: ImportSummary = { results: [], failed: [] };
  for (const arg of args) {
    let folders: string[];
    try {
      folders = await jobFoldersIn(arg);
    } catch (err) {
      if (!(err instanceof FolderError)) throw err;
      summary.failed.push({ folder: path.resolve(arg), error: err.message });
      say(`error: ${err.message}`);
      continue;
    }
    for (const folder of folders) {
      try {
        summary.results.push(await importFolder(api, folder, options, say));
      } catch (err) {
        // The server down or the key refused stops everything; a bad folder stops only itself.
        if (err instanceof CliError && (err.exitCode === EXIT.UNREACHABLE || err.exitCode === EXIT.DENIED)) throw err;
        if (!(err instanceof FolderError || err instanceof LossLogError || err instanceof CliError)) throw err;
        summary.failed.push({ folder, error: err.message });
        // Errors about a file of the folder name the file already.
        say(`error: ${err.message.startsWith(folder) ? '' : `${folder}: `}${err.message}`);
      }
    }
  }
  return summary;
}

export function summaryLines(s: ImportSummary): string[] {
  const sum = (f: (r: FolderResult) => number) => s.results.reduce((n, r) => n + f(r), 0);
  const created = s.results.filter((r) => r.created).length;
  const warnings = sum((r) => r.warnings.length);
  return [
    `${s.results.length} run${s.results.length === 1 ? '' : 's'} imported (${created} new, ${s.results.length - created} already known)` +
      `: ${sum((r) => r.points)} loss points, ${sum((r) => r.checkpoints)} checkpoints, ${sum((r) => r.samples)} samples added, ${formatBytes(sum((r) => r.bytesSent))} uploaded` +
      `; ${warnings} warning${warnings === 1 ? '' : 's'}` +
      (s.failed.length ? `; ${s.failed.length} folder${s.failed.length === 1 ? '' : 's'} failed` : ''),
  ];
}
