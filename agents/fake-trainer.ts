// A stand-in for ai-toolkit's `python run.py /abs/config.yaml`, for tests and demos without a GPU.
// It prints what ai-toolkit prints (test/agents/fixtures/ai-toolkit/stdout-sample.txt: the same lines, tqdm framing on stderr,
// `\r` refreshes, nested sampling bars with ESC[A) and writes the files it writes (checkpoints,
// optimizer.pt, samples, config.yaml), generalised to the config's steps, save/sample cadence,
// checkpoints to keep and prompts.
//
//   npx tsx agents/fake-trainer.ts /abs/config.yaml
//   node --import tsx agents/fake-trainer.ts /abs/config.yaml   (one process: signals reach it directly)
//
// Speed: FAKE_STEP_MS (default 20) per training step and per sample image. The bars are real tqdm
// (fake-trainer/tqdm.ts) on the real clock, so fast steps get tqdm's throttled redraws as they
// would with ai-toolkit. Width: TQDM_NCOLS, or COLUMNS − 1 (what older tqdm read when piped),
// makes the bars that wide and cuts longer lines. The training seed is the process's training_seed
// (else the SEED variable, as run.py reads it; else 42) and decides the losses printed.
// Failure injection, from the process config (the server merges hyperparameters.extra there):
//   loralab_fake_trainer:
//     fail: oom | signal | gated | error | hang   # what goes wrong
//     atStep: 5            # 0-based step at which it happens (default 0; gated fails at model load);
//                          # oom: that step and the next two are skipped, the one after aborts
//     signal: SIGKILL      # for fail: signal (default SIGKILL; SIGSEGV also plausible)
//     message: "…"         # for fail: error
//     once: true           # fail only the first time in this output folder (a retry then succeeds)
//     fromScratchOnly: true  # fail only in an attempt that started from step 0: one resumed from a
//                          # checkpoint (on any machine) runs clean
//     stepMs: 0            # overrides FAKE_STEP_MS
//     secondsPerStep: 2    # the bars' clock moves this much per step (5× per sample image) instead
//                          # of following the real clock: no throttled redraws, GPU-like rates;
//                          # FAKE_SECONDS_PER_STEP in the environment does the same
//     ncols: 79            # the bars' width, as TQDM_NCOLS
//     oomSkipSteps: [3]    # those steps run out of memory: skipped, no loss, and training goes on
//     checkpointMiB: 256   # each checkpoint carries a tensor this large (default: a few bytes), for
//                          # uploads worth interrupting; FAKE_CHECKPOINT_MIB does the same
//     surface: true        # the loss responds to rank, learning rate, steps and captions
//                          # (fake-trainer/surface.ts), so a sweep has a winner
// Samples are real images (sharp): 256×256 JPEG (or PNG with sample.ext: png), one per sample item
// (sample.samples with network_multiplier, or sample.prompts), different per prompt, step and strength. Checkpoints are real safetensors with ai-toolkit's metadata (training_info with the step).
import { UiLogger } from './fake-trainer/ui-logger.js';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { lossOffset } from './fake-trainer/surface.js';
import { latestSave, optimizerStateIn } from './fake-trainer/resume.js';
import {
  CONFIG_FILE,
  OPTIMIZER_FILE,
  SAMPLES_DIR,
  SAMPLES_TMP_DIR,
  checkpointFileName,
  checkpointStepFromFileName,
  sampleFileName,
  type SampleExt,
} from './files.js';
import { pyExp, pyJsonDumps, pyStr } from './fake-trainer/python.js';
import { ToolkitBar, TqdmBar } from './fake-trainer/tqdm.js';
import { encodeSafetensors, readSafetensorsMetadata, stepFromMetadata } from './safetensors.js';

export interface FakeTrainerIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Subscribes to SIGINT; returns the unsubscribe. */
  onSigint: (handler: () => void) => () => void;
  /** Ends this process with a signal (fail: signal). */
  kill: (signal: NodeJS.Signals) => void;
}

type FailMode = 'oom' | 'signal' | 'gated' | 'error' | 'hang';

interface Injection {
  fail: FailMode | null;
  atStep: number;
  signal: NodeJS.Signals;
  message: string;
  once: boolean;
  fromScratchOnly: boolean;
  stepMs: number | null;
  secondsPerStep: number | null;
  ncols: number | null;
  oomSkipSteps: Set<number>;
  checkpointMiB: number | null;
  surface: boolean;
}

/** ai-toolkit gives up on the fourth batch in a row that runs out of memory (BaseSDTrainProcess.run). */
const OOM_ABORT = 'OOM during training step 3 times in a row, aborting training';

const FAILED_ONCE_MARKER = '.loralab_fake_trainer_failed';
const TOOLKIT = '/workspace/ai-toolkit';
const SITE = '/usr/local/lib/python3.11/site-packages';

/** An exception that ai-toolkit's run.py would print as "Error running job: <message>" before re-raising. */
class JobFailure extends Error {
  constructor(
    message: string,
    readonly exceptionType: string,
    readonly frames: string[],
  ) {
    super(message);
  }
}

/** SIGINT arrived: Python's KeyboardInterrupt. */
class Stopped extends Error {}

/**
 * Keeps stdout and stderr in the order they were written. Node writes to pipes asynchronously, so
 * without waiting for each chunk to reach the OS, a print() could overtake the bar refresh before
 * it when both streams end in one pipe (2>&1), which the real trainer never does.
 */
class Output {
  private chunks: { stream: NodeJS.WritableStream; text: string }[] = [];
  private lastChar = '\n';

  constructor(
    private readonly stdout: NodeJS.WritableStream,
    private readonly stderr: NodeJS.WritableStream,
  ) {}

  /** Python's print(). */
  print(line = ''): void {
    this.write(this.stdout, `${line}\n`);
  }

  /** tqdm's writes. */
  bar = (text: string): void => {
    this.write(this.stderr, text);
  };

  stdoutRaw(text: string): void {
    this.write(this.stdout, text);
  }

  stderrRaw(text: string): void {
    this.write(this.stderr, text);
  }

  /** Whether the last thing written left a line open (a bar refresh has no '\n'). */
  get lineOpen(): boolean {
    return this.lastChar !== '\n';
  }

  async flush(): Promise<void> {
    const chunks = this.chunks;
    this.chunks = [];
    for (const c of chunks) {
      await new Promise<void>((resolve) => {
        c.stream.write(c.text, () => resolve());
      });
    }
  }

  private write(stream: NodeJS.WritableStream, text: string): void {
    if (text.length === 0) return;
    const last = this.chunks[this.chunks.length - 1];
    if (last !== undefined && last.stream === stream) last.text += text;
    else this.chunks.push({ stream, text });
    this.lastChar = text[text.length - 1]!;
  }
}

export async function main(argv: string[], io: FakeTrainerIo = processIo()): Promise<number> {
  const out = new Output(io.stdout, io.stderr);
  const configFiles = configFileArguments(argv);
  if (configFiles.length === 0) {
    out.stderrRaw(
      'usage: run.py [-h] [-r] [-n NAME] [-l LOG] config_file_list [config_file_list ...]\n' +
        'run.py: error: the following arguments are required: config_file_list\n',
    );
    await out.flush();
    return 2;
  }

  const control = new StopControl();
  const unsubscribe = io.onSigint(() => control.interrupt());
  try {
    out.print(`Running ${configFiles.length} job${configFiles.length === 1 ? '' : 's'}`);
    for (const file of configFiles) await runJob(file, out, io, control);
    return 0;
  } catch (err) {
    if (err instanceof Stopped) {
      if (out.lineOpen) out.stdoutRaw('\n');
      out.print('Job stopped');
      return 0;
    }
    if (err instanceof JobFailure) {
      // run.py: print_acc(f"Error running job: {e}"), print_end_message(), raise e.
      out.print(`Error running job: ${err.message}`);
      out.print('');
      out.print('========================================');
      out.print('Result:');
      out.print(' - 0 completed jobs');
      out.print(' - 1 failure');
      out.print('========================================');
      out.stderrRaw(traceback(err));
      return 1;
    }
    throw err;
  } finally {
    unsubscribe();
    control.dispose();
    await out.flush();
  }
}

/** run.py's positional arguments; -n/--name and -l/--log take a value, -r/--recover none. */
function configFileArguments(argv: string[]): string[] {
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-n' || arg === '--name' || arg === '-l' || arg === '--log') i++;
    else if (!arg.startsWith('-')) files.push(arg);
  }
  return files;
}

/** SIGINT handling: interrupts the current wait, unless a hang was injected (then only SIGKILL ends it). */
class StopControl {
  stopRequested = false;
  ignoreSigint = false;
  private wake: (() => void) | null = null;
  private keepAlive: NodeJS.Timeout | null = null;

  interrupt(): void {
    if (this.ignoreSigint) return;
    this.stopRequested = true;
    this.wake?.();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopRequested) return resolve();
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Never returns; keeps the process alive until it is killed. */
  hang(): Promise<never> {
    this.ignoreSigint = true;
    this.keepAlive = setInterval(() => {}, 1 << 30);
    return new Promise<never>(() => {});
  }

  dispose(): void {
    if (this.keepAlive !== null) clearInterval(this.keepAlive);
  }
}

async function runJob(configFile: string, out: Output, io: FakeTrainerIo, control: StopControl): Promise<void> {
  let text: string;
  try {
    text = await readFile(configFile, 'utf8');
  } catch {
    throw new JobFailure(`Config file ${configFile} not found`, 'ValueError', [
      frame('run.py', 94, 'main', 'job = get_job(config_file, args.name)'),
      frame('toolkit/job.py', 28, 'get_job', 'config = get_config(config_path, name)'),
    ]);
  }
  const loadFrames = [
    frame('run.py', 94, 'main', 'job = get_job(config_file, args.name)'),
    frame('toolkit/job.py', 10, 'get_job', 'config = get_config(config_path, name)'),
  ];
  // ai-toolkit's toolkit/config.py: `${VAR}` from the environment in the file's text (an unset one
  // is an error), then PyYAML (YAML 1.1), then `[name]` → the job name in every string.
  const withEnvironment = text.replace(/\$\{([^}]+)\}/g, (_, variable: string) => {
    const value = io.env[variable];
    if (value === undefined) {
      throw new JobFailure(`Environment variable ${variable} not set. Please ensure it's defined before proceeding.`, 'ValueError', [
        ...loadFrames,
        frame('toolkit/config.py', 30, 'replacer', 'raise ValueError(f"Environment variable {var_name} not set. Please ensure it\'s defined before proceeding.")'),
      ]);
    }
    return value;
  });
  // Integers stay bigint so the JSON dump prints 16 and 1.0 the way Python would.
  const doc = parseDocument(withEnvironment, { intAsBigInt: true, version: '1.1' });
  if (doc.errors.length > 0) {
    throw new JobFailure(doc.errors[0]!.message, 'yaml.scanner.ScannerError', [
      ...loadFrames,
      frame('toolkit/config.py', 112, 'get_config', 'config = yaml.load(content_with_env_replaced, Loader=fixed_loader)'),
    ]);
  }
  const loaded = asRecord(doc.toJS());
  const config = asRecord(loaded['config']);
  const name = config['name'];
  const processes = config['process'];
  if (typeof name !== 'string' || !Array.isArray(processes) || processes.length === 0) {
    throw new JobFailure('config file must have a config.name and a config.process list', 'ValueError', [
      ...loadFrames,
      frame('toolkit/job.py', 31, 'get_job', "raise ValueError('config file is invalid. Missing \"config\" key')"),
    ]);
  }
  const root = asRecord(replaceNameTag(loaded, name));
  const proc = asRecord((asRecord(root['config'])['process'] as unknown[])[0]);
  const job = new FakeJob(name, proc, text, out, io, control);
  await job.run();
}

class FakeJob {
  private readonly train: Record<string, unknown>;
  private readonly save: Record<string, unknown>;
  private readonly sampleConfig: Record<string, unknown>;
  private readonly model: Record<string, unknown>;
  private readonly injection: Injection;
  private readonly stepMs: number;
  private readonly ncols: number | null;
  /** `<training_folder>/<name>` as Python would print it (relative when training_folder is). */
  private readonly saveRootShown: string;
  private readonly saveRoot: string;
  private readonly totalSteps: number;
  private readonly sampleItems: SampleItem[];
  private readonly samplingOn: boolean;
  private readonly sampleExt: SampleExt;
  private readonly seed: number;
  private readonly lr: number;
  /** Added to every loss when the run opts in to the response surface (fake-trainer/surface.ts). */
  private readonly lossOffset: number;
  private ticks = 0;
  /** The bars' clock: the real one, or simulated time when secondsPerStep is injected. */
  private readonly clock: () => number;
  private readonly secondsPerStep: number | null;
  private simulatedSeconds = 0;
  private advanced = 0;

  constructor(
    private readonly name: string,
    private readonly proc: Record<string, unknown>,
    private readonly configText: string,
    private readonly out: Output,
    private readonly io: FakeTrainerIo,
    private readonly control: StopControl,
  ) {
    this.train = asRecord(proc['train']);
    this.save = asRecord(proc['save']);
    this.sampleConfig = asRecord(proc['sample']);
    this.model = asRecord(proc['model']);
    this.injection = readInjection(proc['loralab_fake_trainer']);
    this.stepMs = this.injection.stepMs ?? nonNegative(Number(io.env['FAKE_STEP_MS'] ?? 20), 20);
    this.ncols = this.injection.ncols ?? barWidth(io.env);
    this.saveRootShown = pyJoin(String(proc['training_folder'] ?? 'output'), name);
    this.saveRoot = path.resolve(this.saveRootShown);
    this.totalSteps = int(this.train['steps'], 1000);
    this.sampleItems = sampleItems(this.sampleConfig);
    this.samplingOn = this.sampleItems.length > 0 && !truthy(this.train['disable_sampling']);
    const ext = String(this.sampleConfig['ext'] ?? this.sampleConfig['format'] ?? 'jpg');
    this.sampleExt = ext === 'png' ? 'png' : 'jpg';
    this.seed = int(proc['training_seed'] ?? io.env['SEED'], 42);
    this.lr = num(this.train['lr'], 1e-6);
    this.lossOffset = this.injection.surface ? this.surfaceOffset() : 0;
    this.secondsPerStep = this.injection.secondsPerStep ?? positiveOrNull(Number(io.env['FAKE_SECONDS_PER_STEP']));
    this.clock = this.secondsPerStep === null ? realClock : () => this.simulatedSeconds;
  }

  private surfaceOffset(): number {
    const network = asRecord(this.proc['network']);
    const datasets = Array.isArray(this.proc['datasets']) ? this.proc['datasets'].map(asRecord) : [];
    const folder = String(datasets[0]?.['folder_path'] ?? '');
    let captioned = false;
    try {
      captioned = readdirSync(folder).some((f) => f.endsWith('.txt'));
    } catch {
      // no folder: no captions
    }
    return lossOffset({
      rank: num(network['linear'] ?? network['rank'], 16),
      learningRate: this.lr,
      steps: this.totalSteps,
      captioned,
      captionDropout: num(datasets[0]?.['caption_dropout_rate'], 0.05),
      seed: this.seed,
    });
  }

  /** Moves simulated time on by about `steps` steps' worth, varying as a GPU's steps do (nothing on the real clock). */
  private advance(steps: number): void {
    if (this.secondsPerStep === null) return;
    this.simulatedSeconds += steps * this.secondsPerStep * (0.6 + 0.8 * hash01(0x2545f491, ++this.advanced));
  }

  async run(): Promise<void> {
    const { out } = this;
    out.print(pyJsonDumps(this.proc));
    if (truthy(asRecord(this.train['ema_config'])['use_ema'])) out.print('Using EMA');
    out.print('');
    out.print('#'.repeat(45));
    out.print(`# Running job: ${this.name}`);
    out.print('#'.repeat(45));
    out.print('');
    out.print('');
    out.print('Running  1 process');
    mkdirSync(this.saveRoot, { recursive: true });
    writeFileSync(path.join(this.saveRoot, CONFIG_FILE), this.configText);

    this.loadModel();
    await this.tick(0);
    const startStep = await this.resumeStep();
    this.prepareDatasets();
    await this.tick(0);

    if (this.samplingOn && startStep === 0 && !truthy(this.train['skip_first_sample'])) {
      out.print('Generating baseline samples before training');
      await this.sample(0, 0);
    }
    const logger = await UiLogger.forConfig(this.proc, this.saveRoot);
    try {
      await this.trainLoop(startStep, logger);
    } finally {
      logger?.close();
    }
  }

  private loadModel(): void {
    const { out } = this;
    const quantize = truthy(this.model['quantize']);
    out.print(truthy(this.model['is_flux']) ? 'Loading Flux model' : 'Loading model');
    out.print('Loading transformer');
    if (this.injection.fail === 'gated' && this.shouldFail()) {
      const repo = String(this.model['name_or_path'] ?? 'black-forest-labs/FLUX.1-dev');
      const message =
        '401 Client Error. (Request ID: Root=1-6756a1f2-3c1e5b7d2f4a6e8c0b1d3f5a;9b2e4c6a-1d3f-4a5b-8c7d-0e1f2a3b4c5d)\n\n' +
        `Cannot access gated repo for url https://huggingface.co/${repo}/resolve/main/transformer/config.json.\n` +
        `Access to model ${repo} is restricted. You must have access to it and be authenticated to access it. Please log in.`;
      throw new JobFailure(message, 'huggingface_hub.errors.GatedRepoError', [
        ...inProcess(1502, 'self.sd.load_model()'),
        frame('toolkit/stable_diffusion_model.py', 712, 'load_model', 'self.load_flux_model()'),
        frame('toolkit/stable_diffusion_model.py', 588, 'load_flux_model', 'transformer = FluxTransformer2DModel.from_pretrained('),
        site('huggingface_hub/utils/_http.py', 426, 'hf_raise_for_status', 'raise _format(GatedRepoError, message, response) from e'),
      ]);
    }
    if (quantize) out.print('Quantizing transformer');
    out.print('Loading VAE');
    out.print('Loading T5');
    if (quantize) out.print('Quantizing T5');
    out.print('Loading CLIP');
    out.print('Making pipe');
    out.print('Preparing Model');
    const network = asRecord(this.proc['network']);
    const rank = network['linear'] ?? network['rank'] ?? null;
    const alpha = network['linear_alpha'] ?? network['alpha'] ?? 1;
    out.print(`create LoRA network. base dim (rank): ${pyStr(rank)}, alpha: ${pyStr(alpha)}`);
    out.print('neuron dropout: p=None, rank dropout: p=None, module dropout: p=None');
    out.print('create LoRA for Text Encoder: 0 modules.');
    out.print('create LoRA for U-Net: 494 modules.');
    out.print('enable LoRA for U-Net');
  }

  /**
   * Like ai-toolkit: the newest save in the output folder by creation time is loaded, its step taken
   * from its metadata, then the optimizer state beside it when there is one (fake-trainer/resume.ts).
   */
  private async resumeStep(): Promise<number> {
    const latest = latestSave(this.saveRoot, this.name);
    if (latest === null) return 0;
    this.out.print(`#### IMPORTANT RESUMING FROM ${pyJoin(this.saveRootShown, latest)} ####`);
    const meta = await readSafetensorsMetadata(path.join(this.saveRoot, latest));
    const fromName = checkpointStepFromFileName(this.name, latest);
    const step = (meta && stepFromMetadata(meta)) ?? (typeof fromName === 'number' ? fromName : this.totalSteps);
    this.out.print(`Found step ${step} in metadata, starting from there`);
    const optimizer = optimizerStateIn(this.saveRoot);
    if (optimizer !== null) this.out.print(`Loading optimizer state from ${pyJoin(this.saveRootShown, optimizer)}`);
    return step;
  }

  private prepareDatasets(): void {
    const { out } = this;
    const datasets = Array.isArray(this.proc['datasets']) ? this.proc['datasets'].map(asRecord) : [];
    for (const ds of datasets) {
      const folder = String(ds['folder_path'] ?? '');
      const resolutionValue = ds['resolution'] ?? 512n;
      const resolutions = (Array.isArray(resolutionValue) ? resolutionValue : [resolutionValue]).map((r) => num(r, 512));
      // ai-toolkit splits a dataset into one per resolution (preprocess_dataset_raw_config).
      for (const resolution of resolutions) {
        out.print(`Dataset: ${folder}`);
        out.print('  -  Preprocessing image dimensions');
        const count = countImages(folder);
        if (count === null) {
          throw new JobFailure(`[Errno 2] No such file or directory: '${folder}'`, 'FileNotFoundError', [
            ...inProcess(1664, 'self.data_loader = get_dataloader_from_datasets(self.datasets, self.train_config.batch_size, self.sd)'),
            frame('toolkit/data_loader.py', 412, '__init__', 'file_list = os.listdir(self.dataset_path)'),
          ]);
        }
        let clock = 0;
        const simulated = () => clock;
        if (count > 0) {
          // Preprocessing is fast: tqdm's throttle hides every refresh but the closing one.
          const bar = new TqdmBar({ total: count, clock: simulated, write: this.out.bar, ncols: this.ncols });
          for (let i = 0; i < count; i++) {
            clock += 0.004;
            bar.update(1);
          }
          bar.close(true);
        }
        out.print(`  -  Found ${count} images`);
        if (count === 0) {
          throw new JobFailure('num_samples should be a positive integer value, but got num_samples=0', 'ValueError', [
            ...inProcess(1664, 'self.data_loader = get_dataloader_from_datasets(self.datasets, self.train_config.batch_size, self.sd)'),
            site('torch/utils/data/sampler.py', 164, '__init__', 'raise ValueError(f"num_samples should be a positive integer value, but got num_samples={self.num_samples}")'),
          ]);
        }
        out.print(`Bucket sizes for ${folder}:`);
        const buckets = bucketsFor(resolution, count);
        for (const b of buckets) out.print(`${b.width}x${b.height}: ${b.files} files`);
        out.print(`${buckets.length} buckets made`);

        const toDisk = truthy(ds['cache_latents_to_disk']);
        if (toDisk || truthy(ds['cache_latents'])) {
          out.print(`Caching latents for ${folder}`);
          if (toDisk) out.print(' - Saving latents to disk');
          // Seconds per image measured in the reference transcript: 0.21 s at 512 px, 0.62 s at 1024 px.
          const perImage = 0.21 * Math.pow(resolution / 512, 1.5645);
          clock = 0;
          const bar = new TqdmBar({
            desc: toDisk ? 'Caching latents to disk' : 'Caching latents',
            total: count,
            clock: simulated,
            write: this.out.bar,
            ncols: this.ncols,
          });
          for (let i = 0; i < count; i++) {
            clock += perImage;
            bar.update(1);
          }
          bar.close(true);
        }
      }
    }
  }

  /**
   * ai-toolkit's train loop, as far as the output goes: set_postfix_str with each step's loss, the
   * bar paused around a save and a sample (so the n += 1 redraw after them is skipped), and a step
   * that runs out of memory skipped without a postfix, up to three in a row.
   */
  private async trainLoop(startStep: number, logger: UiLogger | null): Promise<void> {
    const { out, totalSteps, injection } = this;
    const saveEvery = int(this.save['save_every'], 1000);
    const sampleEvery = int(this.sampleConfig['sample_every'], 100);
    const sampleStart = int(this.sampleConfig['sample_start_step'], 0);
    const bar = new ToolkitBar({
      desc: this.name,
      total: totalSteps,
      initial: startStep,
      clock: this.clock,
      write: this.out.bar,
      ncols: this.ncols,
    });
    bar.pause();
    this.checkTriggerWord(); // the first batch's captions

    let outOfMemory = false;
    let consecutiveOom = 0;
    for (let step = startStep; step < totalSteps; step++) {
      bar.unpause();
      await this.tick(this.stepMs);
      this.advance(1);
      if (injection.fail !== null && injection.fail !== 'gated' && step === injection.atStep && !(injection.fromScratchOnly && startStep > 0) && this.shouldFail()) {
        if (injection.fail === 'oom') outOfMemory = true;
        else await this.failDuringStep();
      }
      if (outOfMemory || injection.oomSkipSteps.has(step)) {
        if (++consecutiveOom > 3) {
          throw new JobFailure(OOM_ABORT, 'RuntimeError', inProcess(2636, `raise RuntimeError("${OOM_ABORT}")`));
        }
        out.print('');
        out.print('#'.repeat(48));
        out.print(`# OOM during training step, skipping batch ${consecutiveOom}/3 #`);
        out.print('#'.repeat(48));
        out.print('');
      } else {
        consecutiveOom = 0;
        const printed = lossText(this.seed, step, totalSteps, this.lossOffset);
        bar.setPostfixStr(`lr: ${pyExp(this.lr, 1)} loss: ${printed}`);
        if (step !== startStep) logger?.log(step, Number(printed), this.lr);
      }

      if (step !== startStep) {
        if (step % saveEvery === 0) {
          bar.pause();
          out.print(`\nSaving at step ${step}`);
          this.saveCheckpoint(step);
          bar.unpause();
        }
        if (this.samplingOn && step % sampleEvery === 0 && step >= sampleStart) {
          bar.pause();
          await this.sample(step, 1);
          bar.unpause();
        }
      }
      bar.update(step + 1 - bar.n);
    }
    bar.close(true);
    this.saveCheckpoint(undefined);
    if (this.samplingOn) await this.sample(totalSteps, 0);
    out.print('');
  }

  private async failDuringStep(): Promise<void> {
    const { fail, signal, message } = this.injection;
    if (fail === 'signal') {
      await this.out.flush();
      this.io.kill(signal);
      // Only reached when kill() did not end the process (an in-process caller's stand-in).
      throw new JobFailure(`killed by ${signal}`, 'SystemExit', []);
    }
    if (fail === 'hang') {
      await this.out.flush();
      await this.control.hang();
    }
    throw new JobFailure(message, 'RuntimeError', [
      ...inProcess(2083, 'loss_dict = self.hook_train_loop(batch_list)'),
      frame('extensions_built_in/sd_trainer/SDTrainer.py', 1986, 'hook_train_loop', 'loss = self.train_single_accumulation(batch)'),
    ]);
  }

  /** With `once`, the first failure leaves a marker in the output folder and later attempts run clean. */
  private shouldFail(): boolean {
    if (!this.injection.once) return true;
    const marker = path.join(this.saveRoot, FAILED_ONCE_MARKER);
    if (existsSync(marker)) return false;
    mkdirSync(this.saveRoot, { recursive: true });
    writeFileSync(marker, '');
    return true;
  }

  private saveCheckpoint(step: number | undefined): void {
    const file = checkpointFileName(this.name, step);
    const savedStep = step ?? this.totalSteps;
    const mib = this.injection.checkpointMiB ?? nonNegative(Number(this.io.env['FAKE_CHECKPOINT_MIB'] ?? 0), 0);
    const values = Math.max(4, Math.floor((mib * 1024 * 1024) / 2));
    const weights = Buffer.alloc(values * 2);
    for (let i = 0; i < 4; i++) weights.writeUInt16LE(0x3c00 + ((savedStep + i) % 256), i * 2); // F16 values near 1.0
    // The same step gives the same bytes, whatever the run: a large body repeats a per-step pattern.
    if (values > 4) {
      const pattern = Buffer.alloc(4096);
      for (let i = 0; i < pattern.length; i += 2) pattern.writeUInt16LE(0x3c00 + ((savedStep * 7 + i) % 1024), i);
      for (let off = 8; off < weights.length; off += pattern.length) pattern.copy(weights, off, 0, Math.min(pattern.length, weights.length - off));
    }
    const body = encodeSafetensors(
      {
        format: 'pt',
        name: this.name,
        ss_output_name: this.name,
        step: String(savedStep),
        training_info: JSON.stringify({ step: savedStep, epoch: 0 }),
      },
      [{ name: 'transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight', dtype: 'F16', shape: [1, values], data: weights }],
    );
    writeAtomically(path.join(this.saveRoot, file), body);
    this.out.print(`Saved checkpoint to ${pyJoin(this.saveRootShown, file)}`);
    writeAtomically(path.join(this.saveRoot, OPTIMIZER_FILE), Buffer.from(`fake optimizer state at step ${savedStep}\n`));
    this.out.print(`Saved optimizer to ${pyJoin(this.saveRootShown, OPTIMIZER_FILE)}`);
    this.pruneSaves();
  }

  /** ai-toolkit keeps the newest max_step_saves_to_keep `<name>_*.safetensors`; the final file never counts. */
  private pruneSaves(): void {
    const keep = int(this.save['max_step_saves_to_keep'], 5);
    const saves = readdirSync(this.saveRoot)
      .map((file) => ({ file, step: checkpointStepFromFileName(this.name, file) }))
      .filter((c): c is { file: string; step: number } => typeof c.step === 'number')
      .sort((a, b) => a.step - b.step);
    for (const old of saves.slice(0, Math.max(0, saves.length - keep))) {
      this.out.print(`Removing old save: ${pyJoin(this.saveRootShown, old.file)}`);
      rmSync(path.join(this.saveRoot, old.file), { force: true });
    }
  }

  /**
   * ai-toolkit puts the trigger word into prompts and captions with str.replace, which fails on a
   * trigger word YAML read as something else (`on` → True).
   */
  private checkTriggerWord(): void {
    const trigger = this.proc['trigger_word'];
    if (trigger === undefined || trigger === null || typeof trigger === 'string') return;
    const type = typeof trigger === 'boolean' ? 'bool' : typeof trigger === 'bigint' ? 'int' : typeof trigger === 'number' ? 'float' : 'dict';
    throw new JobFailure(`replace() argument 2 must be str, not ${type}`, 'TypeError', [
      ...inProcess(2081, 'self.sample(self.step_num)'),
      frame('toolkit/prompt_utils.py', 734, 'inject_trigger_into_prompt', 'output_prompt = output_prompt.replace(to_replace, replace_with)'),
    ]);
  }

  private async sample(step: number, position: number): Promise<void> {
    this.checkTriggerWord();
    const samplesDir = path.join(this.saveRoot, SAMPLES_DIR);
    const tmpDir = path.join(samplesDir, SAMPLES_TMP_DIR);
    mkdirSync(tmpDir, { recursive: true });
    const bar = new TqdmBar({
      desc: 'Generating Images',
      total: this.sampleItems.length,
      position,
      clock: this.clock,
      write: this.out.bar,
      ncols: this.ncols,
    });
    for (const [i, item] of this.sampleItems.entries()) {
      await this.tick(this.stepMs);
      this.advance(5);
      // ai-toolkit numbers the images of one sampling by item: `[time]__<step>_[count]`.
      const file = sampleFileName({ epochMs: Date.now(), step, promptIndex: i, ext: this.sampleExt });
      writeFileSync(path.join(tmpDir, file), await sampleImage(step, item, this.itemSeed(i), this.sampleExt));
      renameSync(path.join(tmpDir, file), path.join(samplesDir, file));
      bar.update(1);
    }
    bar.close(false);
    this.out.stdoutRaw('\n');
  }

  /** The seed item i is sampled with: ai-toolkit's sample.seed, walked by item with walk_seed. */
  private itemSeed(i: number): number {
    const seed = int(this.sampleConfig['seed'], 0);
    return truthy(this.sampleConfig['walk_seed']) ? seed + i : seed;
  }

  /**
   * Lets time pass (a step, an image) and SIGINT in. With no delay the event loop is still visited
   * every 256 calls, so a 10,000-step run at FAKE_STEP_MS=0 stays fast and still stoppable.
   */
  private async tick(ms: number): Promise<void> {
    if (ms > 0) {
      await this.out.flush();
      await this.control.sleep(ms);
    } else if (++this.ticks % 256 === 0) {
      await this.out.flush();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (this.control.stopRequested) throw new Stopped();
  }
}

/** How often a step prints the same loss text as the step before (about 1 in 12). */
const REPEAT_CHANCE = 1 / 12;

/**
 * The loss printed at a step: a decaying trend plus deterministic noise from (seed, step), so a
 * resumed run prints the same values. Now and then a step prints exactly the text of the step
 * before, as real runs do (four significant digits): the two are still two points.
 */
export function lossText(seed: number, step: number, totalSteps: number, offset = 0): string {
  let printed = step;
  while (printed > 0 && hash01(seed ^ 0x5bd1e995, printed) < REPEAT_CHANCE) printed--;
  const progress = totalSteps > 0 ? printed / totalSteps : 0;
  const value = Math.max(0.02, 0.3 + offset + 0.16 * Math.exp(-3 * progress) + (hash01(seed, printed) - 0.5) * 0.2);
  return pyExp(value, 3);
}

function hash01(seed: number, step: number): number {
  let h = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(step + 0x632be5ab, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

function readInjection(value: unknown): Injection {
  const v = asRecord(value);
  const fail = v['fail'];
  const modes: FailMode[] = ['oom', 'signal', 'gated', 'error', 'hang'];
  if (fail !== undefined && fail !== null && !modes.includes(fail as FailMode)) {
    throw new JobFailure(`loralab_fake_trainer.fail must be one of ${modes.join(', ')}, got ${String(fail)}`, 'ValueError', []);
  }
  const steps = Array.isArray(v['oomSkipSteps']) ? v['oomSkipSteps'].map((s) => num(s, -1)) : [];
  return {
    fail: (fail as FailMode | undefined) ?? null,
    atStep: int(v['atStep'], 0),
    signal: (typeof v['signal'] === 'string' ? v['signal'] : 'SIGKILL') as NodeJS.Signals,
    message: typeof v['message'] === 'string' ? v['message'] : 'fake trainer failure',
    once: truthy(v['once']),
    fromScratchOnly: truthy(v['fromScratchOnly']),
    stepMs: v['stepMs'] === undefined ? null : nonNegative(num(v['stepMs'], 20), 20),
    secondsPerStep: v['secondsPerStep'] === undefined ? null : nonNegative(num(v['secondsPerStep'], 1), 1),
    ncols: v['ncols'] === undefined ? null : Math.max(1, int(v['ncols'], 79)),
    oomSkipSteps: new Set(steps),
    checkpointMiB: v['checkpointMiB'] === undefined ? null : nonNegative(num(v['checkpointMiB'], 0), 0),
    surface: truthy(v['surface']),
  };
}

/** `[name]` replaced in every string, keys included, as toolkit/config.py does through json.dumps. */
function replaceNameTag(value: unknown, name: string): unknown {
  if (typeof value === 'string') return value.replaceAll('[name]', name);
  if (Array.isArray(value)) return value.map((v) => replaceNameTag(v, name));
  if (typeof value === 'object' && value !== null && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replaceAll('[name]', name), replaceNameTag(v, name)]));
  }
  return value;
}

function countImages(folder: string): number | null {
  try {
    if (!statSync(folder).isDirectory()) return null;
    return readdirSync(folder).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).length;
  } catch {
    return null;
  }
}

/** Two aspect buckets per resolution, 2:1, like the transcript (512x512: 8, 448x576: 4). */
function bucketsFor(resolution: number, count: number): { width: number; height: number; files: number }[] {
  const square = Math.ceil((count * 2) / 3);
  const portrait = count - square;
  const narrow = Math.round((resolution * 0.875) / 16) * 16;
  const tall = Math.round((resolution * 1.125) / 16) * 16;
  const buckets = [{ width: resolution, height: resolution, files: square }];
  if (portrait > 0) buckets.push({ width: narrow, height: tall, files: portrait });
  return buckets;
}

/** One image of a sampling: a prompt at a LoRA strength (ai-toolkit's sample item and its network_multiplier). */
export interface SampleItem {
  prompt: string;
  networkMultiplier: number;
}

/**
 * The sample items of a process's `sample` section, as ai-toolkit reads them: the `samples` list
 * (each `{ prompt, network_multiplier }`), else the plain `prompts` list; a strength not given is
 * the section's `network_multiplier`, else 1. Item i of a sampling is written as `…__<step>_<i>`.
 */
export function sampleItems(sample: Record<string, unknown>): SampleItem[] {
  const fallback = num(sample['network_multiplier'], 1);
  const items = sample['samples'];
  if (Array.isArray(items) && items.length > 0) {
    return items.map(asRecord).filter((item) => item['prompt'] != null).map((item) => ({ prompt: String(item['prompt']), networkMultiplier: num(item['network_multiplier'], fallback) }));
  }
  const prompts = sample['prompts'];
  return Array.isArray(prompts) ? prompts.map((p) => ({ prompt: String(p), networkMultiplier: fallback })) : [];
}

/**
 * A sample image, 256×256, that a person can tell apart by what made it: the prompt sets its colour
 * and the slant of its stripes, the step their width, the strength their contrast (none at 0,
 * inverted below 0), and the item's seed where they start. So a grid of prompts × steps × strengths
 * shows every cell different, as a real one would. sharp is loaded on first use.
 */
export async function sampleImage(step: number, item: SampleItem, seed: number, ext: SampleExt): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  const size = 256;
  const pixels = Buffer.alloc(size * size * 3);
  const h = fnv1a(item.prompt);
  const colour = hueToRgb((h % 360) / 360);
  const slant = h & 0x1000000 ? 1 : -1;
  const period = 10 + ((step * 37) % 54);
  const phase = ((seed % 997) * 7) % period;
  const contrast = 90 * Math.max(-1.5, Math.min(1.5, item.networkMultiplier));
  const mix = [1, -0.6, 0.8];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const wave = Math.sin(((x + slant * y + phase) / period) * 2 * Math.PI);
      const o = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) pixels[o + c] = Math.max(0, Math.min(255, Math.round(colour[c]! + contrast * wave * mix[c]! + (y - 128) * 0.2)));
    }
  }
  const image = sharp(pixels, { raw: { width: size, height: size, channels: 3 } });
  return ext === 'png' ? image.png().toBuffer() : image.jpeg({ quality: 85 }).toBuffer();
}

/** A mid-light, fairly saturated colour of hue `hue` (0–1), as 0–255 channels. */
function hueToRgb(hue: number): number[] {
  return [0, 2 / 3, 1 / 3].map((shift) => {
    const t = (((hue + shift) % 1) + 1) % 1;
    const v = t < 1 / 6 ? 6 * t : t < 1 / 2 ? 1 : t < 2 / 3 ? (2 / 3 - t) * 6 : 0;
    return Math.round(60 + 130 * v);
  });
}

/** 32-bit FNV-1a of a string's UTF-16 units: a stable number per prompt. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function writeAtomically(file: string, data: Buffer): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

function traceback(err: JobFailure): string {
  const frames = [frame('run.py', 120, '<module>', 'main()'), frame('run.py', 108, 'main', 'raise e'), ...err.frames];
  return `Traceback (most recent call last):\n${frames.join('')}${err.exceptionType}: ${err.message}\n`;
}

/** The frames from run.py's job.run() down into the training process. */
function inProcess(line: number, code: string): string[] {
  return [
    frame('run.py', 96, 'main', 'job.run()'),
    frame('jobs/ExtensionJob.py', 22, 'run', 'process.run()'),
    frame('jobs/process/BaseSDTrainProcess.py', line, 'run', code),
  ];
}

function frame(file: string, line: number, fn: string, code: string): string {
  return `  File "${TOOLKIT}/${file}", line ${line}, in ${fn}\n    ${code}\n`;
}

function site(file: string, line: number, fn: string, code: string): string {
  return `  File "${SITE}/${file}", line ${line}, in ${fn}\n    ${code}\n`;
}

/** os.path.join for two POSIX parts: no normalising, so a relative training_folder prints as given ("output/name"). */
function pyJoin(a: string, b: string): string {
  if (a.length === 0) return b;
  return a.endsWith('/') ? a + b : `${a}/${b}`;
}

/** The width tqdm draws at when piped: TQDM_NCOLS (tqdm ≥ 4.66), else COLUMNS − 1 (older tqdm). */
function barWidth(env: NodeJS.ProcessEnv): number | null {
  const ncols = Number.parseInt(env['TQDM_NCOLS'] ?? '', 10);
  if (Number.isFinite(ncols) && ncols > 0) return ncols;
  const columns = Number.parseInt(env['COLUMNS'] ?? '', 10);
  return Number.isFinite(columns) && columns > 1 ? columns - 1 : null;
}

function realClock(): number {
  return performance.now() / 1000;
}

function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function num(v: unknown, fallback: number): number {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return fallback;
}

function int(v: unknown, fallback: number): number {
  return Math.trunc(num(v, fallback));
}

function positiveOrNull(v: number): number | null {
  return Number.isFinite(v) && v > 0 ? v : null;
}

function nonNegative(v: number, fallback: number): number {
  return Number.isFinite(v) && v >= 0 ? v : fallback;
}

function truthy(v: unknown): boolean {
  return v === true || v === 'true' || (typeof v === 'bigint' && v !== 0n) || (typeof v === 'number' && v !== 0);
}

function processIo(): FakeTrainerIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    onSigint: (handler) => {
      process.on('SIGINT', handler);
      return () => process.off('SIGINT', handler);
    },
    kill: (signal) => process.kill(process.pid, signal),
  };
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // A reader that goes away (EPIPE) must not turn into an unhandled 'error' crash with a Node trace.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
