// Builds the folder ai-toolkit trains from: the dataset's images (linked, not copied) plus the
// caption files of the run's caption strategy. File names come from the server, so every one is
// checked to stay inside the staging folder before anything is written.
import { constants } from 'node:fs';
import { access, copyFile, link, mkdir, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export type CaptionMode = 'WRITE' | 'LINK_FILES' | 'NONE';

export type StagingErrorCode = 'UNSAFE_PATH' | 'DATASET_MISSING' | 'DUPLICATE_NAME';

export class StagingError extends Error {
  constructor(
    readonly code: StagingErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StagingError';
  }
}

export interface StageDatasetOptions {
  /** The dataset's folder on this machine. */
  sourceDir: string;
  /** Folder to build; created when missing. ai-toolkit's `folder_path` points here. */
  stagingDir: string;
  images: { fileName: string }[];
  /** Caption text per image file name (WRITE mode). */
  captions: { fileName: string; text: string }[] | null;
  captionMode: CaptionMode;
  /** e.g. "txt" (a leading dot is accepted). */
  captionExt: string;
  /**
   * Where each image's bytes are, by file name, instead of `sourceDir/<name>` (a stored dataset's
   * files in the agent's cache). These are hard-linked, not symlinked: the cache may drop its name
   * for a file while a run still trains on it.
   */
  imageFiles?: Map<string, string>;
  /**
   * A stored dataset's own caption files in the cache, by image file name (LINK_FILES mode): each is
   * hard-linked beside its image as `<stem>.<captionExt>`, where ai-toolkit looks for it.
   */
  captionFiles?: Map<string, string>;
}

export interface StageDatasetResult {
  stagingDir: string;
  images: number;
  captions: number;
  /** Files copied because the file system refused a symlink. */
  copied: number;
}

type StagedFile = { kind: 'image' | 'caption-link'; from: string; hardLink?: boolean } | { kind: 'caption-text'; text: string };

function sameFile(a: StagedFile, b: StagedFile): boolean {
  if (a.kind === 'caption-text' || b.kind === 'caption-text') {
    return a.kind === 'caption-text' && b.kind === 'caption-text' && a.text === b.text;
  }
  return a.kind === b.kind && a.from === b.from;
}

export async function stageDataset(opts: StageDatasetOptions): Promise<StageDatasetResult> {
  const sourceDir = path.resolve(opts.sourceDir);
  const stagingDir = path.resolve(opts.stagingDir);
  const captionExt = opts.captionExt.replace(/^\./, '');
  if (!/^[A-Za-z0-9]+$/.test(captionExt)) {
    throw new StagingError('UNSAFE_PATH', `caption extension ${JSON.stringify(opts.captionExt)} is not a plain extension`);
  }

  // 1. Every name is checked before the first write, so a bad name leaves nothing half-staged.
  const plan = new Map<string, StagedFile>();
  const add = (target: string, file: StagedFile) => {
    const earlier = plan.get(target);
    if (earlier !== undefined && !sameFile(earlier, file)) {
      // a.jpg and a.png share the caption file a.txt; ai-toolkit would give both the same caption.
      throw new StagingError(
        'DUPLICATE_NAME',
        `two dataset files would both be staged as ${JSON.stringify(path.relative(stagingDir, target))}`,
      );
    }
    plan.set(target, file);
  };

  const captionByImage = new Map<string, string>();
  if (opts.captionMode === 'WRITE') {
    for (const c of opts.captions ?? []) {
      assertSafeName(c.fileName, 'caption');
      captionByImage.set(c.fileName, c.text);
    }
  }

  const imageSources: string[] = [];
  const sidecars: { from: string; to: string }[] = [];
  for (const { fileName } of opts.images) {
    assertSafeName(fileName, 'image');
    const cached = opts.imageFiles?.get(fileName);
    const from = cached ?? inside(sourceDir, fileName, 'image');
    add(inside(stagingDir, fileName, 'image'), { kind: 'image', from, hardLink: cached !== undefined });
    imageSources.push(from);

    const captionName = `${stem(fileName)}.${captionExt}`;
    const captionTarget = inside(stagingDir, captionName, 'caption');
    if (opts.captionMode === 'WRITE') {
      const text = captionByImage.get(fileName);
      if (text !== undefined) add(captionTarget, { kind: 'caption-text', text });
    } else if (opts.captionMode === 'LINK_FILES' && !opts.imageFiles) {
      sidecars.push({ from: inside(sourceDir, captionName, 'caption'), to: captionTarget });
    } else if (opts.captionMode === 'LINK_FILES') {
      const cachedCaption = opts.captionFiles?.get(fileName);
      if (cachedCaption !== undefined) add(captionTarget, { kind: 'caption-link', from: cachedCaption, hardLink: true });
    }
  }

  // 2. The dataset must be all there: training on part of it would give a silently different LoRA.
  if (!opts.imageFiles && !(await isDirectory(sourceDir))) {
    throw new StagingError('DATASET_MISSING', `dataset folder ${sourceDir} does not exist on this machine`);
  }
  const missing: string[] = [];
  for (const from of imageSources) if (!(await exists(from))) missing.push(path.relative(sourceDir, from));
  if (missing.length > 0) {
    const shown = missing.slice(0, 10).join(', ') + (missing.length > 10 ? `, … (${missing.length} in all)` : '');
    throw new StagingError('DATASET_MISSING', `dataset folder ${sourceDir} lacks ${missing.length} image(s): ${shown}`);
  }
  // A dataset's own caption file is optional per image (FILES): ai-toolkit then trains on the trigger alone.
  for (const s of sidecars) if (await exists(s.from)) add(s.to, { kind: 'caption-link', from: s.from });

  // 3. Write. A retried attempt stages into the same folder: files of the previous attempt that are
  // not in this plan are removed (a stale caption would change the training), folders are kept
  // (ai-toolkit's _latent_cache lives there and is still valid for the same images).
  await mkdir(stagingDir, { recursive: true });
  await removeStaleFiles(stagingDir, plan);

  let copied = 0;
  let images = 0;
  let captions = 0;
  for (const [target, file] of plan) {
    await mkdir(path.dirname(target), { recursive: true });
    await rm(target, { force: true });
    if (file.kind === 'caption-text') {
      await writeFile(target, file.text, 'utf8');
    } else {
      try {
        if (file.hardLink) await link(file.from, target);
        else await symlink(file.from, target);
      } catch {
        // Windows without developer mode, or a file system without symlinks.
        await copyFile(file.from, target);
        copied++;
      }
    }
    if (file.kind === 'image') images++;
    else captions++;
  }
  return { stagingDir, images, captions, copied };
}

/**
 * Refuses a name that is absolute, climbs with `..`, holds a NUL byte or is empty. Backslashes count
 * as separators too: a name made on Windows must not escape on a Linux agent either.
 */
function assertSafeName(fileName: string, what: string): void {
  const shown = JSON.stringify(fileName);
  if (typeof fileName !== 'string' || fileName.length === 0) {
    throw new StagingError('UNSAFE_PATH', `${what} file name is empty`);
  }
  if (fileName.includes('\0')) throw new StagingError('UNSAFE_PATH', `${what} file name ${shown} contains a NUL byte`);
  if (path.isAbsolute(fileName) || path.win32.isAbsolute(fileName) || /^[A-Za-z]:/.test(fileName)) {
    throw new StagingError('UNSAFE_PATH', `${what} file name ${shown} is an absolute path`);
  }
  if (fileName.split(/[\\/]/).includes('..')) {
    throw new StagingError('UNSAFE_PATH', `${what} file name ${shown} contains a '..' path segment`);
  }
}

/** `dir/name`, or an UNSAFE_PATH error when that resolves outside dir. */
function inside(dir: string, fileName: string, what: string): string {
  const resolved = path.resolve(dir, fileName);
  const rel = path.relative(dir, resolved);
  if (rel.length === 0 || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new StagingError('UNSAFE_PATH', `${what} file name ${JSON.stringify(fileName)} resolves outside ${dir}`);
  }
  return resolved;
}

function stem(fileName: string): string {
  const ext = path.extname(fileName);
  return ext.length > 0 ? fileName.slice(0, -ext.length) : fileName;
}

async function removeStaleFiles(stagingDir: string, plan: Map<string, unknown>): Promise<void> {
  for (const entry of await readdir(stagingDir, { withFileTypes: true })) {
    if (entry.isDirectory()) continue;
    const full = path.join(stagingDir, entry.name);
    if (!plan.has(full)) await rm(full, { force: true });
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

async function isDirectory(dir: string): Promise<boolean> {
  try {
    return (await stat(dir)).isDirectory();
  } catch {
    return false;
  }
}
