// The CLI's other commands: dataset push, pull, keys create, runs, best (see docs/cli.md).
import { createHash } from 'node:crypto';
import { existsSync, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Api, CliError, EXIT } from './api.js';
import { formatBytes, Progress, type Writer } from './progress.js';
import { hashFile, UPLOAD_FIELDS, uploadFile, type BeganUpload, type Declaration } from './upload.js';

const IMAGE = /\.(jpe?g|png|webp)$/i;

// --- dataset push -----------------------------------------------------------------------------

export interface PushOptions {
  name: string;
  trigger?: string;
  template?: string;
  progress?: Writer;
}

/**
 * A folder of images (and `.txt` captions beside them) → a dataset stored in loralab and a STORED
 * caption strategy named after it; the `.txt` files themselves are stored too (DATASET_CAPTION), so
 * a FILES strategy trains on them as they are. Resumable: a dataset of the same name and images is picked up
 * again, and only the images the store does not have yet are sent.
 */
export async function datasetPush(api: Api, folder: string, options: PushOptions, print: (line: string) => void) {
  const dir = path.resolve(folder);
  if (!existsSync(dir)) throw new CliError(`${dir} does not exist`, EXIT.USAGE);
  const names = (await readdir(dir)).filter((f) => IMAGE.test(f)).sort();
  if (names.length === 0) throw new CliError(`${dir} holds no images (.jpg, .jpeg, .png, .webp)`, EXIT.FAILED);
  const sizes = await Promise.all(names.map(async (f) => (await stat(path.join(dir, f))).size));
  const total = sizes.reduce((a, b) => a + b, 0);
  const progress = new Progress(options.name, names.length, { read: total, sent: total }, options.progress);
  progress.setPhase('reading');
  // Loaded here, not at the top: sharp's native module costs every other command ~0.1 s of start.
  const { default: sharp } = await import('sharp');
  const images = [];
  for (const fileName of names) {
    const file = path.join(dir, fileName);
    const { sha256, sizeBytes } = await hashFile(file, (n) => progress.addRead(n));
    const meta = await sharp(file).metadata().catch(() => null);
    const captionFile = path.join(dir, `${fileName.replace(/\.[^.]+$/, '')}.txt`);
    const hasCaption = existsSync(captionFile);
    const caption = hasCaption ? (await readFile(captionFile, 'utf8')).trim() : null;
    const captionUpload = hasCaption ? { file: captionFile, fileName: path.basename(captionFile), ...(await hashFile(captionFile)) } : null;
    images.push({ fileName, sha256, sizeBytes, width: meta?.width ?? null, height: meta?.height ?? null, caption, captionUpload });
    progress.fileDone();
  }
  const contentHash = createHash('sha256');
  for (const i of images) contentHash.update(`${i.fileName}\0${i.sha256}\n`);
  const hash = contentHash.digest('hex');

  progress.setPhase('recording');
  const existing = await api.all<{ id: string; name: string; uri: string; contentHash: string | null }>(
    `query Datasets($after: String) { datasets(first: 500, after: $after) { edges { node { id name uri contentHash } } pageInfo { hasNextPage endCursor } } }`,
    {},
    (d: { datasets: never }) => d.datasets,
  );
  let dataset = existing.find((d) => d.name === options.name && d.contentHash === hash && d.uri.startsWith('loralab://'));
  dataset ??= (
    await api.call<{ createDataset: { id: string; name: string; uri: string; contentHash: string } }>(
      `mutation CreateDataset($input: CreateDatasetInput!) { createDataset(input: $input) { id name uri contentHash } }`,
      { input: { name: options.name, images: images.map(({ fileName, sha256, width, height, caption }) => ({ fileName, sha256, width, height, caption })) } },
    )
  ).createDataset;
  print(dataset.id);

  const strategies = await api.call<{ captionStrategies: { id: string; name: string; kind: string; triggerWord: string | null; template: string | null }[] }>(
    `{ captionStrategies { id name kind triggerWord template } }`,
  );
  let strategy = strategies.captionStrategies.find((s) => s.name === options.name && s.kind === 'STORED' && s.triggerWord === (options.trigger ?? null) && s.template === (options.template ?? null));
  strategy ??= (
    await api.call<{ createCaptionStrategy: { id: string; name: string; kind: string; triggerWord: string | null; template: string | null } }>(
      `mutation CreateStrategy($input: CreateCaptionStrategyInput!) { createCaptionStrategy(input: $input) { id name kind triggerWord template } }`,
      { input: { name: options.name, kind: 'STORED', style: 'CUSTOM', triggerWord: options.trigger ?? null, template: options.template ?? null, description: `Captions from ${dir}` } },
    )
  ).createCaptionStrategy;
  const captions = images.filter((i) => i.caption !== null).map((i) => ({ fileName: i.fileName, text: i.caption! }));
  for (let i = 0; i < captions.length; i += 1000) {
    await api.call(`mutation SetCaptions($d: ID!, $s: ID!, $c: [CaptionInput!]!) { setCaptions(datasetId: $d, strategyId: $s, captions: $c) }`, { d: dataset.id, s: strategy.id, c: captions.slice(i, i + 1000) });
  }

  progress.setPhase('uploading');
  const begin = async (input: Declaration) =>
    (await api.call<{ beginDatasetUpload: BeganUpload }>(`mutation Begin($id: ID!, $input: ArtifactUploadInput!) { beginDatasetUpload(datasetId: $id, input: $input) { ${UPLOAD_FIELDS} } }`, { id: dataset!.id, input })).beginDatasetUpload;
  let sent = 0;
  const queue = [...images];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let image = queue.shift(); image; image = queue.shift()) {
        // Not `sent += await …`: that reads `sent` before the wait, and the other workers' bytes are lost.
        const imageBytes = await uploadFile(api, path.join(dir, image.fileName), { kind: 'DATASET_IMAGE', fileName: image.fileName, sizeBytes: image.sizeBytes, sha256: image.sha256 }, begin, (n) => progress.addSent(n));
        sent += imageBytes;
        const c = image.captionUpload;
        // A few bytes each: not counted in the progress, which measures the images. An empty file says no more than none.
        if (c && c.sizeBytes > 0) {
          const captionBytes = await uploadFile(api, c.file, { kind: 'DATASET_CAPTION', fileName: c.fileName, sizeBytes: c.sizeBytes, sha256: c.sha256 }, begin);
          sent += captionBytes;
        }
      }
    }),
  );
  progress.done(`dataset ${dataset.id}`);
  print(`${images.length} images (${captions.length} with captions), ${formatBytes(sent)} uploaded; caption strategy "${strategy.name}" ${strategy.id}`);
  return { datasetId: dataset.id, strategyId: strategy.id };
}

// --- pull --------------------------------------------------------------------------------------

interface PulledCheckpoint {
  id: string;
  step: number;
  isFinal: boolean;
  sha256: string | null;
  sizeBytes: number | null;
  downloadUrl: string | null;
}

const CHECKPOINT_FIELDS = 'id step isFinal sha256 sizeBytes downloadUrl';

/** The run's best (else final, else newest) checkpoint, or the one at `step`, downloaded and verified. */
export async function pull(api: Api, runId: string, options: { step?: number; out?: string }) {
  const { run } = await api.call<{ run: { id: string; name: string; bestCheckpoint: PulledCheckpoint | null; checkpoints: PulledCheckpoint[] } | null }>(
    `query Pull($id: ID!) { run(id: $id) { id name bestCheckpoint { ${CHECKPOINT_FIELDS} } checkpoints { ${CHECKPOINT_FIELDS} } } }`,
    { id: runId },
  );
  if (!run) throw new CliError(`run ${runId} does not exist`, EXIT.NOT_FOUND);
  const checkpoint =
    options.step !== undefined
      ? run.checkpoints.find((c) => c.step === options.step)
      : (run.bestCheckpoint ?? run.checkpoints.find((c) => c.isFinal) ?? run.checkpoints.filter((c) => c.downloadUrl).at(-1));
  if (!checkpoint) {
    throw new CliError(options.step !== undefined ? `run ${runId} has no checkpoint at step ${options.step} (it has ${run.checkpoints.map((c) => c.step).join(', ') || 'none'})` : `run ${runId} has no checkpoint`, EXIT.NOT_FOUND);
  }
  if (!checkpoint.downloadUrl) throw new CliError(`the checkpoint at step ${checkpoint.step} of run ${runId} is not stored in loralab (imported with --no-upload, or pruned)`, EXIT.FAILED);
  const outDir = path.resolve(options.out ?? '.');
  await mkdir(outDir, { recursive: true });
  let res: Response;
  try {
    res = await fetch(checkpoint.downloadUrl);
  } catch (err) {
    throw new CliError(`cannot download: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}`, EXIT.UNREACHABLE);
  }
  if (!res.ok || !res.body) throw new CliError(`the download answered HTTP ${res.status}`, EXIT.FAILED);
  const fileName = safeName(dispositionName(res.headers.get('content-disposition')) ?? `${run.name}${checkpoint.isFinal ? '' : `-step${checkpoint.step}`}.safetensors`);
  const target = path.join(outDir, fileName);
  const tmp = `${target}.${process.pid}.part`;
  const hash = createHash('sha256');
  let size = 0;
  try {
    await pipeline(
      Readable.fromWeb(res.body as never),
      async function* (source) {
        for await (const chunk of source) {
          hash.update(chunk as Buffer);
          size += (chunk as Buffer).length;
          yield chunk;
        }
      },
      createWriteStream(tmp),
    );
    const sha256 = hash.digest('hex');
    if (checkpoint.sha256 && sha256 !== checkpoint.sha256) throw new CliError(`the downloaded file's sha256 is ${sha256}, not ${checkpoint.sha256} as recorded: not kept`, EXIT.FAILED);
    if (checkpoint.sizeBytes != null && size !== checkpoint.sizeBytes) throw new CliError(`the downloaded file has ${size} bytes, not ${checkpoint.sizeBytes} as recorded: not kept`, EXIT.FAILED);
    await rename(tmp, target);
  } finally {
    await rm(tmp, { force: true });
  }
  return { path: target, step: checkpoint.step, sizeBytes: size };
}

function dispositionName(header: string | null): string | null {
  if (!header) return null;
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
  if (star) return decodeURIComponent(star[1]!.trim());
  const plain = /filename\s*=\s*"([^"]+)"|filename\s*=\s*([^;]+)/i.exec(header);
  return plain ? (plain[1] ?? plain[2]!).trim() : null;
}

const safeName = (name: string) => path.basename(name).replace(/[^\w.\-+ ]/g, '_') || 'checkpoint.safetensors';

// --- keys, runs, best ---------------------------------------------------------------------------

export async function createKey(api: Api, role: string, name: string) {
  const { createApiKey } = await api.call<{ createApiKey: { id: string; name: string; role: string; key: string } }>(
    `mutation CreateKey($role: ApiRole!, $name: String!) { createApiKey(role: $role, name: $name) { id name role key } }`,
    { role: role.toUpperCase(), name },
  );
  return createApiKey;
}

interface RunRow {
  id: string;
  name: string;
  status: string;
  importedFrom: string | null;
  hyperparameters: { rank: number; learningRate: number; steps: number };
  lossSummary: { lastLoss: number | null; minLoss: number | null; emaLoss: number | null };
  experiment: { name: string };
}

const RUN_FIELDS = 'id name status importedFrom hyperparameters { rank learningRate steps } lossSummary { lastLoss minLoss emaLoss } experiment { name }';

export async function listRuns(api: Api, options: { experiment?: string; status?: string[]; first: number }) {
  let experimentId: string | undefined;
  if (options.experiment) {
    const found = await api.all<{ id: string; name: string }>(
      `query Experiments($search: String, $after: String) { experiments(first: 500, after: $after, search: $search) { edges { node { id name } } pageInfo { hasNextPage endCursor } } }`,
      { search: options.experiment },
      (d: { experiments: never }) => d.experiments,
    );
    const match = found.find((e) => e.id === options.experiment) ?? found.find((e) => e.name === options.experiment);
    if (!match) throw new CliError(`no experiment is named "${options.experiment}"`, EXIT.NOT_FOUND);
    experimentId = match.id;
  }
  const { runs } = await api.call<{ runs: { totalCount: number; edges: { node: RunRow }[] } }>(
    `query Runs($filter: RunFilter, $first: Int) { runs(filter: $filter, first: $first, orderBy: { field: QUEUED_AT, direction: DESC }) { totalCount edges { node { ${RUN_FIELDS} } } } }`,
    { filter: { experimentId, status: options.status?.map((s) => s.toUpperCase()) }, first: options.first },
  );
  return { total: runs.totalCount, runs: runs.edges.map((e) => e.node) };
}

const num = (v: number | null | undefined, digits = 4) => (v == null ? '—' : v.toPrecision(digits));

/** Rows as a plain-text table, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '─'.repeat(w))), ...rows.map(line)];
}

export function runsTable(runs: RunRow[]): string[] {
  return table(
    ['ID', 'NAME', 'STATUS', 'RANK', 'LR', 'STEPS', 'LAST LOSS', 'MIN LOSS', 'EXPERIMENT'],
    runs.map((r) => [
      r.id,
      r.name.length > 40 ? `${r.name.slice(0, 39)}…` : r.name,
      r.importedFrom ? `${r.status}*` : r.status,
      String(r.hyperparameters.rank),
      r.hyperparameters.learningRate.toExponential(1),
      String(r.hyperparameters.steps),
      num(r.lossSummary.lastLoss),
      num(r.lossSummary.minLoss),
      r.experiment.name,
    ]),
  );
}

export async function best(api: Api, sweepId: string) {
  const { sweep } = await api.call<{
    sweep: { id: string; runs: { id: string }[]; bestRun: (RunRow & { bestCheckpoint: PulledCheckpoint | null; checkpoints: PulledCheckpoint[] }) | null } | null;
  }>(`query Best($id: ID!) { sweep(id: $id) { id runs { id } bestRun { ${RUN_FIELDS} bestCheckpoint { ${CHECKPOINT_FIELDS} } checkpoints { ${CHECKPOINT_FIELDS} } } } }`, { id: sweepId });
  if (!sweep) throw new CliError(`sweep ${sweepId} does not exist`, EXIT.NOT_FOUND);
  return sweep;
}
