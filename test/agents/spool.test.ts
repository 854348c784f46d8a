import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findPendingSpools, Spool, SpoolError } from '../../agents/spool.js';
import { tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('spool'));
});
afterEach(() => cleanup());

const header = { runId: 'run-1', leaseToken: 'lease-a', attempt: 1 };
const loss = (from: number, n: number) => ({ op: 'loss' as const, points: Array.from({ length: n }, (_, i) => ({ step: from + i, loss: 0.5, lr: 1e-4 })) });

describe('the spool', () => {
  it('keeps every report until it is acknowledged, on disk, in the order it was made', () => {
    const file = path.join(dir, 'spool.jsonl');
    const spool = Spool.create(file, header);
    spool.append({ op: 'start' });
    spool.append(loss(0, 3));
    spool.append({ op: 'checkpoint', input: { step: 3, path: '/out/a_000000003.safetensors', sizeBytes: 10, sha256: 'ab'.repeat(32) } });
    spool.append(loss(3, 2));
    spool.ack([1, 2]);
    expect(spool.pending().map((e) => [e.seq, e.op])).toEqual([
      [3, 'checkpoint'],
      [4, 'loss'],
    ]);
    spool.close();

    // An agent started later finds exactly the unacknowledged reports, and numbers on after them.
    const again = Spool.open(file);
    expect(again.header).toMatchObject(header);
    expect(again.pending()).toEqual([
      { seq: 3, op: 'checkpoint', input: { step: 3, path: '/out/a_000000003.safetensors', sizeBytes: 10, sha256: 'ab'.repeat(32) } },
      { seq: 4, ...loss(3, 2) },
    ]);
    expect(again.append({ op: 'complete', outcome: 'SUCCEEDED', error: null }).seq).toBe(5);
    again.close();
  });

  it('is only ever appended to', () => {
    const file = path.join(dir, 'spool.jsonl');
    const spool = Spool.create(file, header);
    spool.append(loss(0, 1));
    const before = readFileSync(file, 'utf8');
    spool.ack([1]);
    spool.append(loss(1, 1));
    spool.close();
    expect(readFileSync(file, 'utf8').startsWith(before)).toBe(true);
  });

  it('ignores a line torn by a crash mid-write and goes on on a fresh line', () => {
    const file = path.join(dir, 'spool.jsonl');
    const spool = Spool.create(file, header);
    spool.append(loss(0, 2));
    spool.close();
    appendFileSync(file, '{"seq":2,"op":"loss","points":[{"step":2,"lo');
    const again = Spool.open(file);
    expect(again.pending().map((e) => e.seq)).toEqual([1]);
    again.append(loss(2, 1));
    again.close();
    expect(Spool.open(file).pending().map((e) => e.seq)).toEqual([1, 2]);
  });

  it('drops what is pending once abandoned (the lease is gone), for good', () => {
    const file = path.join(dir, 'spool.jsonl');
    const spool = Spool.create(file, header);
    spool.append(loss(0, 2));
    spool.abandon('LEASE_LOST: another attempt holds the run');
    expect(spool.pending()).toEqual([]);
    expect(() => spool.append(loss(2, 1))).toThrow(SpoolError);
    spool.close();
    const again = Spool.open(file);
    expect(again.pending()).toEqual([]);
    expect(again.abandoned).toBe('LEASE_LOST: another attempt holds the run');
    again.close();
  });

  it('continues the spool of the same lease, and refuses to mix another lease into it', () => {
    const file = path.join(dir, 'spool.jsonl');
    const spool = Spool.create(file, header);
    spool.append(loss(0, 1));
    spool.close();
    const same = Spool.create(file, header);
    expect(same.pending().map((e) => e.seq)).toEqual([1]);
    same.close();
    expect(() => Spool.create(file, { ...header, leaseToken: 'lease-b' })).toThrow('belongs to another lease');
  });

  it('finds the spools under a work folder that still hold unsent reports, oldest first', () => {
    const make = (run: string, attempt: number, pending: boolean) => {
      const folder = path.join(dir, 'runs', run, `attempt-${attempt}`);
      mkdirSync(folder, { recursive: true });
      const spool = Spool.create(path.join(folder, 'spool.jsonl'), { runId: run, leaseToken: `${run}-${attempt}`, attempt });
      spool.append(loss(0, 1));
      if (!pending) spool.ack([1]);
      spool.close();
      return path.join(folder, 'spool.jsonl');
    };
    const older = make('run-a', 1, true);
    make('run-a', 2, false);
    const newer = make('run-b', 1, true);
    expect(findPendingSpools(dir)).toEqual([older, newer]);
    expect(findPendingSpools(path.join(dir, 'nothing-here'))).toEqual([]);
  });
});
