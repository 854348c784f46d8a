// Transcripts of ai-toolkit's training loop drawn by real tqdm 4.70.1 (fixtures/tqdm/*.json, made by
// fixtures/tqdm/generate.py): each holds the tqdm calls in order, what they printed chunk by chunk
// with the stream it went to, and the losses the trainer reported, which a parser must recover.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ToolkitBar, TqdmBar } from '../../agents/fake-trainer/tqdm.js';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/tqdm');

export type Chunk = ['stdout' | 'stderr', string];
type Op =
  | ['clock', number]
  | ['print', string]
  | ['stderr', string]
  | ['bar', number, { desc?: string; total: number; initial?: number; position?: number | null; ncols?: number | null; leave?: boolean; smoothing?: number; toolkit: boolean }]
  | ['postfix', number, string]
  | ['update', number, number]
  | ['pause', number]
  | ['unpause', number]
  | ['close', number];

export interface Transcript {
  file: string;
  scenario: { name: string; steps: number; start?: number; ncols?: number | null; oom?: number[]; abort_at?: number; equal_after?: number[] };
  tqdm: string;
  /** step → the loss text the trainer showed for it (steps it skipped are absent). */
  reported: Record<string, string>;
  error: string | null;
  ops: Op[];
  chunks: Chunk[];
}

export function transcripts(): Transcript[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ file: f.replace(/\.json$/, ''), ...(JSON.parse(readFileSync(path.join(DIR, f), 'utf8')) as Omit<Transcript, 'file'>) }));
}

export function transcript(file: string): Transcript {
  const found = transcripts().find((t) => t.file === file);
  if (!found) throw new Error(`no transcript ${file}`);
  return found;
}

/** The whole output as one stream (`2>&1`). */
export const merged = (t: Transcript) => t.chunks.map(([, text]) => text).join('');

/** The reported losses as [step, loss] pairs, in step order. */
export const reportedLosses = (t: Transcript) => Object.entries(t.reported).map(([step, text]) => [Number(step), Number(text)] as const);

/** Replays a transcript's tqdm calls through the fake trainer's tqdm, and returns what it printed. */
export function replay(t: Transcript): Chunk[] {
  let now = 0;
  const chunks: Chunk[] = [];
  const write = (stream: Chunk[0], text: string) => {
    if (text.length === 0) return;
    const last = chunks.at(-1);
    if (last && last[0] === stream) last[1] += text;
    else chunks.push([stream, text]);
  };
  const bars = new Map<number, { bar: TqdmBar; leave: boolean }>();
  for (const op of t.ops) {
    switch (op[0]) {
      case 'clock':
        now = op[1];
        break;
      case 'print':
        write('stdout', `${op[1]}\n`);
        break;
      case 'stderr':
        write('stderr', op[1]);
        break;
      case 'bar': {
        const o = op[2];
        const options = {
          desc: o.desc,
          total: o.total,
          initial: o.initial,
          position: o.position ?? 0,
          ncols: o.ncols ?? null,
          smoothing: o.smoothing,
          clock: () => now,
          write: (text: string) => write('stderr', text),
        };
        bars.set(op[1], { bar: o.toolkit ? new ToolkitBar(options) : new TqdmBar(options), leave: o.leave ?? true });
        break;
      }
      case 'postfix':
        bars.get(op[1])!.bar.setPostfixStr(op[2]);
        break;
      case 'update':
        bars.get(op[1])!.bar.update(op[2]);
        break;
      case 'pause':
        (bars.get(op[1])!.bar as ToolkitBar).pause();
        break;
      case 'unpause':
        (bars.get(op[1])!.bar as ToolkitBar).unpause();
        break;
      case 'close': {
        const { bar, leave } = bars.get(op[1])!;
        bar.close(leave);
        break;
      }
    }
  }
  return chunks;
}
