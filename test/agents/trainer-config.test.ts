import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { TrainerConfigError, prepareTrainerConfig, writeTrainerConfig } from '../../agents/trainer-config.js';
import { REFERENCE_CONFIG, REPO_ROOT, tempDir } from './helpers.js';

const folders = { trainingFolder: '/srv/loralab/runs/r1/output', datasetFolder: '/srv/loralab/runs/r1/dataset' };
const exampleYaml = readFileSync(path.join(REPO_ROOT, 'test/fixtures/train_lora_flux_24gb.yaml'), 'utf8');
const referenceYaml = readFileSync(REFERENCE_CONFIG, 'utf8');

function expectBadConfig(yaml: string, message: RegExp): void {
  let caught: unknown;
  try {
    prepareTrainerConfig(yaml, folders);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(TrainerConfigError);
  expect((caught as TrainerConfigError).code).toBe('BAD_CONFIG');
  expect((caught as Error).message).toMatch(message);
}

describe('prepareTrainerConfig', () => {
  it('points training_folder and every dataset folder at this machine and reads what the agent needs', () => {
    const prepared = prepareTrainerConfig(referenceYaml, folders);
    const proc = parse(prepared.yaml).config.process[0];
    expect(proc.training_folder).toBe(folders.trainingFolder);
    expect(proc.datasets.map((d: { folder_path: string }) => d.folder_path)).toEqual([folders.datasetFolder]);
    expect(prepared).toMatchObject({
      name: 'my_first_flux_lora_v1',
      totalSteps: 30,
      saveEvery: 10,
      sampleEvery: 10,
      maxStepSavesToKeep: 1,
      captionExt: 'txt',
      outputDir: '/srv/loralab/runs/r1/output/my_first_flux_lora_v1',
      samplePrompts: [
        "[trigger] holding a sign that says 'I LOVE PROMPTS!'",
        'woman with red hair, playing chess at the park, bomb going off in the background',
      ],
    });
    // Everything else is untouched.
    expect(proc.train.lr).toBe(1e-4);
    expect(proc.datasets[0].resolution).toEqual([512, 1024]);
    expect(proc.trigger_word).toBe('p3r5on');
  });

  it('keeps the example config’s comments and reads its defaults', () => {
    const prepared = prepareTrainerConfig(exampleYaml, folders);
    expect(prepared.yaml).toContain('# this name will be the folder and filename name');
    expect(prepared.yaml).not.toContain('/path/to/images/folder');
    expect(prepared).toMatchObject({ name: 'my_first_flux_lora_v1', totalSteps: 2000, saveEvery: 250, maxStepSavesToKeep: 4 });
    expect(prepared.samplePrompts).toHaveLength(10);
  });

  it('sets every dataset of the process, and strips a leading dot from caption_ext', () => {
    const yaml = referenceYaml.replace(
      'datasets:\n',
      'datasets:\n        - folder_path: "/elsewhere"\n          caption_ext: ".caption"\n',
    );
    const prepared = prepareTrainerConfig(yaml, folders);
    const datasets = parse(prepared.yaml).config.process[0].datasets;
    expect(datasets).toHaveLength(2);
    expect(datasets.every((d: { folder_path: string }) => d.folder_path === folders.datasetFolder)).toBe(true);
    expect(prepared.captionExt).toBe('caption');
  });

  it('quotes paths that YAML would otherwise misread', () => {
    const odd = { trainingFolder: '/tmp/a: b #c', datasetFolder: "/tmp/it's [here]" };
    const prepared = prepareTrainerConfig(referenceYaml, odd);
    const proc = parse(prepared.yaml).config.process[0];
    expect(proc.training_folder).toBe(odd.trainingFolder);
    expect(proc.datasets[0].folder_path).toBe(odd.datasetFolder);
  });

  it('refuses a config without config.name, without process[0] or without datasets', () => {
    expectBadConfig('job: extension\nconfig:\n  process:\n    - type: sd_trainer\n', /config\.name/);
    expectBadConfig('job: extension\nconfig:\n  name: x\n', /process\[0\]/);
    expectBadConfig('job: extension\nconfig:\n  name: x\n  process: []\n', /process\[0\]/);
    expectBadConfig('job: extension\nconfig:\n  name: x\n  process:\n    - type: sd_trainer\n', /datasets/);
    expectBadConfig('just text', /config\.name/);
    expectBadConfig('config: [unclosed', /not valid YAML/);
  });

  it('refuses a name that is not a safe file name', () => {
    for (const name of ['../escape', 'a/b', 'a\\\\b', '.hidden', 'has space', '', 'x'.repeat(129)]) {
      expectBadConfig(referenceYaml.replace('name: "my_first_flux_lora_v1"', `name: "${name}"`), /name/);
    }
  });

  it('refuses step counts and cadences that are not positive integers', () => {
    expectBadConfig(referenceYaml.replace('steps: 30', 'steps: -5'), /train\.steps/);
    expectBadConfig(referenceYaml.replace('steps: 30', 'steps: "thirty"'), /train\.steps/);
    expectBadConfig(referenceYaml.replace('save_every: 10', 'save_every: 2.5'), /save\.save_every/);
  });
});

describe('writeTrainerConfig', () => {
  it('writes config.yaml and returns its absolute path', async () => {
    const { dir, cleanup } = await tempDir('trainer-config');
    try {
      const prepared = prepareTrainerConfig(referenceYaml, folders);
      const file = await writeTrainerConfig(path.join(dir, 'nested', 'run'), prepared.yaml);
      expect(path.isAbsolute(file)).toBe(true);
      expect(file).toBe(path.join(dir, 'nested', 'run', 'config.yaml'));
      expect(await readFile(file, 'utf8')).toBe(prepared.yaml);
    } finally {
      await cleanup();
    }
  });
});
