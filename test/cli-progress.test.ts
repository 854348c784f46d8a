// The CLI's progress line: bytes read and bytes sent each against its own total (a folder is read
// once and, when uploaded, sent once), so the totals a person sees are the folder's size.
import { describe, expect, it } from 'vitest';
import { Progress } from '../cli/progress.js';

function collect() {
  const lines: string[] = [];
  return { lines, writer: { write: (text: string) => lines.push(text), isTTY: false } };
}

describe('the CLI progress line', () => {
  it('shows bytes read and bytes sent against the folder size, and the bar moves with both', () => {
    const { lines, writer } = collect();
    const progress = new Progress('lora', 2, { read: 2048, sent: 2048 }, writer);
    progress.addRead(2048);
    progress.fileDone();
    progress.fileDone();
    progress.addSent(1024);
    progress.done('failed', false);
    expect(lines).toEqual(['lora ███████████████░░░░░  75%  2/2 files  2.0 KB/2.0 KB read, 1.0 KB sent  failed\n']);
  });

  it('says nothing of sending when nothing is to be sent, and completes at done', () => {
    const { lines, writer } = collect();
    const progress = new Progress('lora', 1, { read: 3 * 1024 * 1024, sent: 0 }, writer);
    progress.addRead(1024);
    progress.done('SUCCEEDED, known run');
    expect(lines).toEqual(['lora ████████████████████ 100%  0/1 files  3.0 MB/3.0 MB read  SUCCEEDED, known run\n']);
  });

  it('ends at 100% with what was really sent: files the store had already are not counted as sent', () => {
    const { lines, writer } = collect();
    const progress = new Progress('lora', 1, { read: 2048, sent: 2048 }, writer);
    progress.addRead(2048);
    progress.done('SUCCEEDED, known run');
    expect(lines).toEqual(['lora ████████████████████ 100%  0/1 files  2.0 KB/2.0 KB read, 0 B sent  SUCCEEDED, known run\n']);
  });

  it('gives the total sent when it is not all that is read', () => {
    const { lines, writer } = collect();
    const progress = new Progress('lora', 1, { read: 4096, sent: 1024 }, writer);
    progress.addRead(4096);
    progress.addSent(1024);
    progress.done('SUCCEEDED, new run');
    expect(lines).toEqual(['lora ████████████████████ 100%  0/1 files  4.0 KB/4.0 KB read, 1.0 KB/1.0 KB sent  SUCCEEDED, new run\n']);
  });
});
