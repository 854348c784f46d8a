import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TrainerOutputParser, type TrainerEvent } from '../../agents/parse.js';
import { REFERENCE_TRANSCRIPT, ofType } from './helpers.js';

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

  it('reports the saves, the checkpoint written at each and the one pruned, in order', () => {
    const markers = events.filter((e) => e.type !== 'loss' && e.type !== 'progress');
    expect(markers).toEqual([
      { type: 'saving', step: 10 },
      { type: 'checkpoint_saved', path: `output/${NAME}/${NAME}_000000010.safetensors` },
      { type: 'saving', step: 20 },
      { type: 'checkpoint_saved', path: `output/${NAME}/${NAME}_000000020.safetensors` },
      { type: 'checkpoint_removed', path: `output/${NAME}/${NAME}_000000010.safetensors` },
      { type: 'checkpoint_saved', path: `output/${NAME}/${NAME}.safetensors` },
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

  it('reports a bar refresh as soon as it is drawn, not a step later when the next one breaks the line', () => {
    const parser = new TrainerOutputParser();
    expect(parser.push(bar(3, 30, 'lr: 1.0e-04 loss: 3.000e-01'))).toEqual([
      { type: 'progress', step: 3, totalSteps: 30, secondsPerStep: 1.5, etaSeconds: 20, lr: 1e-4 },
      { type: 'loss', step: 3, loss: 0.3, lr: 1e-4 },
    ]);
    // The refresh's padding, then the next refresh: nothing is reported twice.
    expect(parser.push('   ')).toEqual([]);
    // A shorter redraw comes padded with spaces to cover the longer one; it is complete all the same.
    expect(parser.push(bar(3, 30, 'lr: 1.0e-04 loss: 3.100e-01', '00:11<00:20,  1.5s/it') + '  ')).toEqual([
      { type: 'progress', step: 3, totalSteps: 30, secondsPerStep: 1.5, etaSeconds: 20, lr: 1e-4 },
      { type: 'loss', step: 3, loss: 0.31, lr: 1e-4 },
    ]);
    expect(parser.push(bar(4, 30, 'lr: 1.0e-04 loss: 3.100e-01', '00:12<00:18,  1.50s/it'))).toEqual([
      { type: 'progress', step: 4, totalSteps: 30, secondsPerStep: 1.5, etaSeconds: 18, lr: 1e-4 },
    ]);
    // A print() that lands on the bar's line in a later chunk is still read.
    expect(parser.push('# OOM during training ')).toEqual([]);
    expect(parser.push('step, skipping batch 1/3 #\n')).toEqual([{ type: 'oom_skip', batch: 1, of: 3 }]);
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
    const events = parseAll(bar(145, 300, 'lr: 4.0e-04 loss: 2.500e-01', '03:00<03:12,  1.24s/it', wide) + '\n');
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
    const events = parseAll(bar(0, 30, 'lr: 1.0e-04 loss: 4.699e-01', '00:01<?, ?it/s') + '\n');
    expect(ofType(events, 'progress')).toEqual([
      { type: 'progress', step: 0, totalSteps: 30, secondsPerStep: null, etaSeconds: null, lr: 1e-4 },
    ]);
    expect(ofType(events, 'loss')).toEqual([{ type: 'loss', step: 0, loss: 0.4699, lr: 1e-4 }]);
  });

  it('ignores a bar with a loss postfix but another desc when trainingBarName is given', () => {
    const line = '\rsomething_else:  50%|█████     | 5/10 [00:05<00:05,  1.00s/it, lr: 1.0e-04 loss: 2.000e-01]\n';
    expect(parseAll(line, { trainingBarName: NAME })).toEqual([]);
    expect(ofType(parseAll(line), 'loss')).toHaveLength(1);
  });

  it('takes the `loss` entry when the postfix lists several', () => {
    const events = parseAll(bar(3, 30, 'lr: 1.0e-04 grad: 9.000e-01 loss: 2.000e-01') + '\n');
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

  it('reads OOM skips, also when print() lands on the open bar line', () => {
    const events = parseAll(
      bar(7, 30, 'lr: 1.0e-04 loss: 3.000e-01') +
        '# OOM during training step, skipping batch 1/3 #\n' +
        '# OOM during training step, skipping batch 2/3 #\n',
    );
    expect(ofType(events, 'oom_skip')).toEqual([
      { type: 'oom_skip', batch: 1, of: 3 },
      { type: 'oom_skip', batch: 2, of: 3 },
    ]);
    expect(ofType(events, 'loss')).toEqual([{ type: 'loss', step: 7, loss: 0.3, lr: 1e-4 }]);
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
