// Resuming an attempt from a stored checkpoint, on whichever agent claimed it. ai-toolkit resumes
// on its own from what it finds in its training folder: the newest `<name>*.safetensors` by creation
// time (its step read from the file's training_info metadata) and `optimizer.pt` beside it. So the
// agent makes the folder hold exactly what the server chose: the checkpoint as the only save, the
// optimizer state saved with it, or no optimizer.pt at all for a weights-only resume. Whatever an
// earlier attempt left there goes; those files were the server's to keep (they were uploaded from
// snapshots in the attempt's own folder).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { backoffMs, pause } from './api-client.js';
import { downloadHashed } from './dataset-cache.js';
import { checkpointFileName, checkpointStepFromFileName, OPTIMIZER_FILE } from './files.js';

const TRIES = 4;

export interface ResumeFiles {
  step: number;
  checkpointUrl: string;
  checkpointSha256: string;
  optimizerStateUrl?: string | null;
  optimizerStateSha256?: string | null;
}

export interface PlacedResume {
  /** The checkpoint file as placed: the trainer's newest save, not one this attempt wrote. */
  checkpointFile: string;
  /** `size:mtime` of the placed file, as the output watcher compares files. */
  signature: string;
  withOptimizer: boolean;
  /** Bytes fetched from the store (0 when the folder already held the same checkpoint). */
  downloadedBytes: number;
}

export class ResumeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResumeError';
  }
}

/**
 * Makes `outputDir` (`<training_folder>/<name>`) hold the checkpoint at `resume.step` as its only
 * save and its optimizer state (when there is one) as optimizer.pt. A checkpoint already there with
 * the same bytes (an agent claiming its own run again) is kept rather than fetched again.
 */
export async function placeResumeFiles(outputDir: string, configName: string, resume: ResumeFiles, signal?: AbortSignal): Promise<PlacedResume> {
  await mkdir(outputDir, { recursive: true });
  const target = path.join(outputDir, checkpointFileName(configName, resume.step));
  const keep = (await sha256OfFile(target)) === resume.checkpointSha256;
  for (const file of await readdir(outputDir)) {
    const isSave = checkpointStepFromFileName(configName, file) !== null || file === OPTIMIZER_FILE;
    if (isSave && !(keep && path.join(outputDir, file) === target)) await rm(path.join(outputDir, file), { force: true });
  }
  const downloads: Promise<number>[] = [];
  if (!keep) downloads.push(fetchVerified(resume.checkpointUrl, resume.checkpointSha256, target, signal));
  const withOptimizer = Boolean(resume.optimizerStateUrl && resume.optimizerStateSha256);
  if (withOptimizer) downloads.push(fetchVerified(resume.optimizerStateUrl!, resume.optimizerStateSha256!, path.join(outputDir, OPTIMIZER_FILE), signal));
  const downloadedBytes = (await Promise.all(downloads)).reduce((a, b) => a + b, 0);
  const st = await stat(target);
  return { checkpointFile: target, signature: `${st.size}:${st.mtimeMs}`, withOptimizer, downloadedBytes };
}

/** GETs `url` into `file` (through a temporary name), checked against `sha256`; tried a few times. */
async function fetchVerified(url: string, sha256: string, file: string, signal?: AbortSignal): Promise<number> {
  let lastError: Error | null = null;
  for (let attempt = 0; attempt < TRIES; attempt++) {
    if (signal?.aborted) throw signal.reason;
    const partial = `${file}.part`;
    try {
      const got = await downloadHashed(url, partial, signal);
      if (got.sha256 !== sha256) throw new ResumeError(`${path.basename(file)}: the bytes received have sha256 ${got.sha256}, not the stored ${sha256}`);
      await rename(partial, file);
      return got.size;
    } catch (err) {
      await rm(partial, { force: true });
      if (signal?.aborted) throw signal.reason;
      lastError = err as Error;
      const status = (err as { status?: number }).status;
      if (err instanceof ResumeError || (status !== undefined && status < 500)) break;
      await pause(backoffMs(attempt, 250, 5000), signal);
    }
  }
  throw new ResumeError(`could not fetch ${path.basename(file)} to resume from: ${lastError?.message ?? 'unknown error'}`);
}

async function sha256OfFile(file: string): Promise<string | null> {
  try {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
    return hash.digest('hex');
  } catch {
    return null;
  }
}

/**
 * No checkpoint to resume from: the attempt starts from scratch, as the server recorded it, so no
 * save an earlier attempt left in the folder may be picked up by the trainer.
 */
export async function clearSaves(outputDir: string, configName: string): Promise<number> {
  let removed = 0;
  for (const file of await readdir(outputDir).catch(() => [] as string[])) {
    if (checkpointStepFromFileName(configName, file) === null && file !== OPTIMIZER_FILE) continue;
    await rm(path.join(outputDir, file), { force: true });
    removed++;
  }
  return removed;
}
