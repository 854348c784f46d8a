// The fake trainer end to end, as a child process: what it prints against the reference transcript,
// the files it leaves, and each way it can be told to fail. Nothing here waits on a clock: tests
// that interrupt a run wait for the parser to see a given step first.
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { lossText, sampleItems } from '../../agents/fake-trainer.js';
import { parseSampleFileName } from '../../agents/files.js';
import { TrainerOutputParser, type TrainerEvent } from '../../agents/parse.js';
import { readSafetensorsMetadata } from '../../agents/safetensors.js';
import {
  FAKE_TRAINER,
  killStrayTrainers,
  REFERENCE_TRANSCRIPT,
  REPO_ROOT,
  ofType,
  runFakeTrainer,
  runFakeTrainerMerged,
  startFakeTrainer,
  tempDir,
  writeReferenceConfig,
} from './helpers.js';

const NAME = 'my_first_flux_lora_v1';
const REFERENCE_FOLDER = '/data/datasets/p3r5on';

afterEach(killStrayTrainers);

async function makeDataset(dir: string, images = 12): Promise<string> {
  const folder = path.join(dir, 'p3r5on');
  await mkdir(folder, { recursive: true });
  for (let i = 0; i < images; i++) await writeFile(path.join(folder, `img${i}.jpg`), 'jpeg bytes');
  return folder;
}

/** A workspace with a dataset and the reference config pointed at it, plus changes. */
async function workspace(changes: [(string | number)[], unknown][] = []) {
  const { dir, cleanup } = await tempDir('fake-trainer');
  const dataset = await makeDataset(dir);
  const config = await writeReferenceConfig(dir, [[['datasets', 0, 'folder_path'], dataset], ...changes]);
  return { dir, dataset, config, cleanup, output: path.join(dir, 'output', NAME) };
}

function lossSteps(events: TrainerEvent[]): number[] {
  return ofType(events, 'loss').map((l) => l.step);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/**
 * What may differ between two runs of the same scenario: times, rates, ETAs, loss values and the
 * blanks tqdm pads with to cover a longer previous line (their count follows the rate's width).
 */
function normalise(text: string): string {
  return text
    .replace(/\[[\d:]+<[\d:?]+, +(?:[\d.]+|\?)(?:it\/s|s\/it)/g, '[TIME, RATE')
    .replace(/loss: \d\.\d{3}e[+-]\d\d/g, 'loss: LOSS')
    .replace(/ +(?=[\r\n\x1b]|$)/g, '');
}

describe('the reference scenario', () => {
  const transcript = readFileSync(REFERENCE_TRANSCRIPT);
  let ws: Awaited<ReturnType<typeof workspace>>;
  let output: Buffer;
  let code: number | null;

  beforeAll(async () => {
    ws = await workspace();
    // stdout and stderr on one descriptor, as the reference was captured (2>&1), with steps as long
    // as a GPU's (on the bars' clock): tqdm then draws every step twice, as in the reference.
    ({ code, output } = await runFakeTrainerMerged(ws.config, {
      cwd: ws.dir,
      outputFile: path.join(ws.dir, 'merged.txt'),
      env: { FAKE_SECONDS_PER_STEP: '2' },
    }));
  });
  afterAll(async () => {
    await ws.cleanup();
  });

  it('prints stdout-sample.txt byte for byte, apart from timings, rates and loss values', () => {
    expect(code).toBe(0);
    const ours = normalise(output.toString('utf8').replaceAll(ws.dataset, REFERENCE_FOLDER));
    const theirs = normalise(transcript.toString('utf8'));
    // Compared line by line first, so a failure names the line.
    const ourLines = ours.split('\n');
    const theirLines = theirs.split('\n');
    for (let i = 0; i < Math.max(ourLines.length, theirLines.length); i++) {
      expect(JSON.stringify(ourLines[i]), `line ${i}`).toBe(JSON.stringify(theirLines[i]));
    }
    expect(ours).toBe(theirs);
  });

  it('gives the parser the same events as the transcript (loss values and timings aside)', () => {
    const shape = (events: TrainerEvent[]) =>
      events.map((e) => {
        if (e.type === 'loss') return { type: e.type, step: e.step, lr: e.lr };
        if (e.type === 'progress') {
          return { type: e.type, step: e.step, totalSteps: e.totalSteps, lr: e.lr, rated: e.secondsPerStep !== null };
        }
        return e;
      });
    const parse = (bytes: Buffer) => {
      const parser = new TrainerOutputParser();
      return [...parser.push(bytes), ...parser.end()];
    };
    const ours = parse(output);
    const theirs = parse(transcript);
    expect(shape(ours)).toEqual(shape(theirs));
    expect(lossSteps(ours)).toEqual(range(0, 30));
    expect(ofType(ours, 'loss').map((l) => l.loss)).toEqual(range(0, 30).map((s) => Number(lossText(42, s, 30))));
    // As with a real run, some step printed the very text of the step before: still two points.
    expect(range(1, 30).some((s) => lossText(42, s, 30) === lossText(42, s - 1, 30))).toBe(true);
  });

  it('writes the files ai-toolkit writes: the kept save, the final one, optimizer.pt, config.yaml and samples', async () => {
    expect((await readdir(ws.output)).sort()).toEqual([
      'config.yaml',
      `${NAME}.safetensors`,
      `${NAME}_000000020.safetensors`,
      'optimizer.pt',
      'samples',
    ]);
    expect(await readFile(path.join(ws.output, 'config.yaml'), 'utf8')).toBe(await readFile(ws.config, 'utf8'));
    expect((await readSafetensorsMetadata(path.join(ws.output, `${NAME}_000000020.safetensors`)))?.['step']).toBe('20');
    expect((await readSafetensorsMetadata(path.join(ws.output, `${NAME}.safetensors`)))?.['step']).toBe('30');

    const samples = (await readdir(path.join(ws.output, 'samples'))).filter((f) => f !== '.tmp');
    const parsed = samples.map((f) => parseSampleFileName(f));
    expect(parsed.every((p) => p !== null && p.ext === 'jpg')).toBe(true);
    expect(parsed.map((p) => `${p!.step}/${p!.promptIndex}`).sort()).toEqual(
      ['0/0', '0/1', '10/0', '10/1', '20/0', '20/1', '30/0', '30/1'].sort(),
    );
    expect(await readdir(path.join(ws.output, 'samples', '.tmp'))).toEqual([]);
    const jpeg = await readFile(path.join(ws.output, 'samples', samples[0]!));
    expect([jpeg[0], jpeg[1], jpeg.at(-2), jpeg.at(-1)]).toEqual([0xff, 0xd8, 0xff, 0xd9]);
  });
});

describe('a long run', () => {
  it('prints every one of 10,000 steps, saves and prunes on schedule, and stays fast at FAKE_STEP_MS=0', async () => {
    const ws = await workspace([
      [['train', 'steps'], 10_000],
      [['save', 'save_every'], 250],
      [['save', 'max_step_saves_to_keep'], 4],
      [['sample', 'sample_every'], 1000],
    ]);
    try {
      const run = await runFakeTrainer(ws.config, { cwd: ws.dir });
      expect(run.code).toBe(0);
      const losses = ofType(run.events, 'loss');
      expect(losses.map((l) => l.step)).toEqual(range(0, 10_000));
      expect(losses.every((l) => l.loss === Number(lossText(42, l.step, 10_000)))).toBe(true);
      expect(ofType(run.events, 'saving').map((s) => s.step)).toEqual(range(1, 40).map((i) => i * 250));
      expect(ofType(run.events, 'checkpoint_saved')).toHaveLength(40);
      expect(ofType(run.events, 'checkpoint_removed')).toHaveLength(35);
      expect(ofType(run.events, 'progress').at(-1)).toMatchObject({ step: 10_000, totalSteps: 10_000 });
      const kept = (await readdir(ws.output)).filter((f) => f.endsWith('.safetensors')).sort();
      expect(kept).toEqual([
        `${NAME}.safetensors`,
        `${NAME}_000009000.safetensors`,
        `${NAME}_000009250.safetensors`,
        `${NAME}_000009500.safetensors`,
        `${NAME}_000009750.safetensors`,
      ]);
      const samples = (await readdir(path.join(ws.output, 'samples'))).filter((f) => f !== '.tmp');
      expect(samples).toHaveLength(2 * 11); // baseline, every 1000 steps, final
    } finally {
      await ws.cleanup();
    }
  });

  it('fills the line with the bar when COLUMNS is set, and still parses', async () => {
    const ws = await workspace();
    try {
      const run = await runFakeTrainer(ws.config, { cwd: ws.dir, env: { COLUMNS: '140', FAKE_SECONDS_PER_STEP: '2' } });
      expect(run.code).toBe(0);
      expect(lossSteps(run.events)).toEqual(range(0, 30));
      const barLines = run.stderr.split(/[\r\n]/).filter((l) => l.startsWith(`${NAME}:`));
      expect(barLines.length).toBeGreaterThanOrEqual(60);
      expect(barLines.every((l) => [...l.trimEnd()].length === 139)).toBe(true);
    } finally {
      await ws.cleanup();
    }
  });

  it('takes its seed from the process’s training_seed, as ai-toolkit does, not from train.seed', async () => {
    const ws = await workspace([
      [['training_seed'], 7],
      [['train', 'seed'], 99],
    ]);
    try {
      const run = await runFakeTrainer(ws.config, { cwd: ws.dir });
      expect(ofType(run.events, 'loss').map((l) => l.loss)).toEqual(range(0, 30).map((s) => Number(lossText(7, s, 30))));
    } finally {
      await ws.cleanup();
    }
  });

  it('cuts its lines at TQDM_NCOLS as tqdm does; the parser still reads every loss a line shows whole', async () => {
    const ws = await workspace();
    try {
      // A whole line needs 89 columns while the bar counts 0–9 and 90 from 10: at 88, the first lose only
      // their "]", the later ones part of the loss.
      const run = await runFakeTrainer(ws.config, { cwd: ws.dir, env: { TQDM_NCOLS: '88', FAKE_SECONDS_PER_STEP: '2' } });
      expect(run.code).toBe(0);
      const lines = run.stderr.split(/[\r\n]/).filter((l) => l.startsWith(`${NAME}:`));
      expect(lines.every((l) => [...l.trimEnd()].length <= 88)).toBe(true);
      const whole = lines.filter((l) => /loss: \d\.\d{3}e-\d\d$/.test(l.trimEnd()));
      expect(whole.length).toBeGreaterThan(0);
      const losses = ofType(run.events, 'loss');
      expect(losses.map((l) => l.step)).toEqual(range(0, 10));
      for (const l of losses) expect(l.loss).toBe(Number(lossText(42, l.step, 30)));
    } finally {
      await ws.cleanup();
    }
  });

  it('honours loralab_fake_trainer.stepMs over FAKE_STEP_MS', async () => {
    // A minute per step from the environment would time this test out; the config says zero.
    const ws = await workspace([[['loralab_fake_trainer'], { stepMs: 0 }]]);
    try {
      const run = await runFakeTrainer(ws.config, { cwd: ws.dir, env: { FAKE_STEP_MS: '60000' } });
      expect(run.code).toBe(0);
      expect(lossSteps(run.events)).toEqual(range(0, 30));
    } finally {
      await ws.cleanup();
    }
  });

  it('runs standalone through the tsx CLI too', async () => {
    const ws = await workspace();
    try {
      const { spawn } = await import('node:child_process');
      const tsx = path.join(REPO_ROOT, 'node_modules/.bin/tsx');
      const child = spawn(tsx, [FAKE_TRAINER, ws.config], {
        cwd: ws.dir,
        env: { ...process.env, FAKE_STEP_MS: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const parser = new TrainerOutputParser();
      const events: TrainerEvent[] = [];
      child.stdout.on('data', (c: Buffer) => events.push(...parser.push(c, 'stdout')));
      child.stderr.on('data', (c: Buffer) => events.push(...parser.push(c, 'stderr')));
      const code = await new Promise((resolve) => child.on('close', resolve));
      events.push(...parser.end());
      expect(code).toBe(0);
      expect(lossSteps(events)).toEqual(range(0, 30));
    } finally {
      await ws.cleanup();
    }
  });
});

describe('stopping and resuming', () => {
  it('on SIGINT prints "Job stopped" and exits 0', async () => {
    const ws = await workspace([[['train', 'steps'], 100_000]]);
    try {
      const run = startFakeTrainer(ws.config, { cwd: ws.dir, env: { FAKE_STEP_MS: '5' } });
      await run.waitFor((e) => e.type === 'loss' && e.step >= 3);
      run.child.kill('SIGINT');
      const { code, signal } = await run.exited;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      // stdout and stderr are separate pipes here, so a last bar refresh may be read after it.
      expect(ofType(run.events, 'job_stopped')).toHaveLength(1);
      expect(run.stdout).toMatch(/\nJob stopped\n$/);
      expect(ofType(run.events, 'loss').length).toBeLessThan(100_000);
    } finally {
      await ws.cleanup();
    }
  });

  it('resumes from the newest checkpoint in the output folder, taking its step from the metadata', async () => {
    const ws = await workspace([[['train', 'steps'], 20]]);
    try {
      const first = await runFakeTrainer(ws.config, { cwd: ws.dir });
      expect(first.code).toBe(0);
      expect(ofType(first.events, 'resuming')).toEqual([]);

      // The same run asked for more steps: ai-toolkit picks up the final save of the first.
      await writeReferenceConfig(ws.dir, [
        [['datasets', 0, 'folder_path'], ws.dataset],
        [['train', 'steps'], 30],
      ]);
      const second = await runFakeTrainer(ws.config, { cwd: ws.dir });
      expect(second.code).toBe(0);
      expect(ofType(second.events, 'resuming')).toEqual([{ type: 'resuming', path: `output/${NAME}/${NAME}.safetensors` }]);
      expect(ofType(second.events, 'resume_step')).toEqual([{ type: 'resume_step', step: 20 }]);
      expect(lossSteps(second.events)).toEqual(range(20, 30));
      expect(second.stdout).not.toContain('Generating baseline samples');
      expect((await readSafetensorsMetadata(path.join(ws.output, `${NAME}.safetensors`)))?.['step']).toBe('30');
    } finally {
      await ws.cleanup();
    }
  });
});

describe('failure injection (loralab_fake_trainer in the process config)', () => {
  async function failing(injection: Record<string, unknown>, changes: [(string | number)[], unknown][] = []) {
    const ws = await workspace([[['loralab_fake_trainer'], injection], ...changes]);
    return { ws, run: await runFakeTrainer(ws.config, { cwd: ws.dir }) };
  }

  it('fail: oom skips three batches, then aborts like ai-toolkit ("OOM during training step 3 times in a row…"), and exits 1', async () => {
    // A few milliseconds a step, so the skips on stdout do not overtake the bar lines on stderr.
    const { ws, run } = await failing({ fail: 'oom', atStep: 5, stepMs: 3 });
    try {
      expect(run.code).toBe(1);
      expect(lossSteps(run.events)).toEqual(range(0, 5));
      expect(ofType(run.events, 'oom_skip')).toEqual([1, 2, 3].map((batch) => ({ type: 'oom_skip', batch, of: 3 })));
      expect(run.stdout).toContain('\n################################################\n# OOM during training step, skipping batch 1/3 #\n');
      const [error] = ofType(run.events, 'error');
      expect(error?.message).toBe('OOM during training step 3 times in a row, aborting training');
      expect(run.stderr).toContain('Traceback (most recent call last):');
      expect(run.stderr).toMatch(/\nRuntimeError: OOM during training step 3 times in a row, aborting training\n$/);
      // Not the words of a CUDA out-of-memory error: ai-toolkit caught those.
      expect(run.stdout + run.stderr).not.toContain('CUDA out of memory');
    } finally {
      await ws.cleanup();
    }
  });

  it('fail: signal kills the process with SIGKILL at the step', async () => {
    const { ws, run } = await failing({ fail: 'signal', atStep: 5 });
    try {
      expect({ code: run.code, signal: run.signal }).toEqual({ code: null, signal: 'SIGKILL' });
      expect(lossSteps(run.events)).toEqual(range(0, 5));
      expect(ofType(run.events, 'error')).toEqual([]);
    } finally {
      await ws.cleanup();
    }
  });

  it('fail: signal can use SIGSEGV', async () => {
    const { ws, run } = await failing({ fail: 'signal', atStep: 2, signal: 'SIGSEGV' });
    try {
      expect(run.signal).toBe('SIGSEGV');
      expect(lossSteps(run.events)).toEqual(range(0, 2));
    } finally {
      await ws.cleanup();
    }
  });

  it('fail: gated fails at model load with the 401 gated-repo message, and exits 1', async () => {
    const { ws, run } = await failing({ fail: 'gated' });
    try {
      expect(run.code).toBe(1);
      expect(ofType(run.events, 'progress')).toEqual([]);
      const [error] = ofType(run.events, 'error');
      expect(error?.message).toMatch(/^401 Client Error\./);
      expect(error?.message).toContain('Cannot access gated repo for url https://huggingface.co/black-forest-labs/FLUX.1-dev/');
      expect(run.stderr).toContain('huggingface_hub.errors.GatedRepoError: 401 Client Error.');
    } finally {
      await ws.cleanup();
    }
  });

  it('fail: error prints the message on the open bar line (as Python’s print does, 2>&1) and the parser still reads it', async () => {
    const ws = await workspace([[['loralab_fake_trainer'], { fail: 'error', atStep: 3, message: 'NaN detected in loss', secondsPerStep: 2 }]]);
    try {
      const { code, output } = await runFakeTrainerMerged(ws.config, { cwd: ws.dir, outputFile: path.join(ws.dir, 'merged.txt') });
      expect(code).toBe(1);
      expect(output.toString('utf8')).toMatch(/\| 3\/30 \[[^\]]*loss: [\d.e+-]+\]Error running job: NaN detected in loss\n/);
      const parser = new TrainerOutputParser();
      const events = [...parser.push(output), ...parser.end()];
      expect(ofType(events, 'error')).toEqual([{ type: 'error', message: 'NaN detected in loss' }]);
      expect(lossSteps(events)).toEqual(range(0, 3));
    } finally {
      await ws.cleanup();
    }
  });

  it('oomSkipSteps: those steps run out of memory, print a skipped batch, report no loss, and training goes on', async () => {
    const { ws, run } = await failing({ oomSkipSteps: [4, 17, 18], stepMs: 3 });
    try {
      expect(run.code).toBe(0);
      expect(ofType(run.events, 'oom_skip').map((e) => e.batch)).toEqual([1, 1, 2]);
      expect(lossSteps(run.events)).toEqual(range(0, 30).filter((s) => ![4, 17, 18].includes(s)));
    } finally {
      await ws.cleanup();
    }
  });

  it('fail: hang stops all output at the step and keeps the process alive until it is killed', async () => {
    const ws = await workspace([[['loralab_fake_trainer'], { fail: 'hang', atStep: 3, secondsPerStep: 2 }]]);
    try {
      const run = startFakeTrainer(ws.config, { cwd: ws.dir });
      await run.waitFor((e) => e.type === 'progress' && e.step === 3);
      // Without the hang, a run at FAKE_STEP_MS=0 would long be finished (exit 0) by now.
      run.child.kill('SIGKILL');
      const { signal } = await run.exited;
      expect(signal).toBe('SIGKILL');
      expect(lossSteps(run.events)).toEqual(range(0, 3));
      expect(ofType(run.events, 'job_stopped')).toEqual([]);
    } finally {
      await ws.cleanup();
    }
  });

  it('once: true fails the first attempt only; the retry resumes from the last save and finishes', async () => {
    // Steps of a few milliseconds: an OOM skip printed on stdout must not overtake, on its own pipe, the
    // bar lines drawn on stderr before it (with a real trainer, steps take seconds).
    const ws = await workspace([[['loralab_fake_trainer'], { fail: 'oom', atStep: 15, once: true, stepMs: 3 }]]);
    try {
      const first = await runFakeTrainer(ws.config, { cwd: ws.dir });
      expect(first.code).toBe(1);
      expect(lossSteps(first.events)).toEqual(range(0, 15));

      const retry = await runFakeTrainer(ws.config, { cwd: ws.dir });
      expect(retry.code).toBe(0);
      expect(ofType(retry.events, 'resuming')).toEqual([
        { type: 'resuming', path: `output/${NAME}/${NAME}_000000010.safetensors` },
      ]);
      expect(ofType(retry.events, 'resume_step')).toEqual([{ type: 'resume_step', step: 10 }]);
      expect(lossSteps(retry.events)).toEqual(range(10, 30));
      expect(ofType(retry.events, 'error')).toEqual([]);
    } finally {
      await ws.cleanup();
    }
  });

  it('a missing dataset folder fails like ai-toolkit, with exit 1', async () => {
    const ws = await workspace([[['datasets', 0, 'folder_path'], '/nonexistent/loralab/dataset']]);
    try {
      const run = await runFakeTrainer(ws.config, { cwd: ws.dir });
      expect(run.code).toBe(1);
      expect(ofType(run.events, 'error')).toEqual([
        { type: 'error', message: "[Errno 2] No such file or directory: '/nonexistent/loralab/dataset'" },
      ]);
    } finally {
      await ws.cleanup();
    }
  });

  it('reads its config as ai-toolkit does: ${VAR} from the environment (unset: an error), YAML 1.1, [name] as the job name', async () => {
    const ws = await workspace([[['sample', 'neg'], 'by [name] in ${FAKE_PLACE}']]);
    try {
      const ok = await runFakeTrainer(ws.config, { cwd: ws.dir, env: { FAKE_PLACE: 'Paris' } });
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain(`"neg": "by ${NAME} in Paris"`);
      const unset = await runFakeTrainer(ws.config, { cwd: ws.dir, env: { FAKE_PLACE: undefined as unknown as string } });
      expect(unset.code).toBe(1);
      expect(ofType(unset.events, 'error')).toEqual([
        { type: 'error', message: "Environment variable FAKE_PLACE not set. Please ensure it's defined before proceeding." },
      ]);
    } finally {
      await ws.cleanup();
    }
  });

  it('fails like ai-toolkit on a trigger word YAML 1.1 reads as a boolean (trigger_word: on)', async () => {
    const ws = await workspace();
    try {
      await writeFile(ws.config, (await readFile(ws.config, 'utf8')).replace('trigger_word: "p3r5on"', 'trigger_word: on'));
      const run = await runFakeTrainer(ws.config, { cwd: ws.dir });
      expect(run.code).toBe(1);
      expect(ofType(run.events, 'error')).toEqual([{ type: 'error', message: 'replace() argument 2 must be str, not bool' }]);
    } finally {
      await ws.cleanup();
    }
  });

  it('an unknown fail mode is refused with exit 1', async () => {
    const { ws, run } = await failing({ fail: 'meteor' });
    try {
      expect(run.code).toBe(1);
      expect(ofType(run.events, 'error')[0]?.message).toMatch(/loralab_fake_trainer\.fail must be one of/);
    } finally {
      await ws.cleanup();
    }
  });
});

describe('sample items (several LoRA strengths)', () => {
  it('reads sample.samples with network_multiplier (the section’s own, else 1, where an item has none), else sample.prompts', () => {
    expect(sampleItems({ prompts: ['a', 'b'] })).toEqual([
      { prompt: 'a', networkMultiplier: 1 },
      { prompt: 'b', networkMultiplier: 1 },
    ]);
    expect(sampleItems({ network_multiplier: 0.8, samples: [{ prompt: 'a', network_multiplier: 0.5 }, { prompt: 'a' }, { network_multiplier: 2 }], prompts: ['ignored'] })).toEqual([
      { prompt: 'a', networkMultiplier: 0.5 },
      { prompt: 'a', networkMultiplier: 0.8 },
    ]);
    expect(sampleItems({})).toEqual([]);
  });

  it('writes one image per item and step, named by item as ai-toolkit does, each different', async () => {
    const ws = await workspace([
      [['train', 'steps'], 10],
      [['sample', 'sample_every'], 10],
      [['sample', 'samples'], [0.5, 1].flatMap((m) => ['on a beach', 'a portrait'].map((prompt) => ({ prompt, network_multiplier: m })))],
    ]);
    try {
      const run = await runFakeTrainer(ws.config, { cwd: ws.dir });
      expect(run.code, run.stderr).toBe(0);
      const files = (await readdir(path.join(ws.output, 'samples'))).filter((f) => f !== '.tmp');
      const parsed = files.map((f) => parseSampleFileName(f)!);
      expect(parsed.map((p) => `${p.step}/${p.promptIndex}`).sort()).toEqual(['0/0', '0/1', '0/2', '0/3', '10/0', '10/1', '10/2', '10/3']);
      const shas = await Promise.all(files.map(async (f) => createHash('sha256').update(await readFile(path.join(ws.output, 'samples', f))).digest('hex')));
      expect(new Set(shas).size).toBe(8);
    } finally {
      await ws.cleanup();
    }
  });
});
