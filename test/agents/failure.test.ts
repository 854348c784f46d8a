// How the agent names a trainer's failure (RunError.code) from its exit and its last lines.
import { describe, expect, it } from 'vitest';
import { describeFailure } from '../../agents/runner.js';

const exit = (over: Partial<Parameters<typeof describeFailure>[0]>) => ({
  code: 1,
  signal: null,
  spawnError: null,
  errorMessage: null,
  jobStopped: false,
  finalCheckpoint: false,
  tail: [],
  ...over,
});

describe('a failed trainer', () => {
  it.each([
    ['CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.55 GiB', 'OUT_OF_MEMORY'],
    ['CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported', 'OUT_OF_MEMORY'],
    // ai-toolkit caught the CUDA error three times, skipped those batches, and gave up on the fourth.
    ['OOM during training step 3 times in a row, aborting training', 'OUT_OF_MEMORY'],
    ['401 Client Error. (Request ID: Root=1-…)\n\nCannot access gated repo for url https://huggingface.co/black-forest-labs/FLUX.1-dev/…', 'MODEL_ACCESS'],
    ['403 Client Error: Forbidden for url: https://huggingface.co/api/models/black-forest-labs/FLUX.1-dev', 'MODEL_ACCESS'],
    ['black-forest-labs/FLUX.1-dev does not appear to have a file named transformer/config.json.', 'MODEL_ACCESS'],
    ["[Errno 2] No such file or directory: '/work/runs/r1/dataset'", 'DATASET_MISSING'],
    ['num_samples should be a positive integer value, but got num_samples=0', 'DATASET_MISSING'],
    ["[Errno 2] No such file or directory: '/models/vae.safetensors'", 'TRAINER_ERROR'],
    ["'NoneType' object has no attribute 'to'", 'TRAINER_ERROR'],
  ])('"Error running job: %s" is %s, with the trainer’s own message', (message, code) => {
    expect(describeFailure(exit({ errorMessage: message, tail: ['Traceback (most recent call last):', 'SomeError: …'] }), { datasetFolder: '/work/runs/r1/dataset' })).toEqual({
      code,
      message,
      logTail: 'Traceback (most recent call last):\nSomeError: …',
    });
  });

  it('found in the last lines when there was no "Error running job:" (torch.OutOfMemoryError in a traceback)', () => {
    const error = describeFailure(exit({ tail: ['Traceback (most recent call last):', 'torch.OutOfMemoryError: CUDA out of memory.'] }));
    expect(error).toMatchObject({ code: 'OUT_OF_MEMORY', message: 'the trainer exited with code 1: torch.OutOfMemoryError: CUDA out of memory.' });
  });

  it('that skipped a batch for memory earlier but failed for another reason is not OUT_OF_MEMORY', () => {
    const tail = ['# OOM during training step, skipping batch 1/3 #', 'my_lora:  40%|####      | 12/30 [00:28<00:29,  1.62s/it, lr: 1.0e-04 loss: 3.897e-01]'];
    expect(describeFailure(exit({ errorMessage: 'NaN detected in loss', tail }))).toMatchObject({ code: 'TRAINER_ERROR', message: 'NaN detected in loss' });
  });

  it('killed by a signal has crashed', () => {
    expect(describeFailure(exit({ code: null, signal: 'SIGKILL', tail: ['my_lora:  40%|####      | 12/30 [00:28<00:29,  1.62s/it, lr: 1.0e-04 loss: 3.897e-01]'] }))).toMatchObject({
      code: 'TRAINER_CRASHED',
      message: 'the trainer was killed by SIGKILL',
    });
    expect(describeFailure(exit({ code: 139 }))).toMatchObject({ code: 'TRAINER_CRASHED', message: 'the trainer exited with code 139' });
  });

  it('that exited 0 without its final checkpoint did not succeed', () => {
    expect(describeFailure(exit({ code: 0 }))).toMatchObject({ code: 'TRAINER_ERROR', message: 'the trainer exited without saving the final checkpoint' });
    expect(describeFailure(exit({ code: 0, jobStopped: true }))).toMatchObject({ code: 'TRAINER_ERROR', message: 'the trainer was stopped ("Job stopped") before it finished' });
  });

  it('that could not be started says which command', () => {
    const err = Object.assign(new Error('spawn python ENOENT'), { code: 'ENOENT' });
    expect(describeFailure(exit({ code: null, spawnError: err }), { command: 'python run.py /w/config.yaml' })).toMatchObject({
      code: 'TRAINER_ERROR',
      message: 'could not start the trainer (python run.py /w/config.yaml): spawn python ENOENT',
    });
  });
});
