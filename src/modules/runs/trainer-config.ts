// Renders a run as the ai-toolkit config it trains with, shaped like
// shared/reference/ai-toolkit/train_lora_flux_24gb.yaml. The agent replaces the two placeholders below
// with its own folders before it starts the trainer.
import { stringify } from 'yaml';
import type { CaptionStrategyRecord } from '../captions/captions.store.js';
import type { Hyperparameters } from './hyperparameters.js';

export const TRAINING_FOLDER_PLACEHOLDER = '<set by agent: training folder>';
export const DATASET_FOLDER_PLACEHOLDER = '<set by agent: staged dataset folder>';

/** ai-toolkit names its output folder and checkpoint files after config.name: keep it a safe file name. */
export function trainerJobName(runName: string, runId: string) {
  const slug = runName
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 60);
  return `${slug || 'run'}_${runId.replaceAll('-', '').slice(0, 8)}`;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `extra` wins key by key; objects merge recursively, anything else (arrays too) replaces. */
export function deepMerge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    out[key] = isObject(out[key]) && isObject(value) ? deepMerge(out[key] as Record<string, unknown>, value) : value;
  }
  return out;
}

export function buildTrainerConfig(
  run: { id: string; name: string },
  hp: Hyperparameters,
  strategy: Pick<CaptionStrategyRecord, 'kind' | 'triggerWord' | 'dropoutRate' | 'shuffleTokens'>,
) {
  const process: Record<string, unknown> = {
    type: 'sd_trainer',
    training_folder: TRAINING_FOLDER_PLACEHOLDER,
    device: 'cuda:0',
    ...(strategy.triggerWord ? { trigger_word: strategy.triggerWord } : {}),
    network: { type: 'lora', linear: hp.rank, linear_alpha: hp.alpha },
    save: {
      dtype: 'float16',
      save_every: hp.saveEvery,
      max_step_saves_to_keep: hp.checkpointsToKeep,
      push_to_hub: false,
    },
    datasets: [
      {
        folder_path: DATASET_FOLDER_PLACEHOLDER,
        caption_ext: 'txt',
        // NONE trains without captions: ai-toolkit then falls back to the trigger word (or nothing).
        caption_dropout_rate: strategy.kind === 'NONE' ? 0 : strategy.dropoutRate,
        shuffle_tokens: strategy.shuffleTokens,
        cache_latents_to_disk: true,
        resolution: hp.resolutions,
      },
    ],
    train: {
      batch_size: hp.batchSize,
      steps: hp.steps,
      gradient_accumulation_steps: hp.gradientAccumulation,
      train_unet: true,
      train_text_encoder: false,
      gradient_checkpointing: true,
      noise_scheduler: hp.noiseScheduler,
      optimizer: hp.optimizer,
      lr: hp.learningRate,
      lr_scheduler: hp.lrScheduler,
      ema_config: { use_ema: true, ema_decay: 0.99 },
      dtype: hp.dtype,
      ...(hp.seed != null ? { seed: hp.seed } : {}),
    },
    model: { name_or_path: hp.baseModel, is_flux: true, quantize: hp.quantize },
    sample: {
      sampler: 'flowmatch',
      sample_every: hp.sampleEvery,
      sample_start_step: 0,
      width: 1024,
      height: 1024,
      prompts: hp.samplePrompts,
      neg: '',
      seed: hp.sampleSeed,
      walk_seed: true,
      guidance_scale: hp.guidanceScale,
      sample_steps: hp.sampleSteps,
    },
  };
  return {
    job: 'extension',
    config: {
      name: trainerJobName(run.name, run.id),
      process: [hp.extra ? deepMerge(process, hp.extra) : process],
    },
    meta: { name: '[name]', version: '1.0', loralab_run_id: run.id },
  } as Record<string, Json>;
}

export function renderTrainerConfig(...args: Parameters<typeof buildTrainerConfig>) {
  return stringify(buildTrainerConfig(...args), { lineWidth: 0 });
}
