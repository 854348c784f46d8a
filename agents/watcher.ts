// Finds the files the trainer writes into `<training_folder>/<name>/`: checkpoints and samples.
// fs.watch reports changes as they happen; a poll every second covers file systems where it does not
// work (network mounts, containers without inotify room) and folders that appear later.
//
// A checkpoint is complete once the trainer says so ("Saved checkpoint to …", see checkpointSaved)
// or once its size and mtime have not changed for `stableMs`; only then is it hashed (sha256,
// streamed) and reported. Samples are moved into samples/ whole by the trainer, so they are reported
// when they appear.
import { createHash } from 'node:crypto';
import { createReadStream, watch, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { checkpointStepFromFileName, parseSampleFileName, SAMPLES_DIR } from './files.js';

export interface CheckpointFile {
  fileName: string;
  path: string;
  /** The step in the file name, or 'final' for `<name>.safetensors`. */
  step: number | 'final';
  /** Null when the file was gone before it could be read (pruned right away). */
  sizeBytes: number | null;
  sha256: string | null;
}

export interface SampleFile {
  fileName: string;
  path: string;
  step: number;
  promptIndex: number;
}

export interface WatcherOptions {
  outputDir: string;
  configName: string;
  onCheckpoint: (file: CheckpointFile) => void;
  onSample: (file: SampleFile) => void;
  log?: (line: string) => void;
  pollMs?: number;
  stableMs?: number;
  /** Files already there that are not the trainer's (file name → size:mtime): not reported unless they change. */
  known?: Map<string, string>;
}

interface Seen {
  signature: string;
  since: number;
}

export class OutputWatcher {
  private readonly pollMs: number;
  private readonly stableMs: number;
  private readonly samplesDir: string;
  /** Checkpoint file name → the size:mtime it was reported with. */
  private readonly reported = new Map<string, string>();
  private readonly candidates = new Map<string, Seen>();
  private readonly hashing = new Map<string, Promise<void>>();
  /** Every hash still running, chained ones included: finish() waits for all of them. */
  private readonly work = new Set<Promise<void>>();
  private readonly samples = new Set<string>();
  private readonly watchers = new Map<string, FSWatcher>();
  private pollTimer: NodeJS.Timeout | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private scanning: Promise<void> | null = null;
  private rescan = false;
  private stopped = false;

  constructor(private readonly o: WatcherOptions) {
    this.pollMs = o.pollMs ?? 1000;
    this.stableMs = o.stableMs ?? 2000;
    this.samplesDir = path.join(o.outputDir, SAMPLES_DIR);
    for (const [fileName, signature] of o.known ?? []) this.reported.set(fileName, signature);
  }

  start(): void {
    this.attachWatchers();
    this.pollTimer = setInterval(() => {
      this.attachWatchers();
      void this.scan(false);
    }, this.pollMs);
    void this.scan(false);
  }

  /** The trainer printed "Saved checkpoint to <path>": the file is complete now. */
  checkpointSaved(filePath: string): void {
    const fileName = path.basename(filePath);
    const step = checkpointStepFromFileName(this.o.configName, fileName);
    if (step === null) return;
    void this.hashAndReport(fileName, path.join(this.o.outputDir, fileName), step, true);
  }

  /**
   * The trainer has exited: stop watching, take every file as complete, and resolve once all of
   * them have been reported.
   */
  async finish(): Promise<void> {
    this.stopWatching();
    await this.scanning;
    await this.scan(true);
    while (this.work.size > 0) await Promise.all([...this.work]);
  }

  stop(): void {
    this.stopped = true;
    this.stopWatching();
  }

  private stopWatching(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.debounce) clearTimeout(this.debounce);
    this.pollTimer = null;
    this.debounce = null;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private attachWatchers(): void {
    for (const dir of [this.o.outputDir, this.samplesDir]) {
      if (this.watchers.has(dir) || this.stopped) continue;
      try {
        const w = watch(dir, { persistent: false }, () => this.soon());
        // The folder was removed, or inotify gave up: polling carries on, and re-attaches later.
        w.on('error', () => {
          w.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, w);
      } catch {
        // Not there yet (the trainer creates it), or watching is not possible here: polling covers it.
      }
    }
  }

  private soon(): void {
    if (this.debounce || this.stopped) return;
    this.debounce = setTimeout(() => {
      this.debounce = null;
      void this.scan(false);
    }, 50);
  }

  private scan(final: boolean): Promise<void> {
    if (this.scanning) {
      this.rescan = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      do {
        this.rescan = false;
        try {
          await this.scanOnce(final);
        } catch (err) {
          this.o.log?.(`watching ${this.o.outputDir} failed: ${(err as Error).message}`);
        }
      } while (this.rescan && !this.stopped);
    })().finally(() => {
      this.scanning = null;
    });
    return this.scanning;
  }

  private async scanOnce(final: boolean): Promise<void> {
    const now = Date.now();
    for (const fileName of await listDir(this.o.outputDir)) {
      const step = checkpointStepFromFileName(this.o.configName, fileName);
      if (step === null || this.hashing.has(fileName)) continue;
      const full = path.join(this.o.outputDir, fileName);
      const st = await stat(full).catch(() => null);
      if (!st?.isFile()) continue;
      const signature = `${st.size}:${st.mtimeMs}`;
      if (this.reported.get(fileName) === signature) continue;
      const seen = this.candidates.get(fileName);
      if (final || (seen && seen.signature === signature && now - seen.since >= this.stableMs)) {
        this.candidates.delete(fileName);
        void this.hashAndReport(fileName, full, step, false);
      } else if (!seen || seen.signature !== signature) {
        this.candidates.set(fileName, { signature, since: now });
      }
    }
    for (const fileName of await listDir(this.samplesDir)) {
      if (this.samples.has(fileName)) continue;
      const parsed = parseSampleFileName(fileName);
      if (parsed === null) continue;
      this.samples.add(fileName);
      this.o.onSample({ fileName, path: path.join(this.samplesDir, fileName), step: parsed.step, promptIndex: parsed.promptIndex });
    }
  }

  private hashAndReport(fileName: string, full: string, step: number | 'final', announced: boolean): Promise<void> {
    const running = this.hashing.get(fileName);
    if (running) {
      // The trainer's own word comes while a poll is hashing it: hash again afterwards, in case the
      // poll caught the file before its last write.
      if (!announced) return running;
      return this.track(running.then(() => this.hashAndReport(fileName, full, step, true)));
    }
    const job = (async () => {
      try {
        const before = await stat(full);
        const signature = `${before.size}:${before.mtimeMs}`;
        if (this.reported.get(fileName) === signature) return;
        const sha256 = await sha256File(full);
        const after = await stat(full);
        if (`${after.size}:${after.mtimeMs}` !== signature) {
          // Still being written: the next poll looks again.
          this.candidates.delete(fileName);
          return;
        }
        this.reported.set(fileName, signature);
        this.o.onCheckpoint({ fileName, path: full, step, sizeBytes: before.size, sha256 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.o.log?.(`could not read checkpoint ${full}: ${(err as Error).message}`);
        }
        // Pruned before it could be read. The trainer said it saved it, so it is still worth listing.
        if (announced && !this.reported.has(fileName)) {
          this.reported.set(fileName, 'gone');
          this.o.onCheckpoint({ fileName, path: full, step, sizeBytes: null, sha256: null });
        }
      }
    })().finally(() => {
      this.hashing.delete(fileName);
    });
    this.hashing.set(fileName, job);
    return this.track(job);
  }

  private track(job: Promise<void>): Promise<void> {
    this.work.add(job);
    job.then(
      () => this.work.delete(job),
      () => this.work.delete(job),
    );
    return job;
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/** sha256 of a file, streamed (checkpoints of large ranks are hundreds of MB). */
export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const stream = createReadStream(file, { highWaterMark: 1 << 20 });
    stream.on('data', (chunk) => hash.update(chunk));
    stream.on('error', reject);
    stream.on('end', () => resolve(hash.digest('hex')));
  });
}
