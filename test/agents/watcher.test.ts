import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OutputWatcher, type CheckpointFile, type SampleFile } from '../../agents/watcher.js';
import { waitFor } from '../helpers/gpu-agent.js';
import { tempDir } from './helpers.js';

const NAME = 'my_lora';
let dir: string;
let cleanup: () => Promise<void>;
let checkpoints: CheckpointFile[];
let samples: SampleFile[];
let watcher: OutputWatcher;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('watch'));
  checkpoints = [];
  samples = [];
  watcher = new OutputWatcher({
    outputDir: path.join(dir, NAME),
    configName: NAME,
    onCheckpoint: (c) => checkpoints.push(c),
    onSample: (s) => samples.push(s),
    pollMs: 50,
    stableMs: 200,
  });
});
afterEach(async () => {
  watcher.stop();
  await cleanup();
});

const sha = (data: string) => createHash('sha256').update(data).digest('hex');

describe('the output watcher', () => {
  it('reports a checkpoint the trainer says it saved, with its size and sha256, once', async () => {
    watcher.start(); // before the trainer has created its folder
    mkdirSync(path.join(dir, NAME));
    const file = path.join(dir, NAME, `${NAME}_000000250.safetensors`);
    writeFileSync(file, 'weights at 250');
    watcher.checkpointSaved(file);
    await waitFor('the checkpoint', async () => checkpoints.length === 1);
    watcher.checkpointSaved(file);
    await watcher.finish();
    expect(checkpoints).toEqual([{ fileName: `${NAME}_000000250.safetensors`, path: file, step: 250, sizeBytes: 14, sha256: sha('weights at 250') }]);
  });

  it('reports a checkpoint nobody announced once its size has stopped changing, and the final one as final', async () => {
    mkdirSync(path.join(dir, NAME));
    watcher.start();
    writeFileSync(path.join(dir, NAME, `${NAME}.safetensors`), 'final weights');
    await waitFor('the final checkpoint', async () => checkpoints.length === 1);
    expect(checkpoints[0]).toMatchObject({ step: 'final', sizeBytes: 13, sha256: sha('final weights') });
  });

  it('reports samples by their file name: step and prompt index, and nothing else in the folder', async () => {
    const out = path.join(dir, NAME);
    mkdirSync(path.join(out, 'samples', '.tmp'), { recursive: true });
    watcher.start();
    writeFileSync(path.join(out, 'samples', '.tmp', '1718000000000__000000250_1.jpg'), 'half');
    renameSync(path.join(out, 'samples', '.tmp', '1718000000000__000000250_1.jpg'), path.join(out, 'samples', '1718000000000__000000250_1.jpg'));
    writeFileSync(path.join(out, 'samples', '1718000000001__000000250_12.png'), 'png');
    writeFileSync(path.join(out, 'samples', 'notes.txt'), 'not a sample');
    writeFileSync(path.join(out, 'optimizer.pt'), 'state');
    writeFileSync(path.join(out, 'other_run_000000250.safetensors'), 'not ours');
    writeFileSync(path.join(out, `.${NAME}_000000500.safetensors.tmp`), 'being written');
    await watcher.finish();
    expect(samples.map((s) => [s.step, s.promptIndex, path.basename(s.path)]).sort()).toEqual([
      [250, 1, '1718000000000__000000250_1.jpg'],
      [250, 12, '1718000000001__000000250_12.png'],
    ]);
    expect(checkpoints).toEqual([]);
  });

  it('reports everything still unreported when the trainer has exited', async () => {
    const out = path.join(dir, NAME);
    mkdirSync(out);
    writeFileSync(path.join(out, `${NAME}_000000010.safetensors`), 'ten');
    writeFileSync(path.join(out, `${NAME}.safetensors`), 'final');
    await watcher.finish();
    expect(checkpoints.map((c) => c.step).sort()).toEqual([10, 'final']);
  });

  it('still lists a checkpoint the trainer pruned before it could be read', async () => {
    mkdirSync(path.join(dir, NAME));
    watcher.checkpointSaved(path.join(dir, NAME, `${NAME}_000000010.safetensors`));
    await watcher.finish();
    expect(checkpoints).toEqual([{ fileName: `${NAME}_000000010.safetensors`, path: path.join(dir, NAME, `${NAME}_000000010.safetensors`), step: 10, sizeBytes: null, sha256: null }]);
  });
});
