// An ai-toolkit job config (config.yaml, or the UI's .job_config.json) read back into loralab's
// terms: typed hyperparameters, the dataset folder and the caption settings. The opposite of
// runs/trainer-config.ts. A config loralab cannot map is never refused: each value that does not
// fit is kept in `extra` under its own path, with a warning naming the key.
import { parse } from 'yaml';
import { BASE_MODELS, DEFAULT_BASE_MODEL, NAME_TAG } from '../runs/ai-toolkit.js';
import { hyperparametersInput, type Hyperparameters } from '../runs/hyperparameters.js';

export interface ImportWarning {
  key: string;
  message: string;
}

export interface MappedConfig {
  name: string;
  hyperparameters: Hyperparameters;
  dataset: { folderPath: string | null; captionExt: string | null; dropoutRate: number; shuffleTokens: boolean };
  triggerWord: string | null;
  warnings: ImportWarning[];
}

export class ConfigError extends Error {}

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Keys of a process config that ai-toolkit reads and loralab knows, section by section; what is
 * known but not mapped onto a hyperparameter goes to `extra` silently. A key not listed here is
 * kept in `extra` too, with a warning: loralab cannot tell whether ai-toolkit ever read it.
 */
const KNOWN: Record<string, readonly string[]> = {
  '': ['type', 'training_folder', 'device', 'trigger_word', 'network', 'save', 'datasets', 'train', 'model', 'sample', 'logging', 'performance_log_every', 'training_seed', 'loralab_fake_trainer'],
  network: ['type', 'linear', 'linear_alpha', 'conv', 'conv_alpha', 'dropout', 'network_kwargs', 'lokr_full_rank', 'lokr_factor', 'transformer_only'],
  save: ['dtype', 'save_every', 'max_step_saves_to_keep', 'push_to_hub', 'hf_repo_id', 'hf_private', 'save_format'],
  train: [
    'batch_size', 'steps', 'gradient_accumulation', 'gradient_accumulation_steps', 'train_unet', 'train_text_encoder', 'gradient_checkpointing',
    'noise_scheduler', 'optimizer', 'optimizer_params', 'lr', 'lr_scheduler', 'lr_scheduler_params', 'ema_config', 'dtype', 'skip_first_sample',
    'disable_sampling', 'linear_timesteps', 'timestep_type', 'content_or_style', 'noise_offset', 'max_grad_norm', 'loss_type', 'unload_text_encoder',
    'cache_text_embeddings', 'bypass_guidance_embedding', 'weight_decay', 'force_first_sample', 'diff_output_preservation',
  ],
  model: ['name_or_path', 'is_flux', 'quantize', 'quantize_te', 'qtype', 'qtype_te', 'low_vram', 'assistant_lora_path', 'arch', 'inference_lora_path'],
  sample: ['sampler', 'sample_every', 'sample_start_step', 'width', 'height', 'prompts', 'neg', 'seed', 'walk_seed', 'guidance_scale', 'sample_steps', 'samples', 'format', 'ext'],
  logging: ['log_every', 'use_ui_logger', 'use_wandb', 'verbose', 'project_name', 'run_name'],
};

/** Dataset keys: the first four become the dataset and its caption strategy, the rest are ai-toolkit's own. */
const DATASET_KEYS = [
  'folder_path', 'caption_ext', 'caption_dropout_rate', 'shuffle_tokens', 'resolution', 'cache_latents_to_disk', 'cache_latents', 'default_caption',
  'num_repeats', 'token_dropout_rate', 'is_reg', 'network_weight', 'mask_path', 'control_path', 'flip_x', 'flip_y',
];

/** Hyperparameter ← config path (inside the process config). `datasets.0.resolution` is read from the first dataset. */
const MAPPED: [keyof Hyperparameters, string][] = [
  ['rank', 'network.linear'],
  ['alpha', 'network.linear_alpha'],
  ['learningRate', 'train.lr'],
  ['steps', 'train.steps'],
  ['batchSize', 'train.batch_size'],
  ['gradientAccumulation', 'train.gradient_accumulation'],
  ['optimizer', 'train.optimizer'],
  ['lrScheduler', 'train.lr_scheduler'],
  ['noiseScheduler', 'train.noise_scheduler'],
  ['dtype', 'train.dtype'],
  ['resolutions', 'datasets.0.resolution'],
  ['saveEvery', 'save.save_every'],
  ['checkpointsToKeep', 'save.max_step_saves_to_keep'],
  ['sampleEvery', 'sample.sample_every'],
  ['samplePrompts', 'sample.prompts'],
  ['sampleSeed', 'sample.seed'],
  ['sampleWidth', 'sample.width'],
  ['sampleHeight', 'sample.height'],
  ['guidanceScale', 'sample.guidance_scale'],
  ['sampleSteps', 'sample.sample_steps'],
  ['quantize', 'model.quantize'],
  ['seed', 'training_seed'],
];

function get(tree: Tree, path: string): unknown {
  let at: unknown = tree;
  for (const part of path.split('.')) {
    if (Array.isArray(at)) at = at[Number(part)];
    else if (isTree(at)) at = at[part];
    else return undefined;
  }
  return at;
}

function set(tree: Tree, path: string[], value: unknown) {
  let at = tree;
  for (const part of path.slice(0, -1)) {
    if (!isTree(at[part])) at[part] = {};
    at = at[part] as Tree;
  }
  at[path.at(-1)!] = value;
}

function remove(tree: Tree, path: (string | number)[]) {
  let at: unknown = tree;
  for (const part of path.slice(0, -1)) at = isTree(at) ? at[String(part)] : undefined;
  if (isTree(at)) delete at[String(path.at(-1))];
}

/** ai-toolkit replaces `[name]` with the job name in every string and key before it reads anything. */
function replaceNameTag(value: unknown, name: string): unknown {
  if (typeof value === 'string') return value.split(NAME_TAG).join(name);
  if (Array.isArray(value)) return value.map((v) => replaceNameTag(v, name));
  if (isTree(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.split(NAME_TAG).join(name), replaceNameTag(v, name)]));
  return value;
}

/** The job config's text → its name and first process; JSON (the UI's .job_config.json) is YAML too. */
export function readJobConfig(text: string): { name: string; process: Tree } {
  let doc: unknown;
  try {
    // PyYAML reads YAML 1.1 (ai-toolkit adds a rule that reads 1e-4 as a float, which YAML 1.1 here does too).
    doc = parse(text, { version: '1.1' });
  } catch (err) {
    throw new ConfigError(`is not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const config = isTree(doc) ? doc['config'] : undefined;
  const name = isTree(config) ? config['name'] : undefined;
  const processes = isTree(config) ? config['process'] : undefined;
  if (typeof name !== 'string' || !name || !Array.isArray(processes) || !isTree(processes[0])) {
    throw new ConfigError('has no config.name and config.process list, so it is not an ai-toolkit job');
  }
  return { name, process: replaceNameTag(processes[0], name) as Tree };
}

const toNumber = (v: unknown) => (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v);

export function mapJobConfig(text: string): MappedConfig {
  const { name, process } = readJobConfig(text);
  const warnings: ImportWarning[] = [];
  const extra: Tree = {};
  const candidate: Tree = {};
  const source = new Map<string, string>();

  for (const [field, path] of MAPPED) {
    let value = get(process, path);
    if (value === undefined || value === null) continue;
    if (field === 'resolutions' && !Array.isArray(value)) value = [value];
    candidate[field] = Array.isArray(value) ? value.map(toNumber) : toNumber(value);
    source.set(field, path);
  }
  const mappedPaths = new Set(MAPPED.map(([, p]) => p));

  // Everything else of the known sections goes to extra as it is; unknown keys with a warning.
  for (const [key, value] of Object.entries(process)) {
    if (!KNOWN['']!.includes(key)) {
      warnings.push({ key, message: 'is not a key loralab knows; kept in hyperparameters.extra' });
      extra[key] = value;
      continue;
    }
    if (['type', 'training_folder', 'device', 'trigger_word', 'datasets', 'training_seed', 'loralab_fake_trainer'].includes(key)) continue;
    if (!isTree(value)) continue;
    for (const [inner, v] of Object.entries(value)) {
      const path = `${key}.${inner}`;
      if (mappedPaths.has(path)) continue;
      if (!KNOWN[key]?.includes(inner)) warnings.push({ key: path, message: 'is not a key loralab knows; kept in hyperparameters.extra' });
      if (key === 'model' && inner === 'name_or_path') continue;
      set(extra, [key, inner], v);
    }
  }

  const datasets = Array.isArray(process['datasets']) ? process['datasets'].filter(isTree) : [];
  const first = datasets[0] ?? {};
  for (const key of Object.keys(first)) {
    if (!DATASET_KEYS.includes(key)) warnings.push({ key: `datasets.0.${key}`, message: 'is not a dataset key loralab knows; not kept' });
  }
  if (datasets.length > 1) warnings.push({ key: 'datasets', message: `has ${datasets.length} datasets; the run records the first one` });

  // Values that do not fit a hyperparameter's rules are kept in extra under their config path.
  if (Object.keys(extra).length) candidate['extra'] = extra;
  let hp: Hyperparameters | null = null;
  for (let tries = 0; tries < 50 && !hp; tries++) {
    const parsed = hyperparametersInput.safeParse(candidate);
    if (parsed.success) {
      hp = parsed.data;
      break;
    }
    const issue = parsed.error.issues[0]!;
    const [field, ...rest] = issue.path.map(String);
    if (field === 'extra') {
      warnings.push({ key: rest.join('.'), message: `${issue.message}; left out` });
      remove(candidate['extra'] as Tree, rest);
      continue;
    }
    const path = source.get(field!) ?? field!;
    warnings.push({ key: path, message: `${JSON.stringify(candidate[field!])} ${issue.message}; kept in hyperparameters.extra` });
    if (!path.startsWith('datasets.')) set((candidate['extra'] ??= {}) as Tree, path.split('.'), get(process, path));
    delete candidate[field!];
  }
  if (!hp) throw new ConfigError('could not be mapped onto hyperparameters');

  // The base model is recorded as the config names it, whether loralab could train it or not.
  const model = get(process, 'model.name_or_path');
  if (typeof model === 'string' && model) {
    if (!(model in BASE_MODELS)) warnings.push({ key: 'model.name_or_path', message: `${model} is not a base model loralab trains; recorded as it is` });
    hp = { ...hp, baseModel: model };
  } else {
    warnings.push({ key: 'model.name_or_path', message: `is missing; recorded as ${DEFAULT_BASE_MODEL}` });
  }

  const trigger = process['trigger_word'];
  const dropout = toNumber(first['caption_dropout_rate']);
  return {
    name,
    hyperparameters: hp,
    dataset: {
      folderPath: typeof first['folder_path'] === 'string' ? first['folder_path'] : null,
      captionExt: typeof first['caption_ext'] === 'string' ? first['caption_ext'] : null,
      // ai-toolkit's own defaults (DatasetConfig): no dropout, no shuffling.
      dropoutRate: typeof dropout === 'number' && dropout >= 0 && dropout <= 1 ? dropout : 0,
      shuffleTokens: first['shuffle_tokens'] === true,
    },
    triggerWord: typeof trigger === 'string' && trigger ? trigger : null,
    warnings,
  };
}

/** The prompt the sampler got: `[trigger]` replaced when there is a trigger word (ai-toolkit leaves it otherwise). */
export function promptAsSampled(prompt: string | undefined, triggerWord: string | null) {
  if (prompt === undefined) return null;
  return triggerWord ? prompt.split('[trigger]').join(triggerWord) : prompt;
}
