// What ai-toolkit accepts, in one place, each list with the file of ai-toolkit it was read from
// (ostris/ai-toolkit at 27a03a91, 2026-08-21; docs/ai-toolkit.md tells the story). queueRun checks
// hyperparameters against these, so a typo is refused when a run is queued, not found on a GPU
// after the model has loaded.

/** toolkit/optimizer.py, get_optimizer: compared in lower case. */
export const OPTIMIZERS = [
  'adamw8bit',
  'adam8bit',
  'ademamix8bit',
  'lion8bit',
  'adamw8',
  'adam8',
  'adamw',
  'adam',
  'lion',
  'adagrad',
  'adafactor',
  'prodigy',
  'prodigy8bit',
  'dadaptation',
  'dadaptationadam',
  'dadaptationlion',
  'automagic',
  'automagic2',
  'automagic3',
  'automagicexperiment',
] as const;

/**
 * toolkit/scheduler.py, get_lr_scheduler: its own names, exactly. Its fallback to diffusers'
 * schedulers never succeeds for a training run (they get a total_iters argument they do not take).
 */
export const LR_SCHEDULERS = ['constant', 'constant_with_warmup', 'linear', 'cosine', 'cosine_with_restarts', 'step'] as const;

/** toolkit/sampler.py, get_sampler: exactly. train.noise_scheduler and sample.sampler both go through it. */
export const NOISE_SCHEDULERS = [
  'flowmatch',
  'ddpm',
  'ddim',
  'pndm',
  'lms',
  'k_lms',
  'euler',
  'k_euler',
  'euler_a',
  'dpmsolver',
  'dpmsolver++',
  'k_dpmsolver',
  'k_dpmsolver++',
  'dpmsingle',
  'heun',
  'dpm_2',
  'dpm_2_a',
  'lcm',
  'custom_lcm',
  'mean_flow',
] as const;

/** toolkit/train_tools.py, get_torch_dtype: exactly (anything else is passed on as a string torch rejects). */
export const DTYPES = ['bf16', 'bfloat16', 'fp16', 'float16', 'half', 'fp32', 'float32', 'float', 'single', '8bit', 'float8', 'e4m3fn'] as const;

export interface BaseModelProfile {
  /** The model block, without `quantize` (a hyperparameter). */
  model: Record<string, string | boolean>;
  /** What the model trains and samples with: FLUX.1 is a flow-matching model. */
  noiseSchedulers: readonly string[];
  /** The sample defaults of ai-toolkit's example for this model. */
  sample: { guidanceScale: number; sampleSteps: number; width: number; height: number };
}

/**
 * The base models a run may name, each as ai-toolkit's example config for it has it
 * (config/examples/train_lora_flux_24gb.yaml, train_lora_flux_schnell_24gb.yaml). Others are refused
 * until a profile says how ai-toolkit loads and samples them.
 */
export const BASE_MODELS: Record<string, BaseModelProfile> = {
  'black-forest-labs/FLUX.1-dev': {
    model: { name_or_path: 'black-forest-labs/FLUX.1-dev', is_flux: true },
    noiseSchedulers: ['flowmatch'],
    sample: { guidanceScale: 4, sampleSteps: 20, width: 1024, height: 1024 },
  },
  'black-forest-labs/FLUX.1-schnell': {
    // schnell is distilled: ai-toolkit trains it through this adapter, and it samples in a few steps without guidance.
    model: { name_or_path: 'black-forest-labs/FLUX.1-schnell', assistant_lora_path: 'ostris/FLUX.1-schnell-training-adapter', is_flux: true },
    noiseSchedulers: ['flowmatch'],
    sample: { guidanceScale: 1, sampleSteps: 4, width: 1024, height: 1024 },
  },
};

export const DEFAULT_BASE_MODEL = 'black-forest-labs/FLUX.1-dev';

/** The profile of a stored run's base model; runs queued before base models were checked get FLUX.1-dev's shape. */
export function baseModelProfile(name: string): BaseModelProfile {
  return BASE_MODELS[name] ?? { ...BASE_MODELS[DEFAULT_BASE_MODEL]!, model: { name_or_path: name, is_flux: true } };
}

/**
 * toolkit/config.py replaces `[name]` with the job name in every string of the config (keys too)
 * before anything reads it, and YAML has no way to write it so that it survives. (`${VAR}` is also
 * replaced, from the environment, but in the file's text, so the YAML writer escapes it.)
 */
export const NAME_TAG = '[name]';
export const NAME_TAG_REFUSED = `contains ${NAME_TAG}, which ai-toolkit replaces with the job name before it reads the config, so it would not reach the trainer as written`;
/** Captions are files ai-toolkit reads as they are, except that it reads [name] there as the trigger word (or nothing). */
export const NAME_TAG_IN_CAPTIONS_REFUSED = `contains ${NAME_TAG}, which ai-toolkit replaces in captions with the trigger word (or nothing), so it would not reach the trainer as written`;

/** The path of the first string, key or value, that holds [name]; null when none does. */
export function findNameTag(value: unknown, path: (string | number)[] = []): (string | number)[] | null {
  if (typeof value === 'string') return value.includes(NAME_TAG) ? path : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNameTag(value[i], [...path, i]);
      if (found !== null) return found;
    }
    return null;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [key, v] of Object.entries(value)) {
      if (key.includes(NAME_TAG)) return [...path, key];
      const found = findNameTag(v, [...path, key]);
      if (found !== null) return found;
    }
  }
  return null;
}
