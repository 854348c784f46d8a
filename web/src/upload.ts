// A folder of images (and `.txt` captions beside them) into a stored dataset, through the artifact
// upload protocol (the `.txt` files too, as DATASET_CAPTION, for a FILES strategy to train on): begin → PUT each missing part to its signed URL → complete. A failed part is
// retried with backoff; a retry begins again, so the server hands back only the parts it lacks.
import { gql, graphql } from './api.js';

const BEGIN = graphql(`
  mutation BeginDatasetUpload($d: ID!, $i: ArtifactUploadInput!) {
    beginDatasetUpload(datasetId: $d, input: $i) { artifact { id stored } alreadyStored partSize parts { number url } }
  }
`);
const COMPLETE = graphql(`mutation CompleteUpload($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { id stored } }`);

const IMAGE = /\.(jpe?g|png|webp)$/i;

export interface FolderImage {
  file: File;
  fileName: string;
  sha256: string;
  width: number | null;
  height: number | null;
  caption: string | null;
  /** The `.txt` beside the image, sent as it is. */
  captionFile: DatasetFile | null;
}

/** A file of a stored dataset, declared by name and sha256. */
export interface DatasetFile {
  kind: 'DATASET_IMAGE' | 'DATASET_CAPTION';
  file: File;
  fileName: string;
  sha256: string;
}

/** Files from a folder picker (webkitRelativePath) or a drop: images, and the caption of each from `<name>.txt`. */
export async function readFolder(files: File[], onProgress: (done: number, total: number) => void): Promise<FolderImage[]> {
  const base = (name: string) => name.replace(/\.[^.]+$/, '');
  const leaf = (f: File) => f.name;
  const captions = new Map(files.filter((f) => /\.txt$/i.test(f.name)).map((f) => [base(leaf(f)), f]));
  const images = files.filter((f) => IMAGE.test(f.name)).sort((a, b) => a.name.localeCompare(b.name));
  const seen = new Set<string>();
  const out: FolderImage[] = [];
  for (const [i, file] of images.entries()) {
    if (seen.has(file.name)) continue; // the same name in two subfolders: the first one
    seen.add(file.name);
    const captionFile = captions.get(base(file.name));
    const [sha256, size, caption, captionSha256] = await Promise.all([hash(file), dimensions(file), captionFile?.text(), captionFile ? hash(captionFile) : null]);
    out.push({
      file,
      fileName: file.name,
      sha256,
      width: size?.width ?? null,
      height: size?.height ?? null,
      caption: caption?.trim() || null,
      // An empty file says no more than none.
      captionFile: captionFile && captionFile.size > 0 ? { kind: 'DATASET_CAPTION', file: captionFile, fileName: `${base(file.name)}.txt`, sha256: captionSha256! } : null,
    });
    onProgress(i + 1, images.length);
  }
  return out;
}

async function hash(file: Blob) {
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function dimensions(file: Blob) {
  try {
    const bitmap = await createImageBitmap(file);
    const size = { width: bitmap.width, height: bitmap.height };
    bitmap.close();
    return size;
  } catch {
    return null;
  }
}

/** Files dropped on the page, folders walked. */
export async function droppedFiles(items: DataTransferItemList): Promise<File[]> {
  const entries = [...items].map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  const files: File[] = [];
  const walk = async (entry: FileSystemEntry): Promise<void> => {
    if (entry.isFile) files.push(await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej)));
    else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await walk(e);
      }
    }
  };
  for (const e of entries) await walk(e);
  return files;
}

/** PUTs one part, reporting bytes sent as they go; resolves to its ETag. */
function putPart(url: string, body: Blob, onBytes: (sent: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    xhr.upload.onprogress = (e) => onBytes(e.loaded);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve(xhr.getResponseHeader('etag') ?? '') : reject(new Error(`PUT answered ${xhr.status}`)));
    xhr.onerror = () => reject(new Error('network error'));
    xhr.send(body);
  });
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends one file: begins, PUTs the missing parts, completes. On a failure it waits (1 s, 2 s,
 * 4 s, …) and begins again, which hands back only the parts the store still lacks.
 */
export async function uploadFile(datasetId: string, image: DatasetFile, onBytes: (sent: number) => void, attempts = 5): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { beginDatasetUpload: up } = await gql(BEGIN, {
        d: datasetId,
        i: { kind: image.kind, fileName: image.fileName, sizeBytes: image.file.size, sha256: image.sha256, contentType: image.kind === 'DATASET_CAPTION' ? 'text/plain' : image.file.type || null },
      });
      if (up.alreadyStored || up.artifact.stored) return onBytes(image.file.size);
      const partSize = up.partSize!;
      const missing = new Set(up.parts.map((p) => p.number));
      const sentBefore = image.file.size - [...missing].reduce((sum, n) => sum + Math.min(partSize, image.file.size - (n - 1) * partSize), 0);
      const sentNow = new Map<number, number>();
      const report = () => onBytes(sentBefore + [...sentNow.values()].reduce((a, b) => a + b, 0));
      const done: { number: number; etag: string }[] = [];
      for (const part of up.parts) {
        const offset = (part.number - 1) * partSize;
        const etag = await putPart(part.url, image.file.slice(offset, offset + partSize), (n) => (sentNow.set(part.number, n), report()));
        done.push({ number: part.number, etag });
      }
      await gql(COMPLETE, { a: up.artifact.id, p: done });
      return;
    } catch (err) {
      if (attempt >= attempts) throw err;
      await wait(1000 * 2 ** (attempt - 1));
    }
  }
}

/** Every image and its caption file, a few images at a time; progress is bytes sent of all bytes. */
export async function uploadAll(datasetId: string, images: FolderImage[], onProgress: (sent: number, total: number, stored: number) => void, concurrency = 3) {
  const total = images.reduce((s, i) => s + i.file.size + (i.captionFile?.file.size ?? 0), 0);
  const sent = new Map<string, number>();
  let stored = 0;
  const report = () => onProgress([...sent.values()].reduce((a, b) => a + b, 0), total, stored);
  const queue = [...images];
  await Promise.all(
    Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
      for (let image = queue.shift(); image; image = queue.shift()) {
        const { fileName, file, sha256, captionFile } = image;
        await uploadFile(datasetId, { kind: 'DATASET_IMAGE', file, fileName, sha256 }, (n) => (sent.set(fileName, n), report()));
        if (captionFile) await uploadFile(datasetId, captionFile, (n) => (sent.set(captionFile.fileName, n), report()));
        stored++;
        report();
      }
    }),
  );
}
