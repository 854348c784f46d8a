// Reading an ai-toolkit output folder (`<training_folder>/<name>/`) before anything is sent: the
// config, checkpoints (step from the file name, checked against the file's own metadata), the
// optimizer state, samples, and the loss (loss_log.db, else a saved console log read by the
// agent's own parser). Everything that can be wrong with the folder is found here, so an import
// that starts writing has all it needs and a bad folder writes nothing.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { checkpointStepFromFileName, CONFIG_FILE, OPTIMIZER_FILE, parseSampleFileName, SAMPLES_DIR } from '../agents/files.js';
import { TrainerOutputParser } from '../agents/parse.js';
import { readSafetensorsMetadata, stepFromMetadata } from '../agents/safetensors.js';
import { LOSS_LOG_FILE, lossInMemory, openLossLog, type LoggedLoss, type LossLog } from './loss-log.js';

/** The config the ai-toolkit UI starts a job with, beside the job's files. */
export const UI_JOB_CONFIG = '.job_config.json';
/** Console output saved beside the job: the UI's log.txt first, then what people name theirs. */
const LOG_NAMES = [/^log\.txt$/, /\.log$/, /^(stdout|console|output|train)[\w.-]*\.txt$/];
const IMAGE = /\.(jpe?g|png|webp|bmp)$/i;

export interface FolderFile {
  path: string;
  fileName: string;
  sizeBytes: number;
  mtimeMs: number;
}

export interface JobCheckpoint extends FolderFile {
  step: number;
  isFinal: boolean;
}

export interface JobSample extends FolderFile {
  step: number;
  promptIndex: number;
  at: number;
}

export interface JobFolder {
  folder: string;
  name: string;
  configFile: string;
  configText: string;
  steps: number;
  checkpoints: JobCheckpoint[];
  optimizer: FolderFile | null;
  samples: JobSample[];
  /** Open while the job is imported: close it (its loss_log.db is held in memory until then). */
  loss: { source: string; points: LossLog } | null;
  logFile: FolderFile | null;
  datasetFolder: string | null;
  captionExt: string;
  warnings: { key: string; message: string }[];
}

export class FolderError extends Error {}

/** Whether `dir` is a job's output folder (it has the config ai-toolkit or its UI saved there). */
export const isJobFolder = (dir: string) => existsSync(path.join(dir, CONFIG_FILE)) || existsSync(path.join(dir, UI_JOB_CONFIG));

/** The job folders a path names: itself, or the job folders directly inside it. */
export async function jobFoldersIn(dir: string): Promise<string[]> {
  const absolute = path.resolve(dir);
  if (!existsSync(absolute)) throw new FolderError(`${absolute} does not exist`);
  if (isJobFolder(absolute)) return [absolute];
  const inside = (await readdir(absolute, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && isJobFolder(path.join(absolute, e.name)))
    .map((e) => path.join(absolute, e.name))
    .sort();
  if (inside.length === 0) throw new FolderError(`${absolute} is not an ai-toolkit output folder (no ${CONFIG_FILE} or ${UI_JOB_CONFIG}) and holds none`);
  return inside;
}

async function fileAt(file: string): Promise<FolderFile> {
  const s = await stat(file);
  return { path: file, fileName: path.basename(file), sizeBytes: s.size, mtimeMs: s.mtimeMs };
}

type Tree = Record<string, unknown>;
const tree = (v: unknown): Tree => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Tree) : {});

export async function readJobFolder(folder: string): Promise<JobFolder> {
  const configFile = existsSync(path.join(folder, CONFIG_FILE)) ? path.join(folder, CONFIG_FILE) : path.join(folder, UI_JOB_CONFIG);
  const configText = await readFile(configFile, 'utf8');
  let doc: unknown;
  try {
    doc = parse(configText, { version: '1.1' });
  } catch (err) {
    throw new FolderError(`${configFile}: not YAML (${(err as Error).message.split('\n')[0]})`);
  }
  const config = tree(tree(doc)['config']);
  const name = config['name'];
  const proc = tree(Array.isArray(config['process']) ? config['process'][0] : undefined);
  if (typeof name !== 'string' || !name) throw new FolderError(`${configFile}: no config.name, so it is not an ai-toolkit job config`);
  const steps = Number(tree(proc['train'])['steps'] ?? 1000);
  const dataset = tree(Array.isArray(proc['datasets']) ? proc['datasets'][0] : undefined);
  const warnings: JobFolder['warnings'] = [];

  const entries = await readdir(folder);
  const checkpoints: JobCheckpoint[] = [];
  for (const fileName of entries) {
    const fromName = checkpointStepFromFileName(name, fileName);
    if (fromName === null) continue;
    const file = await fileAt(path.join(folder, fileName));
    const meta = await readSafetensorsMetadata(file.path);
    if (meta === null) throw new FolderError(`${file.path}: not a safetensors file`);
    const fromMeta = stepFromMetadata(meta);
    const step = fromName === 'final' ? steps : fromName;
    if (fromMeta !== null && fromMeta !== step) {
      warnings.push({ key: fileName, message: `its metadata says step ${fromMeta}, its name step ${fromName === 'final' ? `${steps} (final)` : step}; the name is taken` });
    }
    checkpoints.push({ ...file, step, isFinal: fromName === 'final' });
  }
  checkpoints.sort((a, b) => a.step - b.step || Number(a.isFinal) - Number(b.isFinal));
  // A final file and a step file at the same step: the final one stands for that step.
  const byStep = new Map(checkpoints.map((c) => [c.step, c]));
  for (const c of checkpoints) if (c.isFinal) byStep.set(c.step, c);

  const samples: JobSample[] = [];
  const samplesDir = path.join(folder, SAMPLES_DIR);
  if (existsSync(samplesDir)) {
    for (const fileName of await readdir(samplesDir)) {
      const parsed = parseSampleFileName(fileName);
      if (!parsed) continue;
      samples.push({ ...(await fileAt(path.join(samplesDir, fileName))), step: parsed.step, promptIndex: parsed.promptIndex, at: parsed.epochMs });
    }
  }
  // Two files for one (step, prompt) (a resumed job sampled that step again): the newer stands.
  const sampleByKey = new Map<string, JobSample>();
  for (const s of samples.sort((a, b) => a.at - b.at)) sampleByKey.set(`${s.step}:${s.promptIndex}`, s);

  const logName = entries.filter((f) => LOG_NAMES.some((re) => re.test(f))).sort((a, b) => LOG_NAMES.findIndex((re) => re.test(a)) - LOG_NAMES.findIndex((re) => re.test(b)))[0];
  const logFile = logName ? await fileAt(path.join(folder, logName)) : null;

  const optimizer = entries.includes(OPTIMIZER_FILE) ? await fileAt(path.join(folder, OPTIMIZER_FILE)) : null;
  // Last: nothing after it can fail and leave the loss log open.
  let loss: JobFolder['loss'] = null;
  if (entries.includes(LOSS_LOG_FILE)) {
    loss = { source: LOSS_LOG_FILE, points: await openLossLog(path.join(folder, LOSS_LOG_FILE)) };
  } else if (logFile) {
    loss = { source: logFile.fileName, points: lossInMemory(lossFromLog(await readFile(logFile.path), name, [...sampleByKey.values()], [...byStep.values()])) };
  }

  return {
    folder,
    name,
    configFile,
    configText,
    steps,
    checkpoints: [...byStep.values()].sort((a, b) => a.step - b.step),
    optimizer,
    samples: [...sampleByKey.values()].sort((a, b) => a.step - b.step || a.promptIndex - b.promptIndex),
    loss,
    logFile,
    datasetFolder: typeof dataset['folder_path'] === 'string' ? dataset['folder_path'] : null,
    captionExt: typeof dataset['caption_ext'] === 'string' ? dataset['caption_ext'] : 'txt',
    warnings,
  };
}

/**
 * Loss points from saved console output, through the agent's own parser. A console log carries no
 * times: each point gets one interpolated between the files the job wrote at known steps (samples
 * name their time; checkpoints have theirs), or none when there are no two to go by.
 */
function lossFromLog(text: Buffer, name: string, samples: JobSample[], checkpoints: JobCheckpoint[]): LoggedLoss[] {
  const parser = new TrainerOutputParser(name);
  const events = [...parser.push(text), ...parser.end()];
  const anchors = [...samples.map((s) => [s.step, s.at] as const), ...checkpoints.map((c) => [c.step, c.mtimeMs] as const)].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const timeAt = (step: number) => {
    if (anchors.length < 2) return anchors[0]?.[1] ?? NaN;
    let i = anchors.findIndex((a) => a[0] >= step);
    if (i <= 0) i = i === 0 ? 1 : anchors.length - 1;
    const [s0, t0] = anchors[i - 1]!;
    const [s1, t1] = anchors[i]!;
    return s1 === s0 ? t1 : Math.round(t0 + ((t1 - t0) * (step - s0)) / (s1 - s0));
  };
  const points = new Map<number, LoggedLoss>();
  for (const e of events) if (e.type === 'loss') points.set(e.step, { step: e.step, loss: e.loss, lr: e.lr, at: timeAt(e.step) });
  return [...points.values()].sort((a, b) => a.step - b.step);
}

/**
 * The job's identity, the same wherever the folder moved and however it grew since: its name and
 * the time of its first record (the earliest sample's or logged step's; neither ever changes once
 * written, and nothing written later is older), else its first checkpoint's bytes, else its config.
 */
export function jobKey(job: JobFolder, firstCheckpointSha: string | null): string {
  const times = [job.samples[0] ? Math.min(...job.samples.map((s) => s.at)) : null, job.loss?.source === LOSS_LOG_FILE && job.loss.points.first ? job.loss.points.first.at : null].filter((t): t is number => t !== null);
  const mark = times.length ? `t:${Math.min(...times)}` : firstCheckpointSha ? `c:${firstCheckpointSha}` : `y:${createHash('sha256').update(job.configText).digest('hex')}`;
  return createHash('sha256').update(`ai-toolkit-job\0${job.name}\0${mark}`).digest('hex');
}

/** When the job ran, as its files tell: the first and last record of any kind. */
export function jobTimes(job: JobFolder) {
  const times = [...job.samples.map((s) => s.at), ...(job.loss?.points.first && job.loss.points.last ? [job.loss.points.first.at, job.loss.points.last.at] : []), ...job.checkpoints.map((c) => c.mtimeMs)].filter(Number.isFinite);
  if (times.length === 0) return { startedAt: null, finishedAt: null };
  return { startedAt: new Date(Math.min(...times)).toISOString(), finishedAt: new Date(Math.max(...times)).toISOString() };
}

/** The dataset folder's images (sorted by name) and whether captions lie beside them; null when the folder is not here. */
export async function readDatasetFolder(dir: string | null, captionExt: string) {
  if (!dir || !existsSync(dir)) return null;
  const entries = await readdir(dir);
  const images = entries.filter((f) => IMAGE.test(f)).sort();
  const names = new Set(entries);
  const hasCaptions = images.some((f) => names.has(`${f.replace(/\.[^.]+$/, '')}.${captionExt}`));
  return { images: images.map((f) => path.join(dir, f)), hasCaptions };
}
