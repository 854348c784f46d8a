// Real ai-toolkit output folders, made by running the fake trainer on a config, as ai-toolkit
// writes them: config.yaml, checkpoints, optimizer.pt, samples/, loss_log.db (with
// logging.use_ui_logger) and, as the ai-toolkit UI keeps it, the console output in log.txt.
import { spawn } from 'node:child_process';
import { openSync, closeSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import sharp from 'sharp';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface JobOptions {
  name: string;
  /** Where training_folder points: the job's files land in `<trainingFolder>/<name>`. */
  trainingFolder: string;
  datasetFolder: string;
  steps?: number;
  saveEvery?: number;
  sampleEvery?: number;
  logEvery?: number | null;
  /** Extra keys for the process config (an unknown one, say). */
  extra?: Record<string, unknown>;
  keepLog?: boolean;
}

export function jobConfig(o: JobOptions) {
  return {
    job: 'extension',
    config: {
      name: o.name,
      process: [
        {
          type: 'sd_trainer',
          training_folder: o.trainingFolder,
          device: 'cuda:0',
          trigger_word: 'p3r5on',
          network: { type: 'lora', linear: 32, linear_alpha: 16 },
          save: { dtype: 'float16', save_every: o.saveEvery ?? 100, max_step_saves_to_keep: 4 },
          ...(o.logEvery ? { logging: { use_ui_logger: true, log_every: o.logEvery } } : {}),
          datasets: [{ folder_path: o.datasetFolder, caption_ext: 'txt', caption_dropout_rate: 0.05, shuffle_tokens: false, resolution: [512, 768] }],
          train: { batch_size: 1, steps: o.steps ?? 300, gradient_accumulation_steps: 1, noise_scheduler: 'flowmatch', optimizer: 'adamw8bit', lr: 2e-4, dtype: 'bf16', ema_config: { use_ema: true, ema_decay: 0.99 } },
          model: { name_or_path: 'black-forest-labs/FLUX.1-dev', is_flux: true, quantize: true },
          sample: {
            sampler: 'flowmatch',
            sample_every: o.sampleEvery ?? 100,
            width: 1024,
            height: 1024,
            prompts: ['[trigger] holding a sign', 'a bear building a log cabin'],
            seed: 42,
            guidance_scale: 4,
            sample_steps: 20,
          },
          ...o.extra,
        },
      ],
    },
  };
}

/** A folder of small real PNG images with captions beside them. */
export async function makeDataset(dir: string, count = 3) {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const png = await sharp({ create: { width: 32 + i, height: 24, channels: 3, background: { r: 40 * i, g: 90, b: 200 } } }).png().toBuffer();
    writeFileSync(path.join(dir, `img${i}.png`), png);
    writeFileSync(path.join(dir, `img${i}.txt`), `a photo of p3r5on number ${i}`);
  }
}

/** Trains a job with the fake trainer; returns its output folder. */
export async function trainJob(configDir: string, o: JobOptions): Promise<string> {
  mkdirSync(configDir, { recursive: true });
  const configFile = path.join(configDir, `${o.name}.yaml`);
  writeFileSync(configFile, stringify(jobConfig(o)));
  const folder = path.join(o.trainingFolder, o.name);
  mkdirSync(folder, { recursive: true });
  const logFile = path.join(o.keepLog === false ? configDir : folder, o.keepLog === false ? `${o.name}.log.txt` : 'log.txt');
  const fd = openSync(logFile, 'w');
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'scripts/run.js'), path.join(ROOT, 'agents/fake-trainer.ts'), configFile], {
        cwd: ROOT,
        env: { ...process.env, FAKE_STEP_MS: '0', PYTHONUNBUFFERED: '1' },
        stdio: ['ignore', fd, fd],
      });
      child.on('error', reject);
      child.on('exit', resolve);
    });
    if (code !== 0) throw new Error(`the fake trainer exited with ${code}; see ${logFile}`);
  } finally {
    closeSync(fd);
  }
  return folder;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npm run loralab -- …` as a person runs it (compiled; stdout and stderr apart). */
export function loralab(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const base = { ...process.env };
    delete base['LORALAB_SERVER'];
    delete base['LORALAB_TOKEN'];
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts/run.js'), path.join(ROOT, 'cli/loralab.ts'), ...args], {
      cwd: ROOT,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
