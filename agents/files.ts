// The names ai-toolkit gives the files it writes into `<training_folder>/<name>/`. The watcher reads
// them with these rules and the fake trainer writes them with the formatters, so both stay in step.

export const CHECKPOINT_EXT = '.safetensors';
export const SAMPLE_EXTENSIONS = ['jpg', 'png', 'webp'] as const;
export type SampleExt = (typeof SAMPLE_EXTENSIONS)[number];

export interface SampleFileName {
  epochMs: number;
  step: number;
  promptIndex: number;
  ext: SampleExt;
}

const SAMPLE_FILE = /^(\d{13})__(\d{9})_(\d+)\.(jpg|png|webp)$/;

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// The watcher asks about one config name many times; building its regex once per name is enough.
const checkpointPatterns = new Map<string, RegExp>();

export function checkpointFileRegex(configName: string): RegExp {
  let re = checkpointPatterns.get(configName);
  if (!re) {
    re = new RegExp(`^${escapeRegExp(configName)}(?:_(\\d{9}))?\\.safetensors$`);
    if (checkpointPatterns.size > 64) checkpointPatterns.clear();
    checkpointPatterns.set(configName, re);
  }
  return re;
}

/**
 * `<name>_000000250.safetensors` → 250, `<name>.safetensors` → 'final', anything else → null
 * (another run's files, temp files, the optimizer, samples).
 */
export function checkpointStepFromFileName(configName: string, fileName: string): number | 'final' | null {
  const m = checkpointFileRegex(configName).exec(fileName);
  if (m === null) return null;
  return m[1] === undefined ? 'final' : Number(m[1]);
}

/** ai-toolkit zero-pads steps to 9 digits (`str(step).zfill(9)`). */
export function padStep(step: number): string {
  return String(step).padStart(9, '0');
}

/** The intermediate checkpoint at `step`, or the final one when no step is given. */
export function checkpointFileName(configName: string, step?: number): string {
  return step === undefined ? `${configName}${CHECKPOINT_EXT}` : `${configName}_${padStep(step)}${CHECKPOINT_EXT}`;
}

/** `1718000000000__000000250_1.jpg` → epoch ms, step, prompt index (not zero-padded), extension. */
export function parseSampleFileName(fileName: string): SampleFileName | null {
  const m = SAMPLE_FILE.exec(fileName);
  if (m === null) return null;
  return { epochMs: Number(m[1]), step: Number(m[2]), promptIndex: Number(m[3]), ext: m[4] as SampleExt };
}

export function sampleFileName(sample: SampleFileName): string {
  return `${String(sample.epochMs).padStart(13, '0')}__${padStep(sample.step)}_${sample.promptIndex}.${sample.ext}`;
}

export const OPTIMIZER_FILE = 'optimizer.pt';
export const CONFIG_FILE = 'config.yaml';
export const SAMPLES_DIR = 'samples';
/** Samples are written here first and then renamed into SAMPLES_DIR, so a watcher never sees half a file. */
export const SAMPLES_TMP_DIR = '.tmp';
