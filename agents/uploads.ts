// The files of one run attempt on their way to loralab's artifact store: samples, checkpoints and
// their optimizer state, the rendered config and the trainer log.
//
// Every file to send is first written to the attempt's upload journal (`uploads.jsonl`, append-only
// like the spool), so an agent killed mid-upload finds, on its next start, exactly the files the
// server has not confirmed. Sending one is the store's protocol: beginRunUpload (which answers only
// the parts the store is missing, so a restarted upload goes on where it stopped, and nothing at
// all when the same bytes are stored already), a PUT per part streamed from disk, completeUpload.
// At most `Transfers.limit` files move at once across all of the agent's runs; samples go first
// (people look at them while the run trains), then checkpoints, then the rest. A failure that may
// pass (the server or the network away, an expired URL) is tried again with backoff, for as long
// as it takes; one that cannot (the file is gone, the server refuses it) is logged and dropped.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { ApiError, backoffMs, isLeaseLost, pause, type ApiClient, type ArtifactKind, type ArtifactUpload } from './api-client.js';

export const UPLOAD_JOURNAL = 'uploads.jsonl';

export interface UploadItem {
  id: number;
  kind: ArtifactKind;
  /** The file on this machine (a snapshot in the attempt's folder, or the trainer's own file). */
  file: string;
  /** The name loralab shows and downloads it under. */
  fileName: string;
  step?: number | null;
  promptIndex?: number | null;
  contentType?: string | null;
  /** Delete `file` once it is stored (a snapshot made for the upload). */
  snapshot?: boolean;
}

export type UploadOutcome = 'stored' | 'dropped';

/** Kinds in the order they are sent when several wait. */
const PRIORITY: Record<ArtifactKind, number> = { SAMPLE: 0, CHECKPOINT: 1, OPTIMIZER_STATE: 2, TRAINER_CONFIG: 3, TRAINER_LOG: 3 };

const RATE_WINDOW_MS = 5000;

/** The agent's transfer slots and byte counts, shared by every run's queue. */
export class Transfers {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  /** Bytes sent, in total and as (time, bytes) samples for the rate. */
  bytesSent = 0;
  private samples: { at: number; bytes: number }[] = [];

  constructor(readonly limit = 2) {}

  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }

  count(bytes: number): void {
    this.bytesSent += bytes;
    const now = Date.now();
    this.samples.push({ at: now, bytes });
    if (this.samples.length > 4096 || this.samples[0]!.at < now - RATE_WINDOW_MS) this.samples = this.samples.filter((s) => s.at >= now - RATE_WINDOW_MS);
  }

  /** Bytes per second over the last few seconds. */
  rate(): number {
    const now = Date.now();
    const recent = this.samples.filter((s) => s.at >= now - RATE_WINDOW_MS);
    if (recent.length === 0) return 0;
    const span = Math.max(1000, now - recent[0]!.at);
    return (recent.reduce((sum, s) => sum + s.bytes, 0) * 1000) / span;
  }
}

export interface UploadQueueOptions {
  api: ApiClient;
  runId: string;
  leaseToken: string;
  /** The journal file; an existing one is continued (what it has not finished is sent first). */
  journal: string;
  transfers: Transfers;
  log: (line: string) => void;
  /** The lease is gone: nothing more can be sent for this attempt. */
  onLeaseLost?: (err: ApiError) => void;
  maxDelayMs?: number;
}

export interface UploadStatus {
  /** Files waiting or moving. */
  pending: number;
  /** Bytes of the files waiting or moving, and how many of them were sent. */
  totalBytes: number;
  sentBytes: number;
}

/** The uploads of one run attempt. */
export class UploadQueue {
  private readonly fd: number;
  private nextId: number;
  private readonly queue: UploadItem[] = [];
  private readonly running = new Set<number>();
  private readonly sizes = new Map<number, { total: number; sent: number }>();
  private readonly outcomes = new Map<number, UploadOutcome>();
  private readonly items = new Map<number, UploadItem>();
  private idleWaiters: (() => void)[] = [];
  private readonly controller = new AbortController();
  private stopped = false;
  private closed = false;
  private leaseLost = false;

  constructor(private readonly o: UploadQueueOptions) {
    const { pending, nextId } = readJournal(o.journal);
    this.nextId = nextId;
    this.fd = openSync(o.journal, 'a');
    for (const item of pending) this.enqueue(item);
  }

  /** Sends a file (in the background); resolves once it is in the journal. */
  add(item: Omit<UploadItem, 'id'>): UploadItem | null {
    if (this.stopped || this.leaseLost) return null;
    const full = { ...item, id: this.nextId++ } as UploadItem;
    this.write({ add: full });
    // A newer optimizer state makes an older one that has not started worthless: the server keeps
    // only the newest stored checkpoint's.
    if (full.kind === 'OPTIMIZER_STATE') {
      for (const old of this.queue.filter((q) => q.kind === 'OPTIMIZER_STATE' && !this.running.has(q.id))) {
        this.queue.splice(this.queue.indexOf(old), 1);
        void this.finish(old, 'dropped');
      }
    }
    this.enqueue(full);
    return full;
  }

  /** The outcome of every file given to add() with this kind and step (the final checkpoint's). */
  outcomeOf(kind: ArtifactKind, step: number): UploadOutcome | 'pending' | null {
    let found: UploadOutcome | 'pending' | null = null;
    for (const item of this.items.values()) {
      if (item.kind !== kind || item.step !== step) continue;
      found = this.outcomes.get(item.id) ?? 'pending';
    }
    return found;
  }

  status(): UploadStatus {
    let totalBytes = 0;
    let sentBytes = 0;
    for (const [id, s] of this.sizes) {
      if (this.outcomes.has(id)) continue;
      totalBytes += s.total;
      sentBytes += s.sent;
    }
    return { pending: this.queue.length + this.running.size, totalBytes, sentBytes };
  }

  /** Resolves once nothing waits or moves (or the queue was stopped). */
  idle(): Promise<void> {
    if (this.stopped || (this.queue.length === 0 && this.running.size === 0)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops sending; what is unfinished stays in the journal for the next start. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.controller.abort();
    this.settleIdle();
  }

  close(): void {
    this.stop();
    if (!this.closed) closeSync(this.fd);
    this.closed = true;
  }

  private enqueue(item: UploadItem): void {
    this.items.set(item.id, item);
    this.queue.push(item);
    this.queue.sort((a, b) => PRIORITY[a.kind] - PRIORITY[b.kind] || a.id - b.id);
    void this.pump();
  }

  private async pump(): Promise<void> {
    while (!this.stopped && this.queue.length > 0) {
      const { transfers } = this.o;
      // One slot per file, in priority order: the head of the queue when a slot frees.
      await transfers.acquire();
      const item = this.queue.shift();
      if (!item || this.stopped) {
        transfers.release();
        if (item) this.queue.unshift(item);
        return;
      }
      this.running.add(item.id);
      void this.send(item).finally(() => {
        transfers.release();
        this.running.delete(item.id);
        this.settleIdle();
      });
    }
  }

  private settleIdle(): void {
    if (!this.stopped && (this.queue.length > 0 || this.running.size > 0)) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** One file, tried until it is stored or cannot be. */
  private async send(item: UploadItem): Promise<void> {
    const signal = this.controller.signal;
    let failures = 0;
    let told = false;
    while (!this.stopped) {
      try {
        const outcome = await this.transfer(item, signal);
        if (told) this.o.log(`uploads of run ${this.o.runId} get through again`);
        await this.finish(item, outcome);
        return;
      } catch (err) {
        if (this.stopped) return;
        if (isLeaseLost(err)) {
          this.leaseLost = true;
          this.o.log(`run ${this.o.runId}: the lease is gone; its files are not sent (${(err as Error).message})`);
          this.o.onLeaseLost?.(err as ApiError);
          this.stop();
          return;
        }
        if (!isPassing(err)) {
          this.o.log(`could not send ${item.fileName} of run ${this.o.runId}: ${(err as Error).message}; skipped`);
          await this.finish(item, 'dropped');
          return;
        }
        if (!told) this.o.log(`uploading ${item.fileName} of run ${this.o.runId} failed (${(err as Error).message}); trying again`);
        told = true;
        await pause(backoffMs(failures++, 250, this.o.maxDelayMs ?? 5000), signal);
      }
    }
  }

  private async transfer(item: UploadItem, signal: AbortSignal): Promise<UploadOutcome> {
    const { api, runId, leaseToken } = this.o;
    const { size, sha256 } = await hashFile(item.file);
    const progress = this.sizes.get(item.id) ?? { total: size, sent: 0 };
    progress.total = size;
    this.sizes.set(item.id, progress);
    let upload: ArtifactUpload;
    try {
      upload = await api.beginRunUpload(
        runId,
        leaseToken,
        { kind: item.kind, fileName: item.fileName, sizeBytes: size, sha256, contentType: item.contentType ?? null, step: item.step ?? null, promptIndex: item.promptIndex ?? null },
        signal,
      );
    } catch (err) {
      // Retention dropped this (an optimizer state behind a newer checkpoint): nothing to send.
      if (err instanceof ApiError && err.code === 'CONFLICT') return 'dropped';
      throw err;
    }
    if (upload.alreadyStored) {
      progress.sent = size;
      return 'stored';
    }
    // What the store had already counts as sent.
    progress.sent = size - upload.parts.reduce((sum, p) => sum + partLength(size, upload.partSize!, p.number), 0);
    const etags = await sendParts(upload, item.file, size, signal, (bytes) => {
      progress.sent += bytes;
      this.o.transfers.count(bytes);
    });
    const done = await api.completeUpload(upload.artifact.id, etags, signal);
    return done.stored ? 'stored' : 'dropped';
  }

  private async finish(item: UploadItem, outcome: UploadOutcome): Promise<void> {
    this.outcomes.set(item.id, outcome);
    this.sizes.delete(item.id);
    if (!this.closed) this.write({ done: item.id, outcome });
    if (item.snapshot) await rm(item.file, { force: true });
  }

  private write(record: unknown): void {
    writeSync(this.fd, `${JSON.stringify(record)}\n`);
  }
}

/** The journal's unfinished items, and the next free id. A torn last line is ignored. */
export function readJournal(file: string): { pending: UploadItem[]; nextId: number } {
  if (!existsSync(file)) return { pending: [], nextId: 1 };
  const items = new Map<number, UploadItem>();
  let nextId = 1;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let record: { add?: UploadItem; done?: number };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      continue;
    }
    if (record.add) {
      items.set(record.add.id, record.add);
      nextId = Math.max(nextId, record.add.id + 1);
    } else if (typeof record.done === 'number') items.delete(record.done);
  }
  return { pending: [...items.values()].sort((a, b) => a.id - b.id), nextId };
}

/** Whether the journal still lists files to send. */
export const hasPendingUploads = (file: string) => readJournal(file).pending.length > 0;

const partLength = (size: number, partSize: number, number: number) => Math.max(0, Math.min(partSize, size - (number - 1) * partSize));

/** A failure that may pass: the server or network away, a URL that expired or an upload the store forgot (begin again). */
function isPassing(err: unknown): boolean {
  if (err instanceof ApiError) return err.kind === 'retryable';
  if (err instanceof PutError) return err.status === 0 || err.status === 403 || err.status === 404 || err.status === 408 || err.status === 429 || err.status >= 500;
  const code = (err as NodeJS.ErrnoException).code;
  return code !== 'ENOENT' && code !== 'EISDIR' && code !== 'EACCES';
}

class PutError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const PART_IDLE_MS = 30_000;

/**
 * Parts of one file on their way at once, each on its own connection. One connection leaves the
 * disk and both ends' CPUs idle in turn; a few keep them all busy. Taken in number order, so the
 * store receives the file roughly front to back (the embedded store hashes it as it arrives).
 */
export const PARTS_AT_ONCE = 4;

/**
 * PUTs an upload's missing parts from `file`, at most `atOnce` at a time, and returns their
 * ETags in number order. The first part that fails stops the others from starting.
 */
export async function sendParts(
  upload: Pick<ArtifactUpload, 'partSize' | 'parts'>,
  file: string,
  size: number,
  signal: AbortSignal,
  onBytes: (n: number) => void = () => {},
  atOnce = PARTS_AT_ONCE,
): Promise<{ number: number; etag: string }[]> {
  const partSize = upload.partSize!;
  const etags: { number: number; etag: string }[] = [];
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < upload.parts.length) {
      const part = upload.parts[next++]!;
      try {
        const etag = await putPart(part.url, file, (part.number - 1) * partSize, partLength(size, partSize, part.number), signal, onBytes);
        etags.push({ number: part.number, etag });
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(atOnce, upload.parts.length) }, worker));
  const failure = results.find((r) => r.status === 'rejected');
  if (failure) throw failure.reason;
  return etags.sort((a, b) => a.number - b.number);
}

const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

/**
 * PUTs `length` bytes of `file` from `start` to a signed URL, streamed from disk (the socket's
 * backpressure paces the reads). Returns the answer's ETag.
 */
function putPart(url: string, file: string, start: number, length: number, signal: AbortSignal, onBytes: (n: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const req = (secure ? https : http).request(target, {
      method: 'PUT',
      headers: { 'content-length': String(length) },
      agent: secure ? agents.https : agents.http,
      signal,
    });
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      reject(err instanceof PutError ? err : Object.assign(new PutError(0, err.message), { cause: err }));
    };
    req.on('error', fail);
    // A socket on which nothing moves for PART_IDLE_MS (a peer gone without a word, a reused
    // keep-alive socket the other end dropped) fails the part, which is then tried again: a
    // transfer must never wait forever, or the run's completion waits with it.
    req.setTimeout(PART_IDLE_MS, () => req.destroy(new Error(`nothing moved for ${PART_IDLE_MS / 1000} s`)));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
      res.on('error', fail);
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const etag = res.headers.etag;
        if (status >= 200 && status < 300 && etag) resolve(String(etag));
        else fail(new PutError(status, `PUT of a part answered HTTP ${status}: ${Buffer.concat(chunks).toString('utf8').trim().slice(0, 200)}`));
      });
    });
    if (length === 0) {
      req.end();
      return;
    }
    const body = createReadStream(file, { start, end: start + length - 1, highWaterMark: 1 << 20 });
    body.on('data', (chunk) => onBytes(chunk.length));
    body.on('error', (err) => {
      req.destroy(err);
      fail(err);
    });
    body.pipe(req);
  });
}

/** Size and sha256 of a file, streamed. */
export async function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  const st = await stat(file);
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  if (size !== st.size) throw Object.assign(new Error(`${file} changed while it was read`), { code: 'ECHANGED' });
  return { size, sha256: hash.digest('hex') };
}

/** `1.2 GB`, `340 MB`, `12 kB` */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(0)} MB`;
  return `${Math.round(bytes / 1e3)} kB`;
}
