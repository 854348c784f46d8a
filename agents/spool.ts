// The write-ahead spool of one run attempt: every report (start, loss, checkpoint, sample, complete)
// is appended to `spool.jsonl` before it is sent, and acknowledged in the same file once the server
// has taken it. The file is only ever appended to, so an agent killed at any moment finds, on its
// next start, exactly the reports the server has not confirmed, in the order they were made. Every
// report is idempotent on the server (loss per step, checkpoints per step, samples per step and
// prompt, completion per attempt), so sending one twice — sent, then killed before the ack — is safe.
//
// Lines:  {"header":{runId,leaseToken,attempt,...}}   first line
//         {"seq":1,"op":"loss","points":[…]}          a report
//         {"ack":[1,2,3]}                              the server took these
//         {"abandoned":"LEASE_LOST: …"}                nothing pending may be sent any more
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { CheckpointInput, LossPointInput, RunErrorInput, RunOutcome, SampleInput } from './api-client.js';

export const SPOOL_FILE = 'spool.jsonl';

export interface SpoolHeader {
  runId: string;
  leaseToken: string;
  attempt: number;
  runName?: string;
  createdAt: string;
}

export type SpoolOp =
  | { op: 'start' }
  | { op: 'loss'; points: LossPointInput[] }
  | { op: 'checkpoint'; input: CheckpointInput }
  | { op: 'sample'; input: SampleInput }
  | { op: 'complete'; outcome: RunOutcome; error: RunErrorInput | null };

export type SpoolEntry = SpoolOp & { seq: number };

export class SpoolError extends Error {}

export class Spool {
  private fd: number | null;
  private nextSeq: number;
  private readonly queue: SpoolEntry[];
  private abandonedReason: string | null;

  private constructor(
    readonly file: string,
    readonly header: SpoolHeader,
    fd: number,
    pending: SpoolEntry[],
    nextSeq: number,
    abandoned: string | null,
  ) {
    this.fd = fd;
    this.queue = pending;
    this.nextSeq = nextSeq;
    this.abandonedReason = abandoned;
  }

  /** A new spool; an existing file of the same attempt is continued (its pending reports first). */
  static create(file: string, header: Omit<SpoolHeader, 'createdAt'>): Spool {
    if (existsSync(file)) {
      const existing = Spool.open(file);
      if (existing.header.runId === header.runId && existing.header.leaseToken === header.leaseToken) return existing;
      existing.close();
      throw new SpoolError(`${file} belongs to another lease of run ${existing.header.runId}`);
    }
    const fd = openSync(file, 'a');
    const full: SpoolHeader = { ...header, createdAt: new Date().toISOString() };
    writeSync(fd, `${JSON.stringify({ header: full })}\n`);
    return new Spool(file, full, fd, [], 1, null);
  }

  /** Reads an existing spool. A torn last line (the agent died mid-write) is ignored. */
  static open(file: string): Spool {
    const lines = readFileSync(file, 'utf8').split('\n');
    let header: SpoolHeader | null = null;
    const entries = new Map<number, SpoolEntry>();
    let maxSeq = 0;
    let abandoned: string | null = null;
    for (const line of lines) {
      if (line.trim().length === 0) continue;
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (record['header']) header = record['header'] as SpoolHeader;
      else if (Array.isArray(record['ack'])) for (const seq of record['ack'] as number[]) entries.delete(seq);
      else if (typeof record['abandoned'] === 'string') {
        abandoned = record['abandoned'];
        entries.clear();
      } else if (typeof record['seq'] === 'number' && typeof record['op'] === 'string') {
        const entry = record as unknown as SpoolEntry;
        entries.set(entry.seq, entry);
        maxSeq = Math.max(maxSeq, entry.seq);
      }
    }
    if (!header) throw new SpoolError(`${file} has no header line`);
    const pending = [...entries.values()].sort((a, b) => a.seq - b.seq);
    // Appending after a torn line: start on a fresh line so the next record parses.
    const fd = openSync(file, 'a');
    const text = lines.join('\n');
    if (text.length > 0 && !text.endsWith('\n')) writeSync(fd, '\n');
    return new Spool(file, header, fd, pending, maxSeq + 1, abandoned);
  }

  /** Writes a report to disk and queues it; returns it with its sequence number. */
  append(op: SpoolOp): SpoolEntry {
    if (this.abandonedReason !== null) throw new SpoolError(`spool ${this.file} was abandoned: ${this.abandonedReason}`);
    const entry = { seq: this.nextSeq++, ...op } as SpoolEntry;
    this.write(entry);
    this.queue.push(entry);
    return entry;
  }

  /** Reports not yet acknowledged, oldest first. */
  pending(): readonly SpoolEntry[] {
    return this.queue;
  }

  /** The server took these (they must be the oldest pending ones). */
  ack(seqs: number[]): void {
    if (seqs.length === 0) return;
    // A send that finished after close(): its ack is lost and the report is sent again on the next
    // start, which the server takes as a duplicate.
    if (this.fd !== null) this.write({ ack: seqs });
    const done = new Set(seqs);
    let drop = 0;
    while (drop < this.queue.length && done.has(this.queue[drop]!.seq)) drop++;
    this.queue.splice(0, drop);
    if (this.queue.some((e) => done.has(e.seq))) {
      const rest = this.queue.filter((e) => !done.has(e.seq));
      this.queue.length = 0;
      this.queue.push(...rest);
    }
  }

  /** Nothing pending will ever be accepted (the lease is gone): record that and drop them. */
  abandon(reason: string): void {
    if (this.abandonedReason !== null) return;
    this.abandonedReason = reason;
    if (this.fd !== null) this.write({ abandoned: reason });
    this.queue.length = 0;
  }

  get abandoned(): string | null {
    return this.abandonedReason;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private write(record: unknown): void {
    if (this.fd === null) throw new SpoolError(`spool ${this.file} is closed`);
    // One write() per record: appended whole, in order, and in the page cache before the report
    // leaves the machine. (No fsync: this guards against the agent dying, not the machine.)
    writeSync(this.fd, `${JSON.stringify(record)}\n`);
  }
}

/** Spool files under `<workDir>/runs/<run>/<attempt>/` that still hold unsent reports, oldest first. */
export function findPendingSpools(workDir: string): string[] {
  const runsDir = path.join(workDir, 'runs');
  if (!existsSync(runsDir)) return [];
  const found: { file: string; createdAt: string }[] = [];
  for (const run of readdirSync(runsDir, { withFileTypes: true })) {
    if (!run.isDirectory()) continue;
    for (const attempt of readdirSync(path.join(runsDir, run.name), { withFileTypes: true })) {
      if (!attempt.isDirectory()) continue;
      const file = path.join(runsDir, run.name, attempt.name, SPOOL_FILE);
      if (!existsSync(file)) continue;
      try {
        const spool = Spool.open(file);
        const pending = spool.pending().length;
        const createdAt = spool.header.createdAt;
        spool.close();
        if (pending > 0) found.push({ file, createdAt });
      } catch {
        // Not a spool we can read: leave it for a person to look at.
      }
    }
  }
  return found.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.file.localeCompare(b.file)).map((f) => f.file);
}
