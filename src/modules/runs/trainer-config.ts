// Renders a run as the ai-toolkit config it trains with, shaped like ai-toolkit's FLUX LoRA example
// (test/fixtures/train_lora_flux_24gb.yaml). The agent replaces the two placeholders below with its
// own folders before it starts the trainer. docs/ai-toolkit.md lists what ai-toolkit does to the
// text it reads, which the writer here undoes.
import { Document, isScalar, visit } from 'yaml';
import type { CaptionStrategyRecord } from '../captions/captions.store.js';
import { TRIGGER_TAG, fillTag, triggerOf } from '../captions/render.js';
import { baseModelProfile } from './ai-toolkit.js';
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

/**
 * A sample prompt as ai-toolkit's sampler gets it. It fills "[trigger]" in prompts only when the
 * process has a trigger word, and would leave it in the prompt otherwise: without one it is taken out here.
 */
export const samplerPrompt = (prompt: string, triggerWord: string | null) => fillTag(prompt, TRIGGER_TAG, triggerWord);

export function buildTrainerConfig(
  run: { id: string; name: string },
  hp: Hyperparameters,
  strategy: Pick<CaptionStrategyRecord, 'kind' | 'triggerWord' | 'dropoutRate' | 'shuffleTokens'>,
) {
  const trigger = triggerOf(strategy);
  const profile = baseModelProfile(hp.baseModel);
  const base: Record<string, unknown> = {
    type: 'sd_trainer',
    training_folder: TRAINING_FOLDER_PLACEHOLDER,
    device: 'cuda:0',
    ...(trigger ? { trigger_word: trigger } : {}),
    // The process's seed (BaseTrainProcess seeds torch and random with it); TrainConfig has no `seed`.
    ...(hp.seed != null ? { training_seed: hp.seed } : {}),
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
      // Each step takes this many batches and then steps the optimizer once, so `steps` counts
      // optimizer steps (the legacy gradient_accumulation_steps counts batches instead).
      gradient_accumulation: hp.gradientAccumulation,
      train_unet: true,
      train_text_encoder: false,
      gradient_checkpointing: true,
      noise_scheduler: hp.noiseScheduler,
      optimizer: hp.optimizer,
      lr: hp.learningRate,
      lr_scheduler: hp.lrScheduler,
      ema_config: { use_ema: true, ema_decay: 0.99 },
      dtype: hp.dtype,
    },
    model: { ...profile.model, quantize: hp.quantize },
    sample: {
      // ai-toolkit's example: "must match train.noise_scheduler".
      sampler: hp.noiseScheduler,
      sample_every: hp.sampleEvery,
      sample_start_step: 0,
      width: hp.sampleWidth,
      height: hp.sampleHeight,
      // One strength: the plain prompt list. Several: a sample item per prompt and strength
      // (prompt-major, the order sampleSlot reads the trainer's sample numbers in).
      ...(hp.sampleStrengths.length === 1 && hp.sampleStrengths[0] === 1
        ? { prompts: hp.samplePrompts }
        : { samples: hp.samplePrompts.flatMap((prompt) => hp.sampleStrengths.map((m) => ({ prompt, network_multiplier: m }))) }),
      neg: '',
      seed: hp.sampleSeed,
      walk_seed: true,
      guidance_scale: hp.guidanceScale,
      sample_steps: hp.sampleSteps,
    },
  };
  const process = hp.extra ? deepMerge(base, hp.extra) : base;
  // After the merge, so prompts and a trigger word given in `extra` follow the same rule.
  const sample = process['sample'];
  if (isObject(sample) && Array.isArray(sample['prompts'])) {
    const triggerWord = typeof process['trigger_word'] === 'string' ? process['trigger_word'] : null;
    process['sample'] = { ...sample, prompts: sample['prompts'].map((p) => (typeof p === 'string' ? samplerPrompt(p, triggerWord) : p)) };
  }
  const items = isObject(process['sample']) ? process['sample']['samples'] : null;
  if (Array.isArray(items)) {
    const triggerWord = typeof process['trigger_word'] === 'string' ? process['trigger_word'] : null;
    process['sample'] = {
      ...(process['sample'] as Record<string, Json>),
      samples: items.map((item) => (isObject(item) && typeof item['prompt'] === 'string' ? { ...item, prompt: samplerPrompt(item['prompt'], triggerWord) } : item)),
    };
  }
  return {
    job: 'extension',
    config: {
      name: trainerJobName(run.name, run.id),
      process: [process],
    },
    meta: { name: '[name]', version: '1.0', loralab_run_id: run.id },
  } as Record<string, Json>;
}

export function renderTrainerConfig(...args: Parameters<typeof buildTrainerConfig>) {
  return toAiToolkitYaml(buildTrainerConfig(...args));
}

// A key written bare: a name, and not one of the words YAML 1.1 reads as a boolean or null.
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const YAML11_WORDS = /^(?:y|n|yes|no|on|off|true|false|null)$/i;

// What must not appear raw in the file even inside double quotes: `${`, which ai-toolkit replaces
// from the environment in the file's text before parsing it; characters PyYAML refuses (DEL, C1
// controls, U+FFFE/U+FFFF, lone surrogates); and YAML 1.1's extra line breaks (NEL, U+2028/9), which
// a quoted string would fold into a space.
const UNSAFE_IN_QUOTES = /\$\{|[\x7f-\x9f\u2028\u2029\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * YAML that ai-toolkit's loader (PyYAML, YAML 1.1) reads back as exactly this value: every string is
 * double-quoted (so `on`, `no`, `1:20`, `2024-01-01`, `1_000`, `=`, `<<` stay strings) and escapes
 * what ai-toolkit or PyYAML would otherwise change or refuse.
 */
export function toAiToolkitYaml(value: unknown): string {
  // Built with the YAML 1.2 core schema: with 1.1's, the library writes the string "<<" as a bare merge key.
  const doc = new Document(value);
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && typeof pair.key.value === 'string' && (!PLAIN_KEY.test(pair.key.value) || YAML11_WORDS.test(pair.key.value))) {
        pair.key.type = 'QUOTE_DOUBLE';
      }
    },
    Scalar(key, node) {
      if (key !== 'key' && typeof node.value === 'string') node.type = 'QUOTE_DOUBLE';
    },
  });
  // Every `${` and unsafe character left is inside a double-quoted string, where an escape stands for it.
  return doc.toString({ lineWidth: 0 }).replace(UNSAFE_IN_QUOTES, (c) => (c === '${' ? '\\x24{' : escapeChar(c)));
}

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}
