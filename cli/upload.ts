// Sending a file to the artifact store: begin (declare kind, name, size, sha256; the server answers
// "already stored" or the parts still missing, each with a signed PUT URL), PUT the parts, complete.
// Calling begin again after a crash gets only the parts the store has not received, so an upload
// goes on where it stopped. Used for imported runs and stored datasets alike: `begin` is the
// mutation that declares the file (beginImportUpload, beginDatasetUpload, …).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { Api, CliError, EXIT } from './api.js';

export interface Declaration {
  kind: string;
  fileName: string;
  sizeBytes: number;
  sha256: string;
  step?: number | null;
  promptIndex?: number | null;
}

export interface BeganUpload {
  artifact: { id: string; stored: boolean };
  alreadyStored: boolean;
  partSize: number | null;
  parts: { number: number; url: string }[];
}

/** The fields begin…Upload must select for uploadFile. */
export const UPLOAD_FIELDS = 'artifact { id stored } alreadyStored partSize parts { number url }';

/** sha256 and size of a file, read once as a stream; `onBytes` sees each chunk's length. */
export async function hashFile(file: string, onBytes?: (n: number) => void): Promise<{ sha256: string; sizeBytes: number }> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    sizeBytes += (chunk as Buffer).length;
    onBytes?.((chunk as Buffer).length);
  }
  return { sha256: hash.digest('hex'), sizeBytes };
}

/**
 * Files up to this size are read once, into memory: hashed there and their parts sent from there,
 * instead of read again from disk for the upload. Larger ones (checkpoints of a big model) are
 * streamed through the hash and read part by part when sent, so memory stays bounded.
 */
export const IN_MEMORY_MAX = 32 * 1024 * 1024;

/** Bytes hashed between two turns of the event loop (a few milliseconds). */
const HASH_SLICE = 2 * 1024 * 1024;

/** hashFile, keeping the bytes of a file of at most IN_MEMORY_MAX for the upload that follows. */
export async function readAndHash(file: string, sizeBytes: number, onBytes?: (n: number) => void): Promise<{ sha256: string; sizeBytes: number; bytes: Buffer | null }> {
  if (sizeBytes > IN_MEMORY_MAX) return { ...(await hashFile(file, onBytes)), bytes: null };
  const bytes = await readFile(file);
  onBytes?.(bytes.length);
  // A slice at a time, letting the event loop run between them: the answers of the calls under
  // way are read while a large file is hashed, not after it.
  const hash = createHash('sha256');
  for (let at = 0; at < bytes.length; at += HASH_SLICE) {
    if (at > 0) await new Promise((resolve) => setImmediate(resolve));
    hash.update(bytes.subarray(at, at + HASH_SLICE));
  }
  return { sha256: hash.digest('hex'), sizeBytes: bytes.length, bytes };
}

const PARALLEL_PARTS = 4;

/**
 * Sends the items given to `add` in calls of at most `max` items, one call at a time: an item goes
 * at once when no call is under way, and those that arrive meanwhile go together in the next. Each
 * item's promise settles with its own share of the answer (or the call's error). No timer: a lone
 * item waits for nothing, and a busy server gets fewer, larger calls. (Two or six calls at once
 * instead of one formed hardly any batches and cost the server more CPU in bench/import.ts.)
 */
export class Batcher<I, O> {
  private queue: { item: I; resolve: (o: O) => void; reject: (err: unknown) => void }[] = [];
  private busy = false;

  constructor(
    private readonly send: (items: I[]) => Promise<O[]>,
    private readonly max: number,
  ) {}

  add(item: I): Promise<O> {
    return this.addMany([item])[0]!;
  }

  /** Several items known at once: they go together (in calls of at most `max`), not the first one alone. */
  addMany(items: I[]): Promise<O>[] {
    const promises = items.map((item) => new Promise<O>((resolve, reject) => this.queue.push({ item, resolve, reject })));
    this.next();
    return promises;
  }

  private next() {
    if (this.busy || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.max);
    this.busy = true;
    this.send(batch.map((b) => b.item))
      .then(
        (answers) => batch.forEach((b, i) => b.resolve(answers[i]!)),
        (err: unknown) => batch.forEach((b) => b.reject(err)),
      )
      .finally(() => {
        this.busy = false;
        this.next();
      });
  }
}

/**
 * Uploads `file` as declared; returns the bytes sent (0 when the store had them already). A part
 * the store refuses, or a completion that does not verify, is an error naming the file.
 */
export async function uploadFile(
  api: Api,
  file: string,
  declaration: Declaration,
  begin: (input: Declaration) => Promise<BeganUpload>,
  onBytes?: (n: number) => void,
  /** The file's bytes when readAndHash kept them: parts are cut from them, not read again. */
  bytes: Buffer | null = null,
  /** Records the upload once its parts are sent: completeUpload, or a share of a completeUploads call. */
  complete: (artifactId: string, parts: { number: number; etag: string }[]) => Promise<unknown> = (id, parts) =>
    api.call(`mutation CompleteUpload($id: ID!, $parts: [CompletedPartInput!]!) { completeUpload(artifactId: $id, parts: $parts) { id stored } }`, { id, parts }),
): Promise<number> {
  const began = await begin(declaration);
  if (began.alreadyStored || began.artifact.stored) {
    onBytes?.(declaration.sizeBytes);
    return 0;
  }
  const partSize = began.partSize!;
  const etags: { number: number; etag: string }[] = [];
  const handle = bytes ? null : await open(file, 'r');
  let sent = 0;
  try {
    const queue = [...began.parts];
    // Parts the store already has count as done for the progress bar.
    onBytes?.(declaration.sizeBytes - began.parts.reduce((n, p) => n + partLength(p.number, partSize, declaration.sizeBytes), 0));
    const worker = async () => {
      for (let part = queue.shift(); part; part = queue.shift()) {
        const length = partLength(part.number, partSize, declaration.sizeBytes);
        const offset = (part.number - 1) * partSize;
        let body: Buffer;
        if (bytes) body = bytes.subarray(offset, offset + length);
        else {
          body = Buffer.alloc(length);
          const { bytesRead } = await handle!.read(body, 0, length, offset);
          if (bytesRead !== length) throw new CliError(`${file} changed while it was being uploaded (it is shorter than declared)`, EXIT.FAILED);
        }
        const etag = await putPart(file, part, body);
        etags.push({ number: part.number, etag });
        sent += length;
        onBytes?.(length);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, began.parts.length) }, worker));
  } finally {
    await handle?.close();
  }
  await complete(
    began.artifact.id,
    etags.filter((e) => e.etag).sort((a, b) => a.number - b.number),
  );
  return sent;
}

const PART_TRIES = 4;

/**
 * PUTs one part; returns its ETag. A connection that broke (reset, closed early) or a 5xx is tried
 * again, a few times with a pause: the store keeps what it received, and a part sent twice is the
 * same bytes.
 */
async function putPart(file: string, part: { number: number; url: string }, body: Buffer): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    let status: number | null = null;
    let why: string;
    try {
      const res = await put(part.url, body);
      status = res.status;
      if (res.status >= 200 && res.status < 300) return res.etag ?? '';
      why = `HTTP ${res.status} ${res.text.slice(0, 200)}`;
      if (res.status < 500) throw new CliError(`the store refused part ${part.number} of ${file}: ${why}`, EXIT.FAILED);
    } catch (err) {
      if (err instanceof CliError) throw err;
      why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
    if (attempt >= PART_TRIES) throw new CliError(`cannot upload part ${part.number} of ${file}: ${why}`, status != null ? EXIT.FAILED : EXIT.UNREACHABLE);
    await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
  }
}

const PART_TIMEOUT_MS = 600_000;

/**
 * One PUT through node:http(s) rather than fetch: fetch copies a Buffer body into a fresh
 * Uint8Array before sending it, a copy of every uploaded byte that cost more CPU than the hash.
 */
function put(url: string, body: Buffer): Promise<{ status: number; etag: string | undefined; text: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const request = (target.protocol === 'https:' ? https : http).request(target, { method: 'PUT', headers: { 'content-length': String(body.length) }, timeout: PART_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, etag: res.headers.etag, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    request.on('timeout', () => request.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    request.on('error', reject);
    request.end(body);
  });
}

const partLength = (number: number, partSize: number, size: number) => Math.max(0, Math.min(partSize, size - (number - 1) * partSize));
