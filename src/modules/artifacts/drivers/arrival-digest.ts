// The sha256 of an embedded upload, computed while its parts arrive, so completing it need not read
// the whole file back (for a 1 GiB checkpoint that read-back was a quarter of the upload's time;
// bench/artifacts.ts).
//
// sha256 is sequential, and parts arrive several at once. So the digest follows the file in order:
// bytes written right where it stands are hashed as they are written (the part at the front, as
// it arrives); bytes it finds already written further on (a part that arrived ahead) it reads
// back from the file — from the page cache, moments after they were written. Parts ahead wait for
// it on disk; nothing is held in memory but one read buffer.
//
// It only ever vouches for bytes it saw written by this process and not written again since:
// - a part PUT a second time (a retry, or a client sending other bytes) makes the digest unusable,
//   since the bytes it hashed may no longer be the ones in the file; so does a failed part whose
//   bytes it had already started to hash;
// - at completion every received part's ETag (its marker, written by whichever process took the
//   PUT) must be the one this process gave it, so a part taken by another replica, or received
//   before a restart, sends completion back to reading the whole file;
// - nothing is persisted: Node's sha256 cannot export its running state, and a server that
//   restarts mid-upload simply verifies by reading back, as before.
import { open, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { ArrivedBytes } from './driver.js';

/** Bytes hashed per read: large enough that a read is cheap, small enough not to stall the event loop. */
const HASH_CHUNK = 2 * 1024 * 1024;
/** Uploads followed at once; the oldest one beyond that is forgotten (and verified by reading back). */
const MAX_FOLLOWED = 256;

interface Part {
  start: number;
  end: number;
  /** Bytes written from `start` on (a part is written front to back). */
  written: number;
  /** Set once the part is received (its marker is in place). */
  etag: string | null;
}

class ArrivalDigest {
  private readonly hash = createHash('sha256');
  /** Bytes hashed, from 0; `claimed` is that plus the read in progress. */
  private hashed = 0;
  private claimed = 0;
  private readonly head: Buffer[] = [];
  private headLength = 0;
  private readonly byNumber = new Map<number, Part>();
  private readonly byStart = new Map<number, Part>();
  private frontier: Part | null = null;
  private run: Promise<void> | null = null;
  private handle: Promise<FileHandle> | null = null;
  unusable = false;

  constructor(
    private readonly file: string,
    private readonly headBytes: number,
  ) {}

  started(number: number, start: number, length: number) {
    if (this.byNumber.has(number)) {
      this.unusable = true;
      return;
    }
    const part: Part = { start, end: start + length, written: 0, etag: null };
    this.byNumber.set(number, part);
    this.byStart.set(start, part);
  }

  /**
   * `buffers` (just written) end the first `written` bytes of the part. When they start exactly
   * where the digest stands and nothing is being read, they are hashed as they are, without
   * reading them back: the part at the front is followed as it arrives, only parts ahead of it
   * are read from the file.
   */
  wrote(number: number, written: number, buffers: Buffer[], bytes: number) {
    const part = this.byNumber.get(number);
    if (!part) return;
    part.written = written;
    if (!this.run && !this.unusable && this.hashed === part.start + written - bytes) {
      for (const b of buffers) this.take(b);
      this.claimed = this.hashed;
    }
    this.follow();
  }

  private take(bytes: Buffer) {
    this.hash.update(bytes);
    if (this.headLength < this.headBytes) {
      const head = Buffer.from(bytes.subarray(0, this.headBytes - this.headLength));
      this.head.push(head);
      this.headLength += head.length;
    }
    this.hashed += bytes.length;
  }

  received(number: number, etag: string) {
    const part = this.byNumber.get(number);
    if (!part) return;
    part.etag = etag;
    part.written = part.end - part.start;
    this.follow();
  }

  failed(number: number) {
    const part = this.byNumber.get(number);
    if (!part || part.etag) return;
    // Bytes of this attempt were hashed (or are being read): a retry may write others there.
    if (this.claimed > part.start) this.unusable = true;
    this.byNumber.delete(number);
    this.byStart.delete(part.start);
    if (this.frontier === part) this.frontier = null;
  }

  /** The digest of the whole upload, once hashed up to `size`; null when it cannot vouch for every received part. */
  async result(size: number, parts: { number: number; etag: string }[]): Promise<ArrivedBytes | null> {
    for (const p of parts) if (this.byNumber.get(p.number)?.etag !== p.etag) return null;
    if (this.byNumber.size !== parts.length) return null; // a part still arriving, racing its own completion
    for (;;) {
      if (this.unusable) return null;
      if (this.hashed >= size) break;
      if (!this.run) this.follow();
      if (!this.run) return null; // nothing left to hash, yet short of the size
      await this.run;
    }
    if (this.hashed !== size) return null;
    return { size, sha256: this.hash.digest('hex'), head: Buffer.concat(this.head) };
  }

  /** Where the bytes that can be hashed now end: the written front of the part at `hashed`. */
  private readableEnd() {
    if (!this.frontier || this.hashed >= this.frontier.end) this.frontier = this.byStart.get(this.hashed) ?? null;
    return this.frontier ? this.frontier.start + this.frontier.written : this.hashed;
  }

  private follow() {
    if (this.run || this.unusable) return;
    this.run = this.catchUp().finally(() => {
      this.run = null;
      // Written between the last look and now.
      if (!this.unusable && this.readableEnd() > this.hashed) this.follow();
    });
  }

  private async catchUp() {
    let buffer: Buffer | null = null;
    try {
      for (let end = this.readableEnd(); !this.unusable && end > this.hashed; end = this.readableEnd()) {
        // Opened once and kept: completion renames the file into the store while the last bytes are hashed.
        this.handle ??= open(this.file, 'r');
        const handle = await this.handle;
        buffer ??= Buffer.allocUnsafe(HASH_CHUNK);
        const length = Math.min(HASH_CHUNK, end - this.hashed);
        this.claimed = this.hashed + length;
        const { bytesRead } = await handle.read(buffer, 0, length, this.hashed);
        if (bytesRead !== length || this.unusable) {
          this.unusable = true;
          return;
        }
        this.take(buffer.subarray(0, length));
      }
    } catch {
      this.unusable = true;
    }
  }

  /** Closes the file (once nothing is being read). */
  async close() {
    this.unusable = true;
    await this.run;
    const handle = this.handle;
    this.handle = null;
    await handle?.then((h) => h.close()).catch(() => {});
  }
}

/** The digests of the uploads this process is receiving, by storage key. */
export class ArrivalDigests {
  private readonly digests = new Map<string, ArrivalDigest>();

  constructor(private readonly headBytes: number) {}

  /** A part's PUT begins (`file` is the upload's data file). */
  started(key: string, file: string, number: number, start: number, length: number) {
    let digest = this.digests.get(key);
    if (!digest) {
      digest = new ArrivalDigest(file, this.headBytes);
      this.digests.set(key, digest);
      if (this.digests.size > MAX_FOLLOWED) this.forget(this.digests.keys().next().value!);
    }
    digest.started(number, start, length);
  }

  wrote(key: string, number: number, written: number, buffers: Buffer[], bytes: number) {
    this.digests.get(key)?.wrote(number, written, buffers, bytes);
  }

  received(key: string, number: number, etag: string) {
    this.digests.get(key)?.received(number, etag);
  }

  failed(key: string, number: number) {
    this.digests.get(key)?.failed(number);
  }

  /** What the digest of an upload says, once; null when completion must read the file back. */
  async take(key: string, size: number, parts: { number: number; etag: string }[]) {
    const digest = this.digests.get(key);
    if (!digest) return null;
    this.digests.delete(key);
    try {
      return await digest.result(size, parts);
    } finally {
      await digest.close();
    }
  }

  forget(key: string) {
    void this.digests.get(key)?.close();
    this.digests.delete(key);
  }

  /** Closes every digest's file (the server stops; uploads abandoned half way still hold theirs). */
  async closeAll() {
    const digests = [...this.digests.values()];
    this.digests.clear();
    await Promise.all(digests.map((d) => d.close()));
  }
}
