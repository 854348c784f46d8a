// One attempt of one run: stage the dataset, write the config, spawn the trainer, parse what it
// prints, report loss / checkpoints / samples / progress, and complete the run with its outcome.
//
// Folders, under <work>/runs/<run id>/:
//   dataset/        the staged images and captions (shared by the run's attempts: ai-toolkit keeps
//                   its latent cache there)
//   output/         ai-toolkit's training_folder (shared too), set up before each attempt as the
//                   server says it starts: from the stored checkpoint it chose, or from scratch
//   attempt-<n>/    config.yaml, spool.jsonl, trainer.log, trainer.pid of that attempt
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as fsConstants, createWriteStream, existsSync, linkSync, mkdirSync, copyFileSync } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  withRetry,
  type ApiClient,
  type ApiError,
  type Assignment,
  type ProgressInput,
  type RunErrorInput,
  type RunOutcome,
} from './api-client.js';
import type { AgentConfig } from './config.js';
import { checkpointStepFromFileName, CONFIG_FILE } from './files.js';
import type { Gpu, GpuMonitor } from './gpu.js';
import { formatDuration, type AgentLog } from './log.js';
import { TrainerOutputParser, type TrainerEvent } from './parse.js';
import { Heartbeater, Reporter } from './reporter.js';
import { Spool, SpoolError, SPOOL_FILE } from './spool.js';
import { stageDataset, StagingError, type CaptionMode } from './stage.js';
import { prepareTrainerConfig, TrainerConfigError, writeTrainerConfig, type PreparedTrainerConfig } from './trainer-config.js';
import { CacheError, type DatasetCache } from './dataset-cache.js';
import { formatBytes, UPLOAD_JOURNAL, UploadQueue, type Transfers } from './uploads.js';
import { OutputWatcher } from './watcher.js';
import { clearSaves, placeResumeFiles, ResumeError, type PlacedResume } from './resume.js';

export const PID_FILE = 'trainer.pid';
export const TRAINER_LOG = 'trainer.log';
/** Snapshots of checkpoints and optimizer state waiting to be uploaded, in the attempt's folder. */
export const SNAPSHOT_DIR = 'files';

const FAKE_TRAINER = fileURLToPath(new URL('./fake-trainer.ts', import.meta.url));
// Compiles the fake on its first use and runs it in one process, so signals reach it directly.
const RUN_COMPILED = fileURLToPath(new URL('../scripts/run.js', import.meta.url));

/** How the bundled fake trainer is started: the same node, compiled (scripts/run.js), as one process. */
export function fakeTrainerCommand(): string[] {
  return [process.execPath, RUN_COMPILED, FAKE_TRAINER];
}

export type RunnerConfig = Pick<AgentConfig, 'workDir' | 'aiToolkit' | 'trainerCommand' | 'fakeTrainer' | 'cancelGraceSeconds' | 'heartbeatSeconds' | 'hfToken'>;

export interface RunnerOptions {
  api: ApiClient;
  config: RunnerConfig;
  log: AgentLog;
  gpuMonitor: GpuMonitor;
  assignment: Assignment;
  gpus: Gpu[];
  /** The trainer's environment before the agent adds its own variables (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Longest pause between tries while the server is away. */
  maxRetryDelayMs?: number;
  watcherPollMs?: number;
  /** The agent's upload slots (at most two files move at once, whatever the run). */
  transfers: Transfers;
  /** The agent's cache of stored datasets' files. */
  cache: DatasetCache;
}

export interface RunResult {
  runId: string;
  attempt: number;
  /** LEASE_LOST: another attempt owns the run now, nothing was completed. */
  outcome: RunOutcome | 'LEASE_LOST';
  error: RunErrorInput | null;
  /** Whether the server confirmed the completion (false: it waits in the spool for the next start). */
  delivered: boolean;
}

interface Progress {
  step: number;
  totalSteps: number;
  secondsPerStep: number | null;
  etaSeconds: number | null;
}

interface TrainerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError: Error | null;
  errorMessage: string | null;
  jobStopped: boolean;
  finalCheckpoint: boolean;
  tail: string[];
}

const MAX_MESSAGE = 10_000;

export class RunAttempt {
  readonly runId: string;
  readonly attempt: number;
  private readonly label: string;
  private readonly runDir: string;
  private attemptDir: string;
  private stopKind: 'cancel' | 'lease_lost' | null = null;
  private readonly stopController = new AbortController();
  private child: ChildProcess | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  private progress: Progress | null = null;
  private lastLoss: number | null = null;
  private reporter: Reporter | null = null;
  private uploads: UploadQueue | null = null;
  /** The step of the checkpoint the trainer saved last: the optimizer state saved after it is that step's. */
  private lastSavedStep: number | null = null;
  /** Checkpoint file names already snapshotted for upload. */
  private readonly snapshotted = new Set<string>();
  private readonly startedAt = Date.now();
  /** The checkpoint this attempt resumes from, as placed in the training folder; null: from scratch. */
  private resumed: PlacedResume | null = null;

  constructor(private readonly o: RunnerOptions) {
    const run = o.assignment.run;
    if (!/^[A-Za-z0-9_-]+$/.test(run.id)) throw new Error(`run id ${JSON.stringify(run.id)} is not a plain identifier`);
    this.runId = run.id;
    this.attempt = o.assignment.attempt;
    this.label = `run ${run.id.slice(0, 8)} (${run.name}) attempt ${this.attempt}`;
    this.runDir = path.join(o.config.workDir, 'runs', run.id);
    this.attemptDir = path.join(this.runDir, `attempt-${this.attempt}`);
  }

  get folder(): string {
    return this.attemptDir;
  }

  /** Stops the trainer (SIGINT, then SIGKILL after the grace period) and completes the run as CANCELLED. */
  cancel(reason: string): void {
    if (this.stopKind !== null) return;
    this.stopKind = 'cancel';
    this.stopController.abort();
    this.o.log.info(`${this.label}: ${reason}; stopping the trainer`);
    this.stopTrainer();
  }

  /** Runs the attempt to its end. Once its spool is open it does not throw: every failure becomes the run's outcome. */
  async run(): Promise<RunResult> {
    const { api, assignment, log } = this.o;
    const spool = await this.openSpool();
    const uploads = new UploadQueue({
      api,
      runId: this.runId,
      leaseToken: assignment.leaseToken,
      journal: path.join(this.attemptDir, UPLOAD_JOURNAL),
      transfers: this.o.transfers,
      log: (line) => log.info(line),
      onLeaseLost: (err) => this.leaseLost(err),
      maxDelayMs: this.o.maxRetryDelayMs,
    });
    this.uploads = uploads;
    const reporter = new Reporter({
      api,
      spool,
      log: (line) => log.info(line),
      onLeaseLost: (err) => this.leaseLost(err),
      maxDelayMs: this.o.maxRetryDelayMs,
      // The attempt's files go before its completion (SUCCEEDED needs the final checkpoint stored).
      beforeComplete: () => uploads.idle(),
    });
    this.reporter = reporter;
    const intervalMs = Math.round(this.o.config.heartbeatSeconds !== null ? this.o.config.heartbeatSeconds * 1000 : Math.max(1000, assignment.leaseMs / 3));
    const heartbeater = new Heartbeater({
      api,
      runId: this.runId,
      leaseToken: assignment.leaseToken,
      intervalMs,
      progress: () => this.progressInput(),
      onCancel: () => this.cancel('cancel requested'),
      onLeaseLost: (err) => this.leaseLost(err),
      log: (line) => log.info(line),
    });
    heartbeater.start();
    log.info(`${this.label}: claimed; GPU ${this.o.gpus.map((g) => g.index).join(',')}; folder ${this.attemptDir}`);

    let result: { outcome: RunOutcome; error: RunErrorInput | null };
    try {
      result = await this.execute(reporter);
    } catch (err) {
      result = { outcome: 'FAILED', error: { code: 'AGENT_ERROR', message: `the agent failed: ${(err as Error).message}`.slice(0, MAX_MESSAGE) } };
    } finally {
      log.progress(this.runId, null);
    }

    if (this.stopKind === 'lease_lost') {
      heartbeater.stop();
      reporter.close();
      uploads.close();
      return { runId: this.runId, attempt: this.attempt, outcome: 'LEASE_LOST', error: null, delivered: false };
    }

    // The rendered config and the trainer's log, whatever the outcome.
    for (const [kind, file, fileName] of [
      ['TRAINER_CONFIG', path.join(this.attemptDir, CONFIG_FILE), CONFIG_FILE],
      ['TRAINER_LOG', path.join(this.attemptDir, TRAINER_LOG), TRAINER_LOG],
    ] as const) {
      if (existsSync(file)) uploads.add({ kind, file, fileName, contentType: 'text/plain' });
    }
    reporter.complete(result.outcome, result.error);
    // Heartbeats go on while the files and the last reports are sent, so a backlog does not cost the lease.
    const showing = setInterval(() => this.showProgress(), 1000);
    const drained = await reporter.drain();
    clearInterval(showing);
    log.progress(this.runId, null);
    heartbeater.stop();
    reporter.close();
    uploads.close();
    if (reporter.sender.completedAs) result = { ...result, outcome: reporter.sender.completedAs };
    if (drained === 'lease_lost') {
      return { runId: this.runId, attempt: this.attempt, outcome: 'LEASE_LOST', error: null, delivered: false };
    }
    const took = formatDuration((Date.now() - this.startedAt) / 1000);
    const { points, checkpoints, samples } = reporter.counts;
    const why = result.error ? ` — ${result.error.code}: ${firstLine(result.error.message)}` : '';
    log.info(`${this.label}: ${result.outcome} after ${took} (${count(points, 'loss point')}, ${count(checkpoints, 'checkpoint')}, ${count(samples, 'sample')})${why}`);
    return { runId: this.runId, attempt: this.attempt, outcome: result.outcome, error: result.error, delivered: drained === 'sent' };
  }

  /**
   * The attempt's folder and spool. A claim the server took back (its client had gone) hands out
   * the same attempt number again under a new lease; that one gets a folder of its own.
   */
  private async openSpool(): Promise<Spool> {
    const { assignment } = this.o;
    const header = { runId: this.runId, leaseToken: assignment.leaseToken, attempt: this.attempt, runName: assignment.run.name };
    await mkdir(this.attemptDir, { recursive: true });
    try {
      return Spool.create(path.join(this.attemptDir, SPOOL_FILE), header);
    } catch (err) {
      if (!(err instanceof SpoolError)) throw err;
      this.attemptDir = `${this.attemptDir}-${createHash('sha256').update(assignment.leaseToken).digest('hex').slice(0, 8)}`;
      await mkdir(this.attemptDir, { recursive: true });
      return Spool.create(path.join(this.attemptDir, SPOOL_FILE), header);
    }
  }

  private async execute(reporter: Reporter): Promise<{ outcome: RunOutcome; error: RunErrorInput | null }> {
    const { assignment } = this.o;
    const datasetFolder = path.join(this.runDir, 'dataset');
    let prepared: PreparedTrainerConfig;
    try {
      prepared = prepareTrainerConfig(assignment.trainerConfig, { trainingFolder: path.join(this.runDir, 'output'), datasetFolder });
    } catch (err) {
      if (err instanceof TrainerConfigError) return failed(err.code, err.message);
      throw err;
    }
    // The checkpoint to resume from comes while the dataset is fetched and staged: both are bytes
    // from the store, and its signed URLs are freshest now. Awaited before training; stopped when
    // the attempt ends before that.
    const resumeStop = new AbortController();
    const resuming = this.prepareOutputFolder(prepared, AbortSignal.any([this.stopController.signal, resumeStop.signal])).then(
      (placed) => ({ placed, error: null }),
      (error: unknown) => ({ placed: null, error }),
    );
    const staged = await this.stageAndWriteConfig(prepared, datasetFolder).catch((error: unknown) => ({ thrown: error }));
    if (!('configPath' in staged)) {
      resumeStop.abort();
      await resuming;
      if ('thrown' in staged) throw staged.thrown;
      return staged;
    }
    const configPath = staged.configPath;
    const resume = await resuming;
    if (this.stopKind !== null) return this.stoppedBeforeTraining();
    if (resume.error instanceof ResumeError) return failed('RESUME_FAILED', resume.error.message);
    if (resume.error) throw resume.error;
    this.resumed = resume.placed;

    reporter.start();
    const exit = await this.train(prepared, configPath, reporter);
    if (this.stopKind === 'lease_lost') return { outcome: 'FAILED', error: null }; // not sent
    const finished = exit.code === 0 && exit.finalCheckpoint && exit.errorMessage === null && !exit.jobStopped;
    if (finished) return { outcome: 'SUCCEEDED', error: null };
    if (this.stopKind === 'cancel') return { outcome: 'CANCELLED', error: null };
    return { outcome: 'FAILED', error: describeFailure(exit, { datasetFolder, command: this.commandLine(configPath).join(' ') }) };
  }

  /** The dataset staged for the trainer and its config written: the config's path, or why the attempt ends here. */
  private async stageAndWriteConfig(
    prepared: PreparedTrainerConfig,
    datasetFolder: string,
  ): Promise<{ configPath: string } | { outcome: RunOutcome; error: RunErrorInput | null }> {
    const { api, assignment } = this.o;
    const run = assignment.run;
    const captionMode = captionModeOf(run.captionStrategy.kind);
    let images: string[];
    let imageFiles: Map<string, string> | undefined;
    let captionFiles: Map<string, string> | undefined;
    try {
      if (isStoredDatasetUri(run.dataset.uri)) {
        ({ imageFiles, captionFiles } = await this.fetchStoredDataset(captionMode === 'LINK_FILES'));
        images = [...imageFiles.keys()];
      } else {
        images = await withRetry(() => api.datasetImages(run.dataset.id, this.stopController.signal), {
          signal: this.stopController.signal,
          maxDelayMs: this.o.maxRetryDelayMs,
        });
      }
    } catch (err) {
      if (this.stopKind !== null) return this.stoppedBeforeTraining();
      return failed('DATASET_MISSING', `could not ${isStoredDatasetUri(run.dataset.uri) ? 'fetch' : 'list'} the dataset's images: ${(err as Error).message}`);
    }

    try {
      const staged = await stageDataset({
        sourceDir: datasetPath(run.dataset.uri),
        stagingDir: datasetFolder,
        images: images.map((fileName) => ({ fileName })),
        captions: assignment.captions,
        captionMode,
        captionExt: prepared.captionExt,
        imageFiles,
        captionFiles,
      });
      this.o.log.info(`${this.label}: staged ${staged.images} images and ${staged.captions} captions in ${datasetFolder}`);
    } catch (err) {
      if (err instanceof StagingError) return failed(err.code, err.message);
      throw err;
    }
    const configPath = await writeTrainerConfig(this.attemptDir, prepared.yaml);
    if (this.stopKind !== null) return this.stoppedBeforeTraining();
    return { configPath };
  }

  /**
   * The training folder as the server says this attempt starts: from the stored checkpoint the claim
   * chose (fetched unless the folder already holds its bytes), or from scratch.
   */
  private async prepareOutputFolder(prepared: PreparedTrainerConfig, signal: AbortSignal): Promise<PlacedResume | null> {
    const { assignment, log } = this.o;
    const resume = assignment.resume;
    if (!resume) {
      const removed = await clearSaves(prepared.outputDir, prepared.name);
      if (removed > 0) log.info(`${this.label}: nothing stored to resume from; removed ${removed} earlier save(s) from ${prepared.outputDir} to start from scratch`);
      return null;
    }
    const started = Date.now();
    const placed = await placeResumeFiles(prepared.outputDir, prepared.name, resume, signal);
    log.info(
      `${this.label}: resuming from step ${resume.step} (${placed.withOptimizer ? 'weights and optimizer state' : 'weights only: no optimizer state stored'}), ` +
        `${formatBytes(placed.downloadedBytes)} fetched in ${formatDuration((Date.now() - started) / 1000)}`,
    );
    return placed;
  }

  /**
   * A dataset stored in loralab: its files into the agent's cache (only those not there yet, each
   * checked against its sha256), as file name → cached file. With `withCaptionFiles` (a FILES
   * strategy) the caption files uploaded beside the images come too, by image file name: ai-toolkit
   * reads them from beside the images, as it would in a dataset folder of its own.
   */
  private async fetchStoredDataset(withCaptionFiles: boolean): Promise<{ imageFiles: Map<string, string>; captionFiles: Map<string, string> }> {
    const { api, assignment, log } = this.o;
    const signal = this.stopController.signal;
    const files = await withRetry(() => api.storedDatasetFiles(assignment.run.dataset.id, signal, { captionFiles: withCaptionFiles }), { signal, maxDelayMs: this.o.maxRetryDelayMs });
    const missing = files.filter((f) => !f.url || !f.sha256);
    if (missing.length > 0) throw new CacheError(`${missing.length} image(s) are not stored in loralab yet (${missing.slice(0, 5).map((f) => f.fileName).join(', ')})`);
    // A caption file declared but never completed has no URL: that image trains on the trigger alone, as without one.
    const captions = files.flatMap((f) => (f.captionFile?.url ? [{ image: f.fileName, fileName: f.captionFile.fileName, sha256: f.captionFile.sha256, url: f.captionFile.url }] : []));
    const started = Date.now();
    const got = await this.o.cache.fetch(
      [...files.map((f) => ({ fileName: f.fileName, sha256: f.sha256!, url: f.url! })), ...captions.map((c) => ({ fileName: c.fileName, sha256: c.sha256, url: c.url }))],
      { signal },
    );
    log.info(
      `${this.label}: dataset ${assignment.run.dataset.id}: ${got.hits} file(s) from the cache, ${got.downloaded} downloaded (${formatBytes(got.downloadedBytes)}) in ${formatDuration((Date.now() - started) / 1000)}`,
    );
    return {
      imageFiles: new Map(files.map((f) => [f.fileName, got.paths.get(f.fileName)!])),
      captionFiles: new Map(captions.map((c) => [c.image, got.paths.get(c.fileName)!])),
    };
  }

  private stoppedBeforeTraining() {
    return { outcome: 'CANCELLED' as const, error: null };
  }

  private commandLine(configPath: string): string[] {
    const base = this.o.config.fakeTrainer ? fakeTrainerCommand() : this.o.config.trainerCommand!;
    return [...base, configPath];
  }

  private async train(prepared: PreparedTrainerConfig, configPath: string, reporter: Reporter): Promise<TrainerExit> {
    const { config, log } = this.o;
    const [command, ...args] = this.commandLine(configPath);
    const cwd = config.fakeTrainer ? this.attemptDir : config.aiToolkit!;
    const env: NodeJS.ProcessEnv = {
      ...withoutTerminalSize(this.o.env ?? process.env),
      PYTHONUNBUFFERED: '1',
      // nvidia-smi numbers GPUs by PCI bus; CUDA, by default, fastest first. Make CUDA agree.
      CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
      CUDA_VISIBLE_DEVICES: this.o.gpus.map((g) => g.index).join(','),
    };
    if (config.hfToken) env['HF_TOKEN'] = config.hfToken;

    const parser = new TrainerOutputParser({ trainingBarName: prepared.name, tailLines: 100 });
    const exit: TrainerExit = { code: null, signal: null, spawnError: null, errorMessage: null, jobStopped: false, finalCheckpoint: false, tail: [] };
    const finalStep = this.o.assignment.run.hyperparameters.steps;
    const watcher = new OutputWatcher({
      outputDir: prepared.outputDir,
      configName: prepared.name,
      // The checkpoint put there to resume from is not one this attempt saved.
      known: this.resumed ? new Map([[path.basename(this.resumed.checkpointFile), this.resumed.signature]]) : undefined,
      pollMs: this.o.watcherPollMs,
      log: (line) => log.info(`${this.label}: ${line}`),
      onCheckpoint: (file) => {
        const isFinal = file.step === 'final';
        // The server wants the final checkpoint at the run's total steps, whatever extra changed.
        const step = isFinal ? finalStep : (file.step as number);
        if (isFinal) exit.finalCheckpoint = true;
        reporter.checkpoint({ step, path: file.path, sizeBytes: file.sizeBytes, sha256: file.sha256, isFinal });
        // Found by polling rather than announced: snapshot it now.
        if (file.sizeBytes !== null) this.snapshotCheckpoint(file.path, step);
        log.info(`${this.label}: checkpoint at step ${step}${isFinal ? ' (final)' : ''} ${file.path}${file.sizeBytes !== null ? ` (${file.sizeBytes} bytes)` : ''}`);
      },
      onSample: (file) => {
        reporter.sample({ step: file.step, promptIndex: file.promptIndex, prompt: prepared.samplePrompts[file.promptIndex] ?? null, path: file.path });
        // The trainer renames samples into place whole and never touches them again: sent as they are.
        this.uploads?.add({ kind: 'SAMPLE', file: file.path, fileName: file.fileName, step: file.step, promptIndex: file.promptIndex });
      },
    });

    const logFile = createWriteStream(path.join(this.attemptDir, TRAINER_LOG));
    logFile.on('error', () => {}); // a full disk must not take the agent down; the log is a convenience
    const handle = (events: TrainerEvent[]) => {
      for (const e of events) this.onEvent(e, exit, reporter, watcher, cwd, prepared);
    };

    log.info(`${this.label}: starting ${[command, ...args].join(' ')} in ${cwd}`);
    let child: ChildProcess;
    try {
      // No shell: the command is an argument array. detached puts the trainer in its own process
      // group, so a Ctrl-C meant for the agent does not reach it (the agent decides), and stopping it
      // reaches its worker processes too.
      child = spawn(command!, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (err) {
      logFile.end();
      return { ...exit, spawnError: err as Error };
    }
    this.child = child;
    watcher.start();
    if (child.pid !== undefined) {
      await writeFile(path.join(this.attemptDir, PID_FILE), JSON.stringify({ pid: child.pid, configPath, startedAt: new Date().toISOString() }));
    }
    // A cancel that came while the trainer was being started.
    if (this.stopKind !== null) this.stopTrainer();

    child.stdout!.on('data', (chunk: Buffer) => {
      logFile.write(chunk);
      handle(parser.push(chunk, 'stdout'));
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      logFile.write(chunk);
      handle(parser.push(chunk, 'stderr'));
    });
    const ended = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; spawnError: Error | null }>((resolve) => {
      child.once('error', (err) => {
        if (child.pid === undefined) resolve({ code: null, signal: null, spawnError: err });
      });
      child.once('close', (code, signal) => resolve({ code, signal, spawnError: null }));
    });
    this.child = null;
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = null;
    handle(parser.end());
    await watcher.finish();
    await new Promise<void>((resolve) => logFile.end(resolve));
    await rm(path.join(this.attemptDir, PID_FILE), { force: true });
    exit.code = ended.code;
    exit.signal = ended.signal;
    exit.spawnError = ended.spawnError;
    exit.tail = parser.tail();
    return exit;
  }

  private onEvent(e: TrainerEvent, exit: TrainerExit, reporter: Reporter, watcher: OutputWatcher, cwd: string, prepared: PreparedTrainerConfig): void {
    switch (e.type) {
      case 'progress':
        this.progress = { step: e.step, totalSteps: e.totalSteps, secondsPerStep: e.secondsPerStep, etaSeconds: e.etaSeconds };
        this.showProgress();
        return;
      case 'loss':
        this.lastLoss = e.loss;
        reporter.loss({ step: e.step, loss: e.loss, lr: e.lr });
        return;
      case 'checkpoint_saved': {
        const file = path.resolve(cwd, e.path);
        const step = checkpointStepFromFileName(prepared.name, path.basename(file));
        if (step !== null) this.snapshotCheckpoint(file, step === 'final' ? this.o.assignment.run.hyperparameters.steps : step);
        watcher.checkpointSaved(file);
        return;
      }
      case 'optimizer_saved':
        this.snapshotOptimizer(path.resolve(cwd, e.path));
        return;
      case 'checkpoint_removed': {
        const file = path.resolve(cwd, e.path);
        // The file resumed from may be another run's checkpoint (continueRun): not this run's to mark.
        if (this.resumed && file === this.resumed.checkpointFile) return;
        const step = checkpointStepFromFileName(prepared.name, path.basename(file));
        if (typeof step === 'number') reporter.checkpoint({ step, path: file, pruned: true });
        return;
      }
      case 'error':
        exit.errorMessage ??= e.message;
        return;
      case 'job_stopped':
        exit.jobStopped = true;
        return;
      case 'oom_skip':
        this.o.log.info(`${this.label}: the trainer skipped a batch after running out of memory (${e.batch}/${e.of})`);
        return;
      case 'resuming':
        this.o.log.info(`${this.label}: the trainer resumes from ${e.path}`);
        return;
      case 'resume_step':
      case 'saving':
        return;
    }
  }

  /**
   * A checkpoint the trainer has just saved, hard-linked (else copied) into the attempt's folder at
   * once: ai-toolkit deletes old checkpoints as it goes, and the upload may take a while.
   */
  private snapshotCheckpoint(file: string, step: number): void {
    const fileName = path.basename(file);
    if (this.snapshotted.has(fileName)) return;
    this.lastSavedStep = step;
    const dir = path.join(this.attemptDir, SNAPSHOT_DIR);
    const snapshot = path.join(dir, fileName);
    try {
      mkdirSync(dir, { recursive: true });
      try {
        linkSync(file, snapshot);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          /* an earlier process of this attempt made it */
        } else copyFileSync(file, snapshot, fsConstants.COPYFILE_FICLONE);
      }
    } catch (err) {
      this.o.log.warn(`${this.label}: could not keep checkpoint ${file} for upload: ${(err as Error).message}`);
      return;
    }
    this.snapshotted.add(fileName);
    this.uploads?.add({ kind: 'CHECKPOINT', file: snapshot, fileName, step, snapshot: true });
  }

  /**
   * optimizer.pt, just saved with the checkpoint before it, copied (not linked: the trainer
   * rewrites the same file in place at its next save) into the attempt's folder.
   */
  private snapshotOptimizer(file: string): void {
    const step = this.lastSavedStep;
    if (step === null) return;
    const snapshot = path.join(this.attemptDir, SNAPSHOT_DIR, `optimizer-${step}.pt`);
    const uploads = this.uploads;
    void (async () => {
      try {
        await mkdir(path.dirname(snapshot), { recursive: true });
        await copyFile(file, snapshot, fsConstants.COPYFILE_FICLONE);
        uploads?.add({ kind: 'OPTIMIZER_STATE', file: snapshot, fileName: path.basename(file), step, snapshot: true });
      } catch (err) {
        this.o.log.warn(`${this.label}: could not keep the optimizer state of step ${step} for upload: ${(err as Error).message}`);
      }
    })();
  }

  private showProgress(): void {
    const p = this.progress;
    const parts = [`run ${this.runId.slice(0, 8)}`];
    // The figures first: a narrow terminal cuts the end of the line, the run's name.
    if (p) {
      const pct = p.totalSteps > 0 ? Math.floor((p.step / p.totalSteps) * 100) : 0;
      parts[0] += `  ${p.step}/${p.totalSteps} ${pct}%`;
      if (this.lastLoss !== null) parts.push(`loss ${this.lastLoss.toFixed(4)}`);
      if (p.secondsPerStep !== null) parts.push(`${p.secondsPerStep.toFixed(2)} s/it`);
      if (p.etaSeconds !== null) parts.push(`ETA ${formatDuration(p.etaSeconds)}`);
    }
    const up = this.uploads?.status();
    if (up && up.pending > 0) {
      parts.push(`↑ ${up.pending} file${up.pending === 1 ? '' : 's'} ${formatBytes(up.sentBytes)}/${formatBytes(up.totalBytes)} ${formatBytes(this.o.transfers.rate())}/s`);
    }
    if (!p && !(up && up.pending > 0)) return;
    parts.push(`(${this.o.assignment.run.name}, attempt ${this.attempt})`);
    this.o.log.progress(this.runId, parts.join('  '));
  }

  private async progressInput(): Promise<ProgressInput | null> {
    const p = this.progress;
    if (!p) return null;
    const stats = await this.o.gpuMonitor.query(this.o.gpus.map((g) => g.index));
    return {
      step: p.step,
      totalSteps: p.totalSteps > 0 ? p.totalSteps : null,
      secondsPerStep: p.secondsPerStep !== null && p.secondsPerStep <= 86_400 ? p.secondsPerStep : null,
      vramUsedMb: stats?.vramUsedMb ?? null,
      gpuUtilization: stats?.utilization ?? null,
    };
  }

  /** LEASE_LOST on any call: another attempt owns the run. Kill the trainer; report nothing more. */
  private leaseLost(err: ApiError): void {
    if (this.stopKind === 'lease_lost') return;
    this.stopKind = 'lease_lost';
    this.stopController.abort();
    this.o.log.warn(`${this.label}: lease lost (${err.message}); killing the trainer, reporting nothing more`);
    this.reporter?.abandon(`LEASE_LOST: ${err.message}`);
    this.signalTrainer('SIGKILL');
  }

  private stopTrainer(): void {
    if (!this.child || this.stopKind === null) return;
    if (this.stopKind === 'lease_lost') {
      this.signalTrainer('SIGKILL');
      return;
    }
    const grace = this.o.config.cancelGraceSeconds;
    // ai-toolkit takes SIGINT as KeyboardInterrupt: it prints "Job stopped" and exits 0.
    this.signalTrainer('SIGINT');
    this.killTimer ??= setTimeout(() => {
      if (!this.child) return;
      this.o.log.warn(`${this.label}: the trainer ignored SIGINT for ${grace} s; sending SIGKILL`);
      this.signalTrainer('SIGKILL');
    }, grace * 1000);
  }

  private signalTrainer(signal: NodeJS.Signals): void {
    const child = this.child;
    if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal); // the whole process group
    } catch {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    }
  }
}

/**
 * The environment without what sizes tqdm's bar: with COLUMNS/LINES (older tqdm, even when
 * piped) or TQDM_NCOLS (tqdm ≥ 4.66) it draws at the width of the terminal the agent was started
 * in and cuts every line there, loss included; other TQDM_* variables change what it prints
 * (TQDM_DISABLE hides the bar). Piped and without them, it draws whole lines.
 */
export function withoutTerminalSize(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(env)) {
    if (key === 'COLUMNS' || key === 'LINES' || key.startsWith('TQDM_')) continue;
    out[key] = value;
  }
  return out;
}

function failed(code: string, message: string) {
  return { outcome: 'FAILED' as const, error: { code, message: message.slice(0, MAX_MESSAGE) } };
}

export function captionModeOf(kind: Assignment['run']['captionStrategy']['kind']): CaptionMode {
  if (kind === 'FILES') return 'LINK_FILES';
  if (kind === 'NONE') return 'NONE';
  return 'WRITE';
}

/** A dataset kept in loralab's store (created without a uri): the agent fetches its files. */
export const isStoredDatasetUri = (uri: string) => uri.startsWith('loralab://');

/** A dataset's uri as a folder on this machine: a path, or a file:// URL. */
export function datasetPath(uri: string): string {
  return uri.startsWith('file://') ? fileURLToPath(uri) : path.resolve(uri);
}

// ai-toolkit catches an out-of-memory error inside a training step, skips the batch ("# OOM during
// training step, skipping batch k/3 #") and on the fourth in a row raises its own RuntimeError,
// whose words are not CUDA's.
const OOM = /CUDA out of memory|CUDA error: out of memory|OutOfMemoryError|OOM during training step \d+ times in a row/;
const MODEL_ACCESS = /gated repo|GatedRepoError|\b401 Client Error\b|\b403 Client Error\b|\b40[13]\b[^\n]*(?:Unauthorized|Forbidden)|does not appear to have a file named|RepositoryNotFoundError/i;

/** The error of a trainer that did not finish: the code (what kind of failure), its own message, and its last lines. */
export function describeFailure(
  exit: Pick<TrainerExit, 'code' | 'signal' | 'spawnError' | 'errorMessage' | 'jobStopped' | 'finalCheckpoint' | 'tail'>,
  context: { datasetFolder?: string; command?: string } = {},
): RunErrorInput {
  const logTail = exit.tail.join('\n');
  if (exit.spawnError) {
    return { code: 'TRAINER_ERROR', message: `could not start the trainer${context.command ? ` (${context.command})` : ''}: ${exit.spawnError.message}`, logTail };
  }
  const lastLine = [...exit.tail].reverse().find((l) => !l.includes('%|'));
  let message: string;
  if (exit.errorMessage !== null) message = exit.errorMessage;
  else if (exit.signal !== null) message = `the trainer was killed by ${exit.signal}`;
  else if (exit.code === 0) {
    message = exit.jobStopped
      ? 'the trainer was stopped ("Job stopped") before it finished'
      : 'the trainer exited without saving the final checkpoint';
  } else message = `the trainer exited with code ${exit.code}${lastLine ? `: ${lastLine}` : ''}`;

  const text = `${message}\n${logTail}`;
  let code: string;
  if (OOM.test(text)) code = 'OUT_OF_MEMORY';
  else if (MODEL_ACCESS.test(text)) code = 'MODEL_ACCESS';
  else if (isDatasetMissing(text, context.datasetFolder)) code = 'DATASET_MISSING';
  else if (exit.signal !== null || (exit.code !== null && exit.code > 128 && exit.code < 160)) code = 'TRAINER_CRASHED';
  else code = 'TRAINER_ERROR';
  return { code, message: message.slice(0, MAX_MESSAGE), logTail };
}

function isDatasetMissing(text: string, datasetFolder: string | undefined): boolean {
  if (/num_samples should be a positive integer value, but got num_samples=0/.test(text)) return true;
  if (datasetFolder === undefined) return false;
  const m = /No such file or directory: '([^']+)'/.exec(text);
  return m !== null && path.resolve(m[1]!).startsWith(datasetFolder);
}

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

function firstLine(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}
