// The fake trainer resumes as ai-toolkit does: from the newest save in its folder by creation time
// (whatever step its name says), the step read from the file's metadata, optimizer.pt loaded when it
// is there; the steps after that save are trained again. The agent relies on this when it places a
// stored checkpoint to resume from.
import { chmodSync, rmSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TrainerEvent } from '../../agents/parse.js';
import { killStrayTrainers, ofType, runFakeTrainer, tempDir, writeReferenceConfig } from './helpers.js';

const NAME = 'my_first_flux_lora_v1';
afterEach(killStrayTrainers);

async function workspace(changes: [(string | number)[], unknown][]) {
  const { dir, cleanup } = await tempDir('fake-trainer-resume');
  const dataset = path.join(dir, 'p3r5on');
  await mkdir(dataset, { recursive: true });
  for (let i = 0; i < 4; i++) await writeFile(path.join(dataset, `img${i}.jpg`), 'jpeg bytes');
  const changed = (steps: number): [(string | number)[], unknown][] => [[['datasets', 0, 'folder_path'], dataset], [['train', 'steps'], steps], ...changes];
  return {
    dir,
    cleanup,
    output: path.join(dir, 'output', NAME),
    config: (steps: number) => writeReferenceConfig(dir, changed(steps)),
  };
}

const lossSteps = (events: TrainerEvent[]) => ofType(events, 'loss').map((l) => l.step);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('the fake trainer resuming', () => {
  it('takes the newest save by creation time, not the highest step, and loads optimizer.pt beside it', async () => {
    const ws = await workspace([[['save', 'save_every'], 10], [['save', 'max_step_saves_to_keep'], 5], [['sample', 'sample_every'], 1000], [['loralab_fake_trainer'], { stepMs: 1 }]]);
    try {
      const first = await runFakeTrainer(await ws.config(30), { cwd: ws.dir });
      expect(first.code).toBe(0);
      // Step 10's save becomes the newest by creation time (a metadata change moves ctime), as when
      // the agent places a stored checkpoint in the folder.
      const older = path.join(ws.output, `${NAME}_000000010.safetensors`);
      const before = statSync(older).ctimeMs;
      await new Promise((r) => setTimeout(r, 20)); // ctime has a clock tick of resolution
      chmodSync(older, 0o644);
      expect(statSync(older).ctimeMs).toBeGreaterThan(before);

      const again = await runFakeTrainer(await ws.config(30), { cwd: ws.dir });
      expect(again.code).toBe(0);
      expect(ofType(again.events, 'resuming')).toEqual([{ type: 'resuming', path: `output/${NAME}/${NAME}_000000010.safetensors` }]);
      expect(ofType(again.events, 'resume_step')).toEqual([{ type: 'resume_step', step: 10 }]);
      expect(again.stdout).toContain(`Loading optimizer state from output/${NAME}/optimizer.pt`);
      // The work after that save is done again: steps 10..29.
      expect(lossSteps(again.events)).toEqual(range(10, 30));
    } finally {
      await ws.cleanup();
    }
  });

  it('without optimizer.pt it resumes the weights only, saying nothing of an optimizer', async () => {
    const ws = await workspace([[['save', 'save_every'], 10], [['sample', 'sample_every'], 1000], [['loralab_fake_trainer'], { stepMs: 1, fail: 'error', atStep: 15, fromScratchOnly: true }]]);
    try {
      const first = await runFakeTrainer(await ws.config(20), { cwd: ws.dir });
      expect(first.code).toBe(1); // failed at step 15, having saved step 10
      rmSync(path.join(ws.output, 'optimizer.pt'));
      // Started from step 10, the failure meant for an attempt from scratch does not happen.
      const resumed = await runFakeTrainer(await ws.config(20), { cwd: ws.dir });
      expect(resumed.code).toBe(0);
      expect(ofType(resumed.events, 'resume_step')).toEqual([{ type: 'resume_step', step: 10 }]);
      expect(resumed.stdout).not.toContain('Loading optimizer state');
      expect(lossSteps(resumed.events)).toEqual(range(10, 20));
    } finally {
      await ws.cleanup();
    }
  });
});
