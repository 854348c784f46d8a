import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TrainerOutputParser, type TrainerEvent } from '../../agents/parse.js';
import { REFERENCE_TRANSCRIPT, ofType } from './helpers.js';
import { merged, reportedLosses, transcript as drawn, type Transcript } from './transcripts.js';

const transcript = readFileSync(REFERENCE_TRANSCRIPT);
const NAME = 'my_first_flux_lora_v1';

// Read off stdout-sample.txt by hand: the first line of each step whose loss text changed.
const REFERENCE_LOSSES = [
  '4.699e-01', '3.041e-01', '4.675e-01', '4.437e-01', '5.420e-01', '5.932e-01', '3.569e-01', '5.429e-01',
  '3.751e-01', '3.902e-01', '4.831e-01', '3.897e-01', '4.176e-01', '2.972e-01', '5.462e-01', '3.890e-01',
  '4.438e-01', '2.941e-01', '3.645e-01', '2.927e-01', '3.784e-01', '5.208e-01', '3.915e-01', '3.944e-01',
  '5.090e-01', '3.508e-01', '3.230e-01', '2.742e-01', '3.338e-01', '3.210e-01',
].map(Number);

function parseAll(input: string | Buffer, options?: ConstructorParameters<typeof TrainerOutputParser>[0]): TrainerEvent[] {
  const parser = new TrainerOutputParser(options);
  return [...parser.push(input), ...parser.end()];
}

/** A training bar line as tqdm draws it when piped. */
function bar(n: number, total: number, postfix: string | null, meter = '00:10<00:20,  1.50s/it', barText = '█▌        '): string {
  const pct = String(Math.round((n / total) * 100)).padStart(3);
  return `\r${NAME}: ${pct}%|${barText}| ${n}/${total} [${meter}${postfix === null ? '' : `, ${postfix}`}]`;
}

/** A seeded PRNG, so the random chunking is the same on every run. */
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('the reference transcript (stdout-sample.txt)', () => {
  const events = parseAll(transcript);

  it('yields exactly 30 losses, at steps 0–29, with the values printed', () => {
    const losses = ofType(events, 'loss');
    expect(losses.map((l) => l.step)).toEqual([...Array(30).keys()]);
    expect(losses.map((l) => l.loss)).toEqual(REFERENCE_LOSSES);
    expect(losses.every((l) => l.lr === 1e-4)).toBe(true);
  });

  it('agrees with a second, independent reading: a step’s loss is the one on the last line that shows that step', () => {
    const lastLossAt = new Map<number, number>();
    for (const segment of transcript.toString('utf8').split(/[\r\n]/)) {
      const m = /^my_first_flux_lora_v1: +\d+%\|[^|]*\| (\d+)\/30 \[.*loss: (\S+)\]\s*$/.exec(segment);
      if (m) lastLossAt.set(Number(m[1]), Number(m[2]));
    }
    const expected = [...Array(30).keys()].map((step) => lastLossAt.get(step));
    expect(expected).toEqual(REFERENCE_LOSSES);
  });

  it('reports the saves, the checkpoint and optimizer state written at each and the one pruned, in order', () => {
    const markers = events.filter((e) => e.type !== 'loss' && e.type !== 'progress');
    expect(markers).toEqual([
      { type: 'saving', step: 10 },
      { type: 'checkpoint_saved', path: `output/${NAME}/${NAME}_000000010.safetensors` },
      { type: 'optimizer_saved', path: `output/${NAME}/optimizer.pt` },
      { type: 'saving', step: 20 },
      { type: 'checkpoint_saved', path: `output/${NAME}/${NAME}_000000020.safetensors` },
      { type: 'optimizer_saved', path: `output/${NAME}/optimizer.pt` },
      { type: 'checkpoint_removed', path: `output/${NAME}/${NAME}_000000010.safetensors` },
      { type: 'checkpoint_saved', path: `output/${NAME}/${NAME}.safetensors` },
      { type: 'optimizer_saved', path: `output/${NAME}/optimizer.pt` },
    ]);
  });

  it('reports progress from the training bar only, converting its rate and ETA', () => {
    const progress = ofType(events, 'progress');
    expect(progress.every((p) => p.totalSteps === 30)).toBe(true);
    expect(progress[0]).toEqual({ type: 'progress', step: 0, totalSteps: 30, secondsPerStep: null, etaSeconds: null, lr: 1e-4 });
    expect(progress.find((p) => p.step === 1)).toEqual({
      type: 'progress',
      step: 1,
      totalSteps: 30,
      secondsPerStep: 1.29,
      etaSeconds: 37,
      lr: 1e-4,
    });
    // The sampling bars (…s/it, 2 images) and the latent caching bars (12 images) never count.
    expect(progress.some((p) => p.secondsPerStep === 10.95 || p.totalSteps === 12 || p.totalSteps === 2)).toBe(false);
    expect(progress.at(-1)).toMatchObject({ step: 30, etaSeconds: 0 });
  });

  it('keeps a tail of cleaned lines, one per bar rather than one per refresh, without escape codes', () => {
    const parser = new TrainerOutputParser();
    parser.push(transcript);
    parser.end();
    const tail = parser.tail();
    expect(tail.length).toBeLessThanOrEqual(100);
    expect(tail.at(-1)).toBe('Generating Images: 100%|██████████| 2/2 [00:22<00:00, 11.06s/it]');
    expect(tail).toContain(`Saved checkpoint to output/${NAME}/${NAME}.safetensors`);
    expect(tail).toContain(`${NAME}: 100%|██████████| 30/30 [01:06<00:00,  2.22s/it, lr: 1.0e-04 loss: 3.210e-01]`);
    expect(tail.filter((l) => l.startsWith(`${NAME}:`)).length).toBe(3); // one per stretch of training
    expect(tail.some((l) => l.includes('\x1b') || l.includes('\r') || l.endsWith(' '))).toBe(false);
  });

  it('with trainingBarName given, counts the same bar from its very first (postfix-less) line', () => {
    const named = parseAll(transcript, { trainingBarName: NAME });
    expect(ofType(named, 'loss').map((l) => l.loss)).toEqual(REFERENCE_LOSSES);
    expect(parseAll(transcript, NAME)).toEqual(named);
    expect(ofType(named, 'progress')[0]).toMatchObject({ step: 0, secondsPerStep: null, lr: null });
  });
});

/** Feeds a transcript as the agent gets it: stdout and stderr on their own pipes, chunk by chunk. */
function parseStreams(t: Transcript, options?: ConstructorParameters<typeof TrainerOutputParser>[0]): TrainerEvent[] {
  const parser = new TrainerOutputParser(options ?? { trainingBarName: t.scenario.name });
  return [...t.chunks.flatMap(([stream, text]) => parser.push(Buffer.from(text), stream)), ...parser.end()];
}

const lossPairs = (events: TrainerEvent[]) => ofType(events, 'loss').map((l) => [l.step, l.loss] as const);

/** The training bar's lines, cleaned: the cut ones keep whatever tqdm left of them. */
function barLines(t: Transcript): string[] {
  return merged(t)
    .split(/[\r\n]/)
    .map((l) => l.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').trimEnd())
    .filter((l) => l.startsWith(`${t.scenario.name}:`));
}

describe('transcripts drawn by real tqdm (ai-toolkit’s loop replayed through tqdm 4.70.1)', () => {
  describe.each(['equal-losses', 'oom-abort', 'resume', 'fast-steps', 'width-200'])('%s', (file) => {
    const t = drawn(file);

    it('yields every loss the trainer reported, at its step, each step once, and nothing else', () => {
      expect(lossPairs(parseStreams(t))).toEqual(reportedLosses(t));
    });

    it('the same from the merged output (2>&1), without the bar’s name, and fed a byte at a time', () => {
      expect(lossPairs(parseAll(merged(t)))).toEqual(reportedLosses(t));
      const parser = new TrainerOutputParser(t.scenario.name);
      const bytes = Buffer.from(merged(t));
      const events: TrainerEvent[] = [];
      for (let i = 0; i < bytes.length; i++) events.push(...parser.push(bytes.subarray(i, i + 1)));
      events.push(...parser.end());
      expect(lossPairs(events)).toEqual(reportedLosses(t));
    });
  });

  it('equal consecutive losses are as many points: plain ones, one right after a save and a sample, and the last step', () => {
    const t = drawn('equal-losses');
    const losses = new Map(lossPairs(parseStreams(t)));
    const equal = t.scenario.equal_after!;
    expect(equal).toEqual(expect.arrayContaining([4, 5, 11, 39])); // 11: the step after the save and sample at 10
    for (const step of equal) {
      expect(losses.get(step), `step ${step}`).toBe(losses.get(step - 1));
      expect(losses.has(step)).toBe(true);
    }
    expect(losses.size).toBe(40);
  });

  it('fast steps, whose redraws tqdm’s throttle drops, still give every step', () => {
    const t = drawn('fast-steps');
    // Most steps are drawn once: the throttle really did drop their n += 1 redraws.
    expect(barLines(t).length).toBeLessThan(1.5 * t.scenario.steps);
    expect(lossPairs(parseStreams(t)).map(([step]) => step)).toEqual(Object.keys(t.reported).map(Number));
  });

  it('OOM: a skipped batch leaves no point, three in a row abort with the trainer’s message', () => {
    const t = drawn('oom-abort');
    const events = parseStreams(t);
    expect(ofType(events, 'oom_skip').map((e) => e.batch)).toEqual([1, 1, 2, 1, 2, 3]);
    const steps = lossPairs(events).map(([step]) => step);
    for (const skipped of t.scenario.oom!) expect(steps).not.toContain(skipped);
    expect(steps.at(-1)).toBe(30);
    expect(ofType(events, 'error')).toEqual([{ type: 'error', message: 'OOM during training step 3 times in a row, aborting training' }]);
  });

  it('a resumed run: the resume lines, and a bar that starts at the checkpoint’s step', () => {
    const t = drawn('resume');
    const events = parseStreams(t);
    expect(ofType(events, 'resuming')).toEqual([{ type: 'resuming', path: 'output/lora_resumed_1a2b3c4d/lora_resumed_1a2b3c4d_000000250.safetensors' }]);
    expect(ofType(events, 'resume_step')).toEqual([{ type: 'resume_step', step: 250 }]);
    expect(ofType(events, 'progress')[0]).toMatchObject({ step: 250, totalSteps: 300 });
    expect(lossPairs(events)[0]).toEqual([250, Number(t.reported['250'])]);
  });

  it('200 columns: a long run name and the whole meter fit, every loss is read', () => {
    const t = drawn('width-200');
    expect(barLines(t).every((l) => [...l].length <= 199 && l.endsWith(']'))).toBe(true);
    expect(lossPairs(parseStreams(t))).toEqual(reportedLosses(t));
  });

  it('120 columns cut a long-named run’s lines before the loss: progress is read, no loss is made up', () => {
    const t = drawn('width-120');
    expect(barLines(t).some((l) => /loss: \d\.\d{3}e[+-]\d\d/.test(l))).toBe(false);
    expect(barLines(t).some((l) => l.endsWith('loss: 4'))).toBe(true); // step 0's, cut after its first digit
    const events = parseStreams(t);
    expect(ofType(events, 'loss')).toEqual([]);
    expect(ofType(events, 'progress').at(-1)).toMatchObject({ step: 30, totalSteps: 30 });
  });

  it('80 columns leave a long-named run only its name and percentage: nothing is read, nothing made up', () => {
    const t = drawn('width-80');
    const events = parseStreams(t);
    expect(events.filter((e) => e.type === 'loss' || e.type === 'progress')).toEqual([]);
    expect(ofType(events, 'saving').map((e) => e.step)).toEqual([10, 20]);
  });

  it('lines cut inside the postfix: every loss a line shows whole is read, with or without its "]", and none that was cut', () => {
    const t = drawn('cut-postfix');
    const lines = barLines(t);
    const whole = (l: string) => /loss: \d\.\d{3}e[+-]\d\d\]?$/.test(l);
    // The scenario has all three kinds of line.
    expect(lines.some((l) => l.endsWith(']'))).toBe(true);
    expect(lines.some((l) => !l.endsWith(']') && whole(l))).toBe(true);
    expect(lines.some((l) => l.includes('loss: ') && !whole(l))).toBe(true);
    // The latest line showing a step is that step's own: it says whether its loss can be read.
    const latest = new Map<number, string>();
    for (const l of lines) latest.set(Number(/\| (\d+)\/\d+ \[/.exec(l)![1]), l);
    const readable = Object.keys(t.reported)
      .map(Number)
      .filter((step) => whole(latest.get(step)!));
    expect(readable.length).toBeGreaterThan(90);
    expect(lossPairs(parseStreams(t))).toEqual(readable.map((step) => [step, Number(t.reported[String(step)])]));
  });
});

describe('the end of the output', () => {
  it('a trainer killed after the redraw of its last step gives no point for the step that never reported', () => {
    const events = parseAll(
      bar(4, 30, 'lr: 1.0e-04 loss: 3.000e-01') + bar(4, 30, 'lr: 1.0e-04 loss: 3.100e-01') + bar(5, 30, 'lr: 1.0e-04 loss: 3.100e-01'),
      NAME,
    );
    expect(lossPairs(events)).toEqual([[4, 0.31]]);
    expect(ofType(events, 'progress').at(-1)).toMatchObject({ step: 5 });
  });

  it('a trainer stopped while saving keeps the step it had reported', () => {
    const events = parseAll(
      bar(10, 30, 'lr: 1.0e-04 loss: 3.000e-01') + bar(10, 30, 'lr: 1.0e-04 loss: 3.000e-01') + '\nSaving at step 10\n\nJob stopped\n',
      NAME,
    );
    expect(lossPairs(events)).toEqual([[10, 0.3]]);
  });

  it('the closing redraw at the total is no step: the last step is read, nothing at the total', () => {
    const events = parseAll(
      bar(29, 30, 'lr: 1.0e-04 loss: 3.000e-01') +
        bar(29, 30, 'lr: 1.0e-04 loss: 3.000e-01') +
        bar(30, 30, 'lr: 1.0e-04 loss: 3.000e-01') +
        bar(30, 30, 'lr: 1.0e-04 loss: 3.000e-01') +
        '\n',
      NAME,
    );
    expect(lossPairs(events)).toEqual([[29, 0.3]]);
  });

  it('a cut line with the run’s error glued to it: the error is read', () => {
    const cut = `\r${NAME}:  17%|▏| 5/30 [00:10<00:50,  2.00s/it, lr: 1.0e-04 loss: 3.1`;
    const events = parseAll(`${cut}Error running job: OOM during training step 3 times in a row, aborting training\n`, NAME);
    expect(ofType(events, 'error')).toEqual([{ type: 'error', message: 'OOM during training step 3 times in a row, aborting training' }]);
    expect(ofType(events, 'loss')).toEqual([]);
  });
});

describe('chunk boundaries', () => {
  const whole = parseAll(transcript);

  it('gives the same events when fed one byte at a time (UTF-8 bar characters cut in the middle)', () => {
    const parser = new TrainerOutputParser();
    const events: TrainerEvent[] = [];
    for (let i = 0; i < transcript.length; i++) events.push(...parser.push(transcript.subarray(i, i + 1)));
    events.push(...parser.end());
    expect(events).toEqual(whole);
  });

  it('gives the same events for random chunk sizes, as Buffers and as strings', () => {
    const random = mulberry32(7);
    for (let round = 0; round < 20; round++) {
      const bufferParser = new TrainerOutputParser();
      const events: TrainerEvent[] = [];
      for (let i = 0; i < transcript.length; ) {
        const size = 1 + Math.floor(random() * 400);
        events.push(...bufferParser.push(transcript.subarray(i, i + size)));
        i += size;
      }
      events.push(...bufferParser.end());
      expect(events).toEqual(whole);
    }
    const text = transcript.toString('utf8');
    const stringParser = new TrainerOutputParser();
    const fromStrings: TrainerEvent[] = [];
    for (let i = 0; i < text.length; i += 37) fromStrings.push(...stringParser.push(text.slice(i, i + 37)));
    fromStrings.push(...stringParser.end());
    expect(fromStrings).toEqual(whole);
  });

  it('reports progress as soon as a refresh is drawn, and a step’s loss as soon as a line shows it is the step’s own', () => {
    const parser = new TrainerOutputParser();
    // set_postfix_str for step 2: the first line seen, so it may still be the redraw of step 1.
    expect(parser.push(bar(2, 30, 'lr: 1.0e-04 loss: 3.000e-01'))).toEqual([
      { type: 'progress', step: 2, totalSteps: 30, secondsPerStep: 1.5, etaSeconds: 20, lr: 1e-4 },
    ]);
    // The refresh's padding: nothing is reported twice.
    expect(parser.push('   ')).toEqual([]);
    // n += 1 redraws it at 3: step 2 is over, and its line was its own.
    expect(parser.push(bar(3, 30, 'lr: 1.0e-04 loss: 3.000e-01', '00:11<00:20,  1.5s/it') + '  ')).toEqual([
      { type: 'progress', step: 3, totalSteps: 30, secondsPerStep: 1.5, etaSeconds: 20, lr: 1e-4 },
      { type: 'loss', step: 2, loss: 0.3, lr: 1e-4 },
    ]);
    // set_postfix_str for step 3: a second line at 3 is step 3's own, reported at once.
    expect(parser.push(bar(3, 30, 'lr: 1.0e-04 loss: 3.100e-01', '00:12<00:20,  1.5s/it'))).toEqual([
      { type: 'loss', step: 3, loss: 0.31, lr: 1e-4 },
    ]);
    expect(parser.push(bar(4, 30, 'lr: 1.0e-04 loss: 3.100e-01', '00:12<00:18,  1.50s/it'))).toEqual([
      { type: 'progress', step: 4, totalSteps: 30, secondsPerStep: 1.5, etaSeconds: 18, lr: 1e-4 },
    ]);
    // A print() that lands on the bar's line in a later chunk is still read.
    expect(parser.push('# OOM during training ')).toEqual([]);
    expect(parser.push('step, skipping batch 1/3 #\n')).toEqual([{ type: 'oom_skip', batch: 1, of: 3 }]);
    // Step 4 showed only the redraw of step 3: it never reported.
    expect(parser.end()).toEqual([]);
  });

  it('flushes a last line that has no line break at end()', () => {
    const parser = new TrainerOutputParser();
    expect(parser.push('Saving at step 25')).toEqual([]);
    expect(parser.end()).toEqual([{ type: 'saving', step: 25 }]);
  });

  it('keeps stdout and stderr lines apart when they arrive interleaved on separate pipes', () => {
    const parser = new TrainerOutputParser();
    const line = bar(10, 30, 'lr: 1.0e-04 loss: 4.123e-01');
    const events = [
      ...parser.push(bar(10, 30, 'lr: 1.0e-04 loss: 3.999e-01'), 'stderr'),
      ...parser.push(line.slice(0, 60), 'stderr'),
      ...parser.push('\nSaving at', 'stdout'),
      ...parser.push(line.slice(60), 'stderr'),
      ...parser.push(' step 10\nSaved checkpoint to /o/x_000000010.safetensors\n', 'stdout'),
      ...parser.end(),
    ];
    expect(ofType(events, 'loss')).toEqual([{ type: 'loss', step: 10, loss: 0.4123, lr: 1e-4 }]);
    expect(events.filter((e) => e.type === 'saving' || e.type === 'checkpoint_saved')).toEqual([
      { type: 'saving', step: 10 },
      { type: 'checkpoint_saved', path: '/o/x_000000010.safetensors' },
    ]);
  });
});

describe('bar formats', () => {
  it('reads ASCII-mode bars (# and digits)', () => {
    const events = parseAll(
      bar(15, 30, 'lr: 1.0e-04 loss: 1.234e-01', '00:10<00:10,  1.50it/s', '#####     ') +
        bar(16, 30, 'lr: 1.0e-04 loss: 1.111e-01', '00:11<00:09,  1.50it/s', '#####3    ') +
        '\n',
    );
    expect(ofType(events, 'loss').map((l) => [l.step, l.loss])).toEqual([
      [15, 0.1234],
      [16, 0.1111],
    ]);
  });

  it('reads bars of any width (a terminal or COLUMNS fills the line)', () => {
    const wide = '█'.repeat(57) + '▍' + ' '.repeat(62);
    const events = parseAll(
      bar(145, 300, 'lr: 4.0e-04 loss: 2.600e-01', '03:00<03:12,  1.24s/it', wide) +
        bar(145, 300, 'lr: 4.0e-04 loss: 2.500e-01', '03:00<03:12,  1.24s/it', wide) +
        '\n',
    );
    expect(ofType(events, 'loss')).toEqual([{ type: 'loss', step: 145, loss: 0.25, lr: 4e-4 }]);
    expect(ofType(events, 'progress')[0]).toMatchObject({ step: 145, totalSteps: 300, secondsPerStep: 1.24, etaSeconds: 192 });
  });

  it('turns it/s into seconds per step, keeps s/it, and reads hour-long ETAs', () => {
    const events = parseAll(
      bar(5, 3000, 'lr: 1.0e-04 loss: 3.000e-01', '00:02<20:50,  2.50it/s') +
        bar(6, 3000, 'lr: 1.0e-04 loss: 3.100e-01', '00:05<2:04:44,  2.50s/it') +
        '\n',
    );
    const progress = ofType(events, 'progress');
    expect(progress[0]).toMatchObject({ step: 5, secondsPerStep: 0.4, etaSeconds: 20 * 60 + 50 });
    expect(progress[1]).toMatchObject({ step: 6, secondsPerStep: 2.5, etaSeconds: 2 * 3600 + 4 * 60 + 44 });
  });

  it('gives null rate and ETA while tqdm shows "?"', () => {
    const events = parseAll(bar(0, 30, null, '00:00<?, ?it/s') + bar(0, 30, 'lr: 1.0e-04 loss: 4.699e-01', '00:01<?, ?it/s') + '\n', NAME);
    expect(ofType(events, 'progress')).toEqual([
      { type: 'progress', step: 0, totalSteps: 30, secondsPerStep: null, etaSeconds: null, lr: null },
      { type: 'progress', step: 0, totalSteps: 30, secondsPerStep: null, etaSeconds: null, lr: 1e-4 },
    ]);
    expect(ofType(events, 'loss')).toEqual([{ type: 'loss', step: 0, loss: 0.4699, lr: 1e-4 }]);
  });

  it('ignores a bar with a loss postfix but another desc when trainingBarName is given', () => {
    const line =
      '\rsomething_else:  50%|█████     | 5/10 [00:05<00:05,  1.00s/it, lr: 1.0e-04 loss: 3.000e-01]' +
      '\rsomething_else:  50%|█████     | 5/10 [00:06<00:05,  1.00s/it, lr: 1.0e-04 loss: 2.000e-01]\n';
    expect(parseAll(line, { trainingBarName: NAME })).toEqual([]);
    expect(ofType(parseAll(line), 'loss')).toHaveLength(1);
  });

  it('takes the `loss` entry when the postfix lists several', () => {
    const events = parseAll(bar(3, 30, 'lr: 1.0e-04 grad: 9.000e-01 loss: 3.000e-01') + bar(3, 30, 'lr: 1.0e-04 grad: 9.000e-01 loss: 2.000e-01') + '\n');
    expect(ofType(events, 'loss')).toEqual([{ type: 'loss', step: 3, loss: 0.2, lr: 1e-4 }]);
  });
});

describe('markers', () => {
  it('reads the resume lines', () => {
    const events = parseAll(
      '#### IMPORTANT RESUMING FROM /runs/out/x/x_000000250.safetensors ####\n' +
        'Found step 250 in metadata, starting from there\n',
    );
    expect(events).toEqual([
      { type: 'resuming', path: '/runs/out/x/x_000000250.safetensors' },
      { type: 'resume_step', step: 250 },
    ]);
  });

  it('reads OOM skips, also when print() lands on the open bar line, and gives a skipped step no point', () => {
    const events = parseAll(
      bar(7, 30, 'lr: 1.0e-04 loss: 3.000e-01') + // step 6's redraw at n = 7
        bar(7, 30, 'lr: 1.0e-04 loss: 3.000e-01') + // step 7's own, the same text
        bar(8, 30, 'lr: 1.0e-04 loss: 3.000e-01') + // step 7's redraw
        '# OOM during training step, skipping batch 1/3 #\n' + // step 8: no postfix
        bar(9, 30, 'lr: 1.0e-04 loss: 3.000e-01') + // its redraw, still showing step 7's loss
        '# OOM during training step, skipping batch 2/3 #\n' + // step 9: no postfix
        bar(10, 30, 'lr: 1.0e-04 loss: 3.000e-01') +
        bar(10, 30, 'lr: 1.0e-04 loss: 2.500e-01') + // step 10's own
        '\n',
    );
    expect(ofType(events, 'oom_skip')).toEqual([
      { type: 'oom_skip', batch: 1, of: 3 },
      { type: 'oom_skip', batch: 2, of: 3 },
    ]);
    expect(ofType(events, 'loss').map((l) => [l.step, l.loss])).toEqual([
      [7, 0.3],
      [10, 0.25],
    ]);
  });

  it('reads a glued marker after a shorter redraw padded with spaces', () => {
    const events = parseAll(bar(7, 30, 'lr: 1.0e-04 loss: 3.000e-01') + '     Saving at step 7\n');
    expect(ofType(events, 'saving')).toEqual([{ type: 'saving', step: 7 }]);
  });

  it('reads "Job stopped"', () => {
    expect(parseAll(bar(3, 30, 'lr: 1.0e-04 loss: 3.000e-01') + '\nJob stopped\n').at(-1)).toEqual({ type: 'job_stopped' });
  });

  it('reads "Error running job:" and joins the lines of a multi-line message, up to the result banner', () => {
    const output =
      'Loading transformer\n' +
      'Error running job: 401 Client Error. (Request ID: Root=1-abc)\n' +
      '\n' +
      'Cannot access gated repo for url https://huggingface.co/black-forest-labs/FLUX.1-dev/resolve/main/transformer/config.json.\n' +
      'Access to model black-forest-labs/FLUX.1-dev is restricted. You must have access to it and be authenticated to access it. Please log in.\n' +
      '\n' +
      '========================================\n' +
      'Result:\n' +
      ' - 0 completed jobs\n' +
      ' - 1 failure\n' +
      '========================================\n' +
      'Traceback (most recent call last):\n' +
      '  File "/workspace/ai-toolkit/run.py", line 120, in <module>\n' +
      '    main()\n' +
      'huggingface_hub.errors.GatedRepoError: 401 Client Error.\n';
    expect(parseAll(output)).toEqual([
      {
        type: 'error',
        message:
          '401 Client Error. (Request ID: Root=1-abc)\n' +
          'Cannot access gated repo for url https://huggingface.co/black-forest-labs/FLUX.1-dev/resolve/main/transformer/config.json.\n' +
          'Access to model black-forest-labs/FLUX.1-dev is restricted. You must have access to it and be authenticated to access it. Please log in.',
      },
    ]);
  });

  it('reads a one-line error glued to the bar, and emits it at end() when nothing follows', () => {
    const events = parseAll(bar(5, 30, 'lr: 1.0e-04 loss: 3.000e-01') + 'Error running job: CUDA out of memory. Tried to allocate 2.00 GiB');
    expect(ofType(events, 'error')).toEqual([{ type: 'error', message: 'CUDA out of memory. Tried to allocate 2.00 GiB' }]);
  });
});

describe('third-party noise', () => {
  it('never yields loss or progress from download bars, shard loading, warnings, tracebacks or other tqdm bars', () => {
    const noise = [
      '\rmodel-00001-of-00003.safetensors:  45%|████▌     | 4.50G/9.98G [00:30<00:37, 148MB/s]',
      '\rmodel-00001-of-00003.safetensors: 100%|██████████| 9.98G/9.98G [01:07<00:00, 148MB/s]\n',
      '\rFetching 3 files: 100%|██████████| 3/3 [01:07<00:00, 22.50s/it]\n',
      '\rLoading checkpoint shards:  50%|█████     | 1/2 [00:01<00:01,  1.10s/it]',
      '\rLoading checkpoint shards: 100%|██████████| 2/2 [00:02<00:00,  1.05s/it]\n',
      "/usr/local/lib/python3.11/site-packages/torch/utils/checkpoint.py:91: UserWarning: None of the inputs have requires_grad=True. Gradients will be None\n",
      '  warnings.warn(\n',
      'Traceback (most recent call last):\n',
      '  File "/workspace/ai-toolkit/toolkit/dataloader_mixins.py", line 1042, in cache_latents_all_latents\n',
      '    raise ValueError("Error running job: a quoted marker inside a traceback line")\n',
      'ValueError: boom | 50%|\n',
      '\rCaching latents to disk:  50%|█████     | 6/12 [00:01<00:01,  4.76it/s]\n',
      '\rGenerating Images:  50%|█████     | 1/2 [00:10<00:10, 10.95s/it]\x1b[A\n',
      '\r  0%|          | 0/12 [00:00<?, ?it/s]\r100%|██████████| 12/12 [00:00<00:00, 250.00it/s]\n',
      '\x1b[31mred text\x1b[0m with a ] bracket and %| in it\n',
      '\u0000\u0007 binary garbage \uFFFD\n',
    ].join('');
    const parser = new TrainerOutputParser();
    const events = [...parser.push(noise), ...parser.end()];
    expect(events).toEqual([]);
    expect(parser.tail()).toContain('red text with a ] bracket and %| in it');
  });

  it('still reads the training bar between the noise', () => {
    const events = parseAll(
      '\rLoading checkpoint shards: 100%|██████████| 2/2 [00:02<00:00,  1.05s/it]\n' +
        'some warning\n' +
        bar(0, 30, 'lr: 1.0e-04 loss: 4.000e-01', '00:01<?, ?it/s') +
        bar(1, 30, 'lr: 1.0e-04 loss: 4.000e-01', '00:01<00:37,  1.29s/it') +
        '\n\rGenerating Images:  50%|█████     | 1/2 [00:10<00:10, 10.95s/it]\x1b[A\n' +
        bar(1, 30, 'lr: 1.0e-04 loss: 3.000e-01', '00:04<00:37,  1.29s/it') +
        '\n',
    );
    expect(ofType(events, 'loss').map((l) => [l.step, l.loss])).toEqual([
      [0, 0.4],
      [1, 0.3],
    ]);
  });

  it('keeps only the last 100 lines', () => {
    const parser = new TrainerOutputParser();
    for (let i = 0; i < 250; i++) parser.push(`line ${i}\n`);
    const tail = parser.tail();
    expect(tail).toHaveLength(100);
    expect(tail[0]).toBe('line 150');
    expect(tail[99]).toBe('line 249');
  });
});
