// sha256 on a worker thread, for the large reads that verify an upload.
//
// A completion that reads an object back (an S3 upload, or an embedded one this process did not
// see arrive) hashes every byte of it. On the event loop that is 2–3 s of CPU per GiB here (about
// 440 MB/s), time in which the server answers nobody and does not read the next bytes off the
// socket: the download and the hash took turns. On a worker thread the two overlap, and the event
// loop only copies bytes into batches and hands them over.
//
// One worker serves the whole process (every hash in progress, by id), started on first use and
// unref'd so it never keeps the process alive. Memory stays bounded: a hash holds at most
// MAX_IN_FLIGHT batches on their way; update() waits for the worker past that, which in turn
// slows the read that feeds it.
import { Worker } from 'node:worker_threads';

/** Bytes handed to the worker at once: few enough messages that passing them costs nothing. */
const BATCH_BYTES = 4 * 1024 * 1024;
/** Batches of one hash on their way to the worker (or in it) at most: 16 MiB. */
const MAX_IN_FLIGHT = 4;

// Plain CommonJS evaluated by the worker: no file to find, whether the server runs from the
// TypeScript sources or from the compiled bundle.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  let hash = hashes.get(m.id);
  if (m.type === 'update') {
    if (!hash) hashes.set(m.id, (hash = createHash('sha256')));
    hash.update(new Uint8Array(m.buffer, 0, m.length));
    parentPort.postMessage({ id: m.id, type: 'hashed' });
  } else if (m.type === 'digest') {
    hashes.delete(m.id);
    parentPort.postMessage({ id: m.id, type: 'digest', hex: (hash ?? createHash('sha256')).digest('hex') });
  } else if (m.type === 'drop') {
    hashes.delete(m.id);
  }
});`;

type Reply = { id: number; type: 'hashed' } | { id: number; type: 'digest'; hex: string };

interface Listener {
  onReply(reply: Reply): void;
  onFailure(err: Error): void;
}

let worker: Worker | null = null;
const listeners = new Map<number, Listener>();
let nextId = 1;

function sharedWorker() {
  if (worker) return worker;
  const started = new Worker(WORKER_SOURCE, { eval: true });
  started.unref();
  started.on('message', (reply: Reply) => listeners.get(reply.id)?.onReply(reply));
  const fail = (err: Error) => {
    if (worker === started) worker = null;
    for (const listener of [...listeners.values()]) listener.onFailure(err);
    listeners.clear();
  };
  started.on('error', fail);
  started.on('exit', (code) => fail(new Error(`the sha256 worker exited (code ${code})`)));
  worker = started;
  return started;
}

/** A running sha256 whose bytes are hashed on the shared worker thread. */
export class OffThreadSha256 {
  private readonly id = nextId++;
  private readonly worker = sharedWorker();
  private batch = new Uint8Array(BATCH_BYTES);
  private filled = 0;
  private inFlight = 0;
  private failure: Error | null = null;
  private wakeSender: (() => void) | null = null;
  private digestWaiter: { resolve: (hex: string) => void; reject: (err: Error) => void } | null = null;

  constructor() {
    listeners.set(this.id, {
      onReply: (reply) => {
        if (reply.type === 'hashed') {
          this.inFlight--;
          this.wake();
        } else {
          listeners.delete(this.id);
          this.digestWaiter?.resolve(reply.hex);
        }
      },
      onFailure: (err) => {
        this.failure = err;
        this.wake();
        this.digestWaiter?.reject(err);
      },
    });
  }

  /** Adds bytes; resolves at once unless MAX_IN_FLIGHT batches are still on their way. */
  async update(chunk: Uint8Array) {
    for (let offset = 0; offset < chunk.length; ) {
      const n = Math.min(chunk.length - offset, BATCH_BYTES - this.filled);
      this.batch.set(chunk.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      if (this.filled === BATCH_BYTES) await this.send();
    }
  }

  async digest(): Promise<string> {
    if (this.filled > 0) await this.send();
    this.check();
    return new Promise<string>((resolve, reject) => {
      this.digestWaiter = { resolve, reject };
      this.worker.postMessage({ id: this.id, type: 'digest' });
    });
  }

  /** Forgets the hash (a read that failed half way). */
  drop() {
    if (!listeners.delete(this.id)) return;
    this.worker.postMessage({ id: this.id, type: 'drop' });
  }

  private async send() {
    while (this.inFlight >= MAX_IN_FLIGHT && !this.failure) await new Promise<void>((resolve) => (this.wakeSender = resolve));
    this.check();
    const buffer = this.batch.buffer;
    // The batch's memory moves to the worker (transferred, not copied); the next batch is new.
    this.worker.postMessage({ id: this.id, type: 'update', buffer, length: this.filled }, [buffer as ArrayBuffer]);
    this.inFlight++;
    this.batch = new Uint8Array(BATCH_BYTES);
    this.filled = 0;
  }

  private wake() {
    const wake = this.wakeSender;
    this.wakeSender = null;
    wake?.();
  }

  private check() {
    if (this.failure) throw this.failure;
  }
}
