// The embedded store: objects under DATA_DIR/artifacts, uploaded and served by the server itself
// through routes signed like presigned URLs (routes.ts). An upload is one preallocated file that
// parts are written into at their offsets, so completing it is a rename, not a copy. A part counts
// as received once its bytes are written and its marker file is renamed into place; the file is
// fsynced once, when the upload is joined, before its bytes are verified and recorded. A part lost
// to a power cut in between is never recorded as stored: the sha256 check at completion fails and
// the client sends the upload again. An fsync per part made uploads several times slower
// (bench/artifacts.ts) for no byte that verification would not catch.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { finished, type Readable } from 'node:stream';
import type { UrlSigner } from '../signing.js';
import { SNIFF_BYTES } from '../media.js';
import { ArrivalDigests } from './arrival-digest.js';
import { STORAGE_KEY, UploadGoneError, partRange, type BlobDriver, type GetUrlRequest, type ReceivedPart, type UploadTarget } from './driver.js';

export const ROUTE_PREFIX = '/artifacts';
/** The embedded store's folder in DATA_DIR. */
export const EMBEDDED_STORE_DIR = 'artifacts';

/** A PUT that does not carry exactly the bytes its URL was signed for. */
export class PartSizeError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 413,
  ) {
    super(message);
  }
}

const READ_CHUNK = 1024 * 1024;
/** Bytes of a part gathered into one positional write (a socket delivers 64 KiB at a time). */
const WRITE_BATCH = 1024 * 1024;
/**
 * The store lives in DATA_DIR, which only the server's user may enter, and makes its own folders and
 * files private too, whatever the umask: the start's walk that narrows DATA_DIR's modes then skips
 * it (datadir-modes.ts), which would otherwise stat every stored file at every start.
 */
const STORE_DIR_MODE = 0o700;
const STORE_FILE_MODE = 0o600;

export class FileDriver implements BlobDriver {
  readonly kind = 'file' as const;
  /**
   * Write-back started per part, not awaited by the part's PUT: the disk writes one part while the
   * next ones arrive, and the fsync at completion finds little left to do. (Awaiting an fsync per
   * part before answering made uploads several times slower; not starting any left the whole file
   * to be written back at completion, as long again as the transfer on a disk slower than the network.)
   */
  private readonly writeBack = new Map<string, { running: Promise<void>; again: boolean }>();
  private readonly arrivals = new ArrivalDigests(SNIFF_BYTES);
  /**
   * The PUTs writing into each open upload's file. Completion renames the file into the store and
   * then cuts these off and waits for them: a PUT that opened the file before the rename would
   * otherwise go on writing into the stored object after its bytes were verified (a retry still
   * arriving, or a client sending other bytes on purpose to change a blob that other runs share).
   * Only this process's PUTs are known: replicas that share DATA_DIR each cut off their own.
   */
  private readonly writers = new Map<string, Set<{ cutOff: AbortController; done: Promise<unknown> }>>();

  constructor(
    readonly root: string,
    private readonly signer: UrlSigner,
  ) {}

  /** Where an object lives; the key is checked first, so no other path can ever come out. */
  objectPath(key: string) {
    if (!STORAGE_KEY.test(key)) throw new Error(`not a storage key: ${key}`);
    return path.join(this.root, 'objects', key.slice(2, 4), key);
  }

  private uploadDir(key: string) {
    if (!STORAGE_KEY.test(key)) throw new Error(`not a storage key: ${key}`);
    return path.join(this.root, 'uploads', key);
  }

  async createUpload(target: Omit<UploadTarget, 'uploadId'>) {
    const dir = this.uploadDir(target.key);
    await mkdir(dir, { recursive: true, mode: STORE_DIR_MODE });
    // Preallocated (sparse) once; a begin that resumes finds it and leaves it alone.
    const data = await open(path.join(dir, 'data'), 'a', STORE_FILE_MODE);
    try {
      if ((await data.stat()).size !== target.size) await data.truncate(target.size);
    } finally {
      await data.close();
    }
    return null;
  }

  async receivedParts(target: UploadTarget): Promise<ReceivedPart[]> {
    let names: string[];
    try {
      names = await readdir(this.uploadDir(target.key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // Joined into the object by a completion that died before recording it.
      if (await exists(this.objectPath(target.key))) throw new UploadGoneError('This upload was joined already');
      return [];
    }
    const parts: ReceivedPart[] = [];
    for (const name of names) {
      const match = /^part-(\d+)\.json$/.exec(name);
      if (!match) continue;
      const marker = JSON.parse(await readFile(path.join(this.uploadDir(target.key), name), 'utf8')) as { size: number; etag: string };
      parts.push({ number: Number(match[1]), size: marker.size, etag: marker.etag });
    }
    return parts.sort((a, b) => a.number - b.number);
  }

  async partUrl(target: UploadTarget, number: number, expiresAt: number) {
    const { offset, length } = partRange(target, number);
    return this.signer.sign('PUT', `${ROUTE_PREFIX}/u/${target.key}/${number}`, { offset: String(offset), length: String(length) }, expiresAt);
  }

  /**
   * Streams one part from `body` into the upload's file at `offset`: exactly `length` bytes or an
   * error. Returns the part's new ETag.
   */
  async writePart(key: string, number: number, offset: number, length: number, body: Readable, declaredLength: number | null): Promise<string> {
    if (declaredLength != null && declaredLength !== length) {
      throw new PartSizeError(`part ${number} must be exactly ${length} bytes; Content-Length says ${declaredLength}`, declaredLength > length ? 413 : 400);
    }
    const writer = { cutOff: new AbortController(), done: Promise.resolve() as Promise<unknown> };
    let writers = this.writers.get(key);
    if (!writers) this.writers.set(key, (writers = new Set()));
    writers.add(writer);
    const writing = this.receivePart(key, number, offset, length, body, writer.cutOff.signal);
    writer.done = writing.catch(() => {});
    try {
      return await writing;
    } finally {
      writers.delete(writer);
      if (writers.size === 0 && this.writers.get(key) === writers) this.writers.delete(key);
    }
  }

  private async receivePart(key: string, number: number, offset: number, length: number, body: Readable, cutOff: AbortSignal) {
    const dir = this.uploadDir(key);
    const file = path.join(dir, 'data');
    let handle: FileHandle;
    try {
      handle = await open(file, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UploadGoneError('This upload is no longer open: call begin again');
      throw err;
    }
    this.arrivals.started(key, file, number, offset, length);
    let received = false;
    try {
      const arrived = await receiveInto(body, handle, offset, length, (written, buffers, bytes) => this.arrivals.wrote(key, number, written, buffers, bytes), number, cutOff);
      if (arrived !== length) throw new PartSizeError(`part ${number} must be exactly ${length} bytes; ${arrived} arrived`, 400);
      this.startWriteBack(key, file);
      const etag = `"${randomBytes(12).toString('hex')}"`;
      const marker = path.join(dir, `part-${number}.json`);
      const partial = `${marker}.${randomBytes(6).toString('hex')}`;
      await writeFile(partial, JSON.stringify({ size: length, etag }), { mode: STORE_FILE_MODE });
      await rename(partial, marker);
      this.arrivals.received(key, number, etag);
      received = true;
      return etag;
    } finally {
      if (!received) this.arrivals.failed(key, number);
      await handle.close();
    }
  }

  /**
   * The size and sha256 of an upload's bytes as they arrived (arrival-digest.ts), so completion
   * need not read them back; null when this process cannot vouch for every part.
   */
  arrivedDigest(target: UploadTarget, parts: ReceivedPart[]) {
    return this.arrivals.take(target.key, target.size, parts);
  }

  /** One write-back at a time per upload (one more after it when parts arrived meanwhile): a thread each would starve the file system's other work. */
  private startWriteBack(key: string, file: string) {
    const current = this.writeBack.get(key);
    if (current) {
      current.again = true;
      return;
    }
    const state = { running: Promise.resolve(), again: false };
    state.running = (async () => {
      do {
        state.again = false;
        await syncFile(file, true).catch(() => {}); // only an early start: completion's own fsync is the one that counts
      } while (state.again);
      this.writeBack.delete(key);
    })();
    this.writeBack.set(key, state);
  }

  async finishUpload(target: UploadTarget) {
    const dir = this.uploadDir(target.key);
    await this.writeBack.get(target.key)?.running;
    const destination = this.objectPath(target.key);
    await mkdir(path.dirname(destination), { recursive: true, mode: STORE_DIR_MODE });
    try {
      await syncFile(path.join(dir, 'data'));
      await rename(path.join(dir, 'data'), destination);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !(await exists(destination))) throw err;
    }
    // No PUT can open the file any more; those that had it open stop before the bytes are verified.
    await this.cutOffWriters(target.key);
    await syncDir(path.dirname(destination));
    await rm(dir, { recursive: true, force: true });
  }

  private async cutOffWriters(key: string) {
    const writers = [...(this.writers.get(key) ?? [])];
    for (const w of writers) w.cutOff.abort();
    await Promise.all(writers.map((w) => w.done));
  }

  async abortUpload(target: UploadTarget) {
    this.arrivals.forget(target.key);
    await rm(this.uploadDir(target.key), { recursive: true, force: true });
  }

  async read(key: string): Promise<Readable> {
    const stream = createReadStream(this.objectPath(key), { highWaterMark: READ_CHUNK });
    await once(stream, 'ready'); // a missing object fails here, not in the middle of a stream
    return stream;
  }

  async put(key: string, bytes: Buffer) {
    const destination = this.objectPath(key);
    await mkdir(path.dirname(destination), { recursive: true, mode: STORE_DIR_MODE });
    const partial = `${destination}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(partial, bytes, { flush: true, mode: STORE_FILE_MODE });
    await rename(partial, destination);
  }

  async delete(keys: string[]) {
    await Promise.all(keys.map((key) => rm(this.objectPath(key), { force: true })));
  }

  async getUrl(request: GetUrlRequest) {
    return this.signer.sign(
      'GET',
      `${ROUTE_PREFIX}/o/${request.key}/${encodeURIComponent(request.fileName)}`,
      { type: request.contentType, disposition: request.disposition },
      request.expiresAt,
    );
  }

  async close() {
    await this.arrivals.closeAll();
  }
}

const exists = (file: string) => stat(file).then(
  () => true,
  () => false,
);

/** fsync of a file, or of a folder (a rename is durable only once its folder is synced). */
async function syncFile(file: string, dataOnly = false) {
  const handle = await open(file, 'r');
  try {
    await (dataOnly ? handle.datasync() : handle.sync());
  } finally {
    await handle.close();
  }
}
const syncDir = (dir: string) => syncFile(dir);

/**
 * Reads `body` into the file from `offset`, at most `length` bytes; resolves with the bytes that
 * arrived once they are all written (never while a write is still in flight). The body flows (no
 * pause and resume per 64 KiB socket read, which cost as much as the writes): its chunks are
 * gathered into positional writes of WRITE_BATCH bytes, one write in flight while the next batch
 * fills, and the body is paused only when a batch is full before that write is done, so a disk
 * slower than the network slows the socket and memory stays bounded.
 */
function receiveInto(
  body: Readable,
  handle: FileHandle,
  offset: number,
  length: number,
  onWritten: (written: number, buffers: Buffer[], bytes: number) => void,
  number: number,
  cutOff: AbortSignal,
) {
  return new Promise<number>((resolve, reject) => {
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let arrived = 0;
    let written = 0;
    let writing = false;
    let ended = false;
    let failure: Error | null = null;
    const fail = (err: Error) => {
      if (failure) return;
      failure = err;
      body.off('data', onData);
      body.pause();
      if (!writing) reject(err);
    };
    const write = () => {
      if (writing) return;
      if (failure) return reject(failure);
      if (batchBytes === 0 || (!ended && batchBytes < WRITE_BATCH)) {
        if (ended && batchBytes === 0) resolve(arrived);
        return;
      }
      const buffers = batch;
      const bytes = batchBytes;
      batch = [];
      batchBytes = 0;
      writing = true;
      writeFully(handle, buffers, offset + written).then(
        () => {
          writing = false;
          written += bytes;
          onWritten(written, buffers, bytes);
          if (!failure && body.isPaused()) body.resume();
          write();
        },
        (err: Error) => {
          writing = false;
          failure ??= err;
          reject(failure);
        },
      );
    };
    const onData = (chunk: Buffer) => {
      arrived += chunk.length;
      if (arrived > length) return fail(new PartSizeError(`part ${number} must be exactly ${length} bytes; more arrived`, 413));
      batch.push(chunk);
      batchBytes += chunk.length;
      if (batchBytes < WRITE_BATCH) return;
      if (writing) body.pause();
      else write();
    };
    body.on('data', onData);
    // Completion took the file: nothing more is written (a write in flight ends first).
    const cut = () => fail(new UploadGoneError(`This upload was completed while part ${number} was still arriving`));
    if (cutOff.aborted) cut();
    else cutOff.addEventListener('abort', cut, { once: true });
    finished(body, { writable: false }, (err) => {
      if (err) return fail(err);
      ended = true;
      write();
    });
  });
}

/** One positional write of several buffers, whole (a short write of a regular file is continued). */
async function writeFully(handle: FileHandle, buffers: Buffer[], position: number) {
  let rest = buffers;
  let at = position;
  while (rest.length > 0) {
    let { bytesWritten } = await handle.writev(rest, at);
    at += bytesWritten;
    const left: Buffer[] = [];
    for (const b of rest) {
      if (bytesWritten >= b.length) bytesWritten -= b.length;
      else {
        left.push(b.subarray(bytesWritten));
        bytesWritten = 0;
      }
    }
    rest = left;
  }
}
