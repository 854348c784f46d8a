// Takes the ai-toolkit YAML the server rendered for a run and points it at this machine's folders.
// Only the two folder values change: each is replaced in the text where the YAML parser found it,
// so every other byte the server wrote (its quoting and escapes, which make ai-toolkit's YAML 1.1
// loader read each string as typed) reaches the trainer as it was.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isScalar, parseDocument, type Document } from 'yaml';
import { CONFIG_FILE } from './files.js';

export class TrainerConfigError extends Error {
  readonly code = 'BAD_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'TrainerConfigError';
  }
}

export interface TrainerFolders {
  /** Absolute folder ai-toolkit writes into; the run's files land in `<trainingFolder>/<name>/`. */
  trainingFolder: string;
  /** Absolute folder holding the staged images and captions. */
  datasetFolder: string;
}

export interface PreparedTrainerConfig {
  yaml: string;
  name: string;
  totalSteps: number;
  saveEvery: number;
  sampleEvery: number;
  maxStepSavesToKeep: number;
  /** The prompts as ai-toolkit's sampler gets them (see samplerPrompt). */
  samplePrompts: string[];
  /** Without a leading dot, e.g. "txt". */
  captionExt: string;
  /** `<trainingFolder>/<name>`: where checkpoints, samples and optimizer.pt appear. */
  outputDir: string;
}

// The name becomes a folder and the stem of every checkpoint file, so it must be one plain path
// segment.
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

// ai-toolkit's own defaults (toolkit/config_modules.py) for keys a config may leave out.
const DEFAULTS = { steps: 1000, saveEvery: 1000, maxStepSavesToKeep: 5, sampleEvery: 100, captionExt: 'txt' };

export function prepareTrainerConfig(yamlText: string, folders: TrainerFolders): PreparedTrainerConfig {
  // Read as ai-toolkit's loader (PyYAML) reads it: YAML 1.1.
  const doc = parseDocument(yamlText, { version: '1.1' });
  if (doc.errors.length > 0) throw new TrainerConfigError(`trainer config is not valid YAML: ${doc.errors[0]!.message}`);
  const root: unknown = doc.toJS();

  const config = field(root, 'config');
  const name = field(config, 'name');
  if (typeof name !== 'string' || name.length === 0) throw new TrainerConfigError('trainer config has no config.name');
  if (!SAFE_NAME.test(name)) {
    throw new TrainerConfigError(
      `config.name ${JSON.stringify(name)} is not a safe file name (letters, digits, '.', '_', '-'; at most 128)`,
    );
  }
  const processes = field(config, 'process');
  const proc: unknown = Array.isArray(processes) ? processes[0] : undefined;
  if (!isRecord(proc)) throw new TrainerConfigError('trainer config has no config.process[0]');

  const datasets = field(proc, 'datasets');
  if (!Array.isArray(datasets) || datasets.length === 0 || !datasets.every(isRecord)) {
    throw new TrainerConfigError('config.process[0].datasets must list at least one dataset');
  }

  const train = field(proc, 'train');
  const save = field(proc, 'save');
  const sample = field(proc, 'sample');
  const totalSteps = positiveInt(field(train, 'steps'), 'train.steps', DEFAULTS.steps);
  const saveEvery = positiveInt(field(save, 'save_every'), 'save.save_every', DEFAULTS.saveEvery);
  const maxStepSavesToKeep = positiveInt(
    field(save, 'max_step_saves_to_keep'),
    'save.max_step_saves_to_keep',
    DEFAULTS.maxStepSavesToKeep,
  );
  const sampleEvery = positiveInt(field(sample, 'sample_every'), 'sample.sample_every', DEFAULTS.sampleEvery);
  const prompts = field(sample, 'prompts') ?? [];
  if (!Array.isArray(prompts) || !prompts.every((p) => typeof p === 'string')) {
    throw new TrainerConfigError('sample.prompts must be a list of strings');
  }

  const captionExtRaw = field(datasets[0], 'caption_ext') ?? DEFAULTS.captionExt;
  if (typeof captionExtRaw !== 'string') throw new TrainerConfigError('datasets[0].caption_ext must be a string');
  const captionExt = captionExtRaw.replace(/^\./, '');
  if (!/^[A-Za-z0-9]+$/.test(captionExt)) {
    throw new TrainerConfigError(`datasets[0].caption_ext ${JSON.stringify(captionExtRaw)} is not a plain extension`);
  }

  const trainingFolder = checkedFolder(path.resolve(folders.trainingFolder));
  const datasetFolder = checkedFolder(path.resolve(folders.datasetFolder));
  const yaml = replaceValues(yamlText, doc, [
    [['config', 'process', 0, 'training_folder'], trainingFolder],
    ...datasets.map((_, i) => [['config', 'process', 0, 'datasets', i, 'folder_path'], datasetFolder] as Edit),
  ]);
  const triggerWord = field(proc, 'trigger_word');

  return {
    yaml,
    name,
    totalSteps,
    saveEvery,
    sampleEvery,
    maxStepSavesToKeep,
    samplePrompts: (prompts as string[]).map((p) => samplerPrompt(p, name, typeof triggerWord === 'string' ? triggerWord : null)),
    captionExt,
    outputDir: path.join(trainingFolder, name),
  };
}

/** Writes `<dir>/config.yaml` (through a temp file, so the trainer never reads half of it) and returns its absolute path. */
export async function writeTrainerConfig(dir: string, yaml: string): Promise<string> {
  const absDir = path.resolve(dir);
  await mkdir(absDir, { recursive: true });
  const file = path.join(absDir, CONFIG_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, yaml, 'utf8');
  await rename(tmp, file);
  return file;
}

type Edit = [(string | number)[], string];

/** `text` with the scalar at each path replaced by a double-quoted string, every other byte kept. */
function replaceValues(text: string, doc: Document, edits: Edit[]): string {
  const spans = edits.map(([at, value]) => {
    const node = doc.getIn(at, true);
    if (!isScalar(node) || !node.range) throw new TrainerConfigError(`${at.join('.')} is missing: the agent sets it to its own folder`);
    // JSON's escapes are YAML double-quoted escapes too; checkedFolder kept out what they would not cover.
    return { from: node.range[0], to: node.range[1], quoted: JSON.stringify(value) };
  });
  spans.sort((a, b) => b.from - a.from);
  for (const s of spans) text = text.slice(0, s.from) + s.quoted + text.slice(s.to);
  return text;
}

/**
 * A folder the config can name as it is: ai-toolkit would replace `${…}` (from the environment) and
 * `[name]` (with the job name) in it, and PyYAML folds or refuses some characters even when quoted.
 */
function checkedFolder(folder: string): string {
  const bad = /\$\{|\[name\]|[\x00-\x1f\x7f-\x9f\u2028\u2029]/.exec(folder);
  if (bad) throw new TrainerConfigError(`the folder ${JSON.stringify(folder)} holds ${JSON.stringify(bad[0])}, which ai-toolkit would not read as written; use a work folder without it`);
  return folder;
}

/**
 * A prompt as ai-toolkit's sampler gets it: its config loader has replaced [name] with the job name,
 * and when the process has a trigger word the sampler replaces [trigger] (and [name]) with it.
 */
export function samplerPrompt(prompt: string, jobName: string, triggerWord: string | null): string {
  const loaded = prompt.replaceAll('[name]', jobName);
  return triggerWord === null ? loaded : loaded.replaceAll('[trigger]', triggerWord).replaceAll('[name]', triggerWord);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(obj: unknown, key: string): unknown {
  return isRecord(obj) ? obj[key] : undefined;
}

function positiveInt(value: unknown, label: string, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TrainerConfigError(`${label} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}
