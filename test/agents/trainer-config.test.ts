import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { TrainerConfigError, prepareTrainerConfig, writeTrainerConfig } from '../../agents/trainer-config.js';
import { toAiToolkitYaml } from '../../src/modules/runs/trainer-config.js';
import { REFERENCE_CONFIG, REPO_ROOT, referenceConfig, tempDir } from './helpers.js';

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
      // As the sampler gets them: ai-toolkit puts the trigger word in place of [trigger].
      samplePrompts: [
        "p3r5on holding a sign that says 'I LOVE PROMPTS!'",
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

  it('changes only the two folders: every other byte of the server’s YAML reaches the trainer as it was', () => {
    const hostile = ['on', 'no', 'yes', 'off', '1:20', '2024-01-01', '1_000', 'a=b', '=', '<<', '${HOME}', 'x\x7fy\u2028z'];
    const server = toAiToolkitYaml({
      job: 'extension',
      config: {
        name: 'lora_1a2b3c4d',
        process: [
          {
            type: 'sd_trainer',
            training_folder: '<set by agent: training folder>',
            trigger_word: 'on',
            datasets: [{ folder_path: '<set by agent: staged dataset folder>' }, { folder_path: 'b' }],
            sample: { prompts: hostile },
          },
        ],
      },
    });
    const prepared = prepareTrainerConfig(server, folders);
    const expected = server
      .replace('"<set by agent: training folder>"', JSON.stringify(folders.trainingFolder))
      .replace('"<set by agent: staged dataset folder>"', JSON.stringify(folders.datasetFolder))
      .replace('folder_path: "b"', `folder_path: ${JSON.stringify(folders.datasetFolder)}`);
    expect(prepared.yaml).toBe(expected);
    // A YAML 1.1 reader (what ai-toolkit's PyYAML is) reads every string as it was typed.
    const proc = parse(prepared.yaml, { version: '1.1' }).config.process[0];
    expect(proc.sample.prompts).toEqual(hostile);
    expect(proc.trigger_word).toBe('on');
    expect(prepared.samplePrompts).toEqual(hostile);
  });

  it('gives the prompts as the sampler gets them: [trigger] is the trigger word, [name] the job name', () => {
    const yaml = referenceConfig([[['sample', 'prompts'], ['[trigger] at [name]', 'plain']]]);
    expect(prepareTrainerConfig(yaml, folders).samplePrompts).toEqual(['p3r5on at my_first_flux_lora_v1', 'plain']);
    // Without a trigger word ai-toolkit leaves [trigger] in the prompt.
    const none = referenceConfig([
      [['sample', 'prompts'], ['[trigger] at the beach']],
      [['trigger_word'], null],
    ]);
    expect(prepareTrainerConfig(none, folders).samplePrompts).toEqual(['[trigger] at the beach']);
  });

  it('refuses folders ai-toolkit would not read as written', () => {
    for (const odd of ['/srv/${USER}/runs', '/srv/[name]/runs', '/srv/a\u0085b', '/srv/tab\there']) {
      let caught: unknown;
      try {
        prepareTrainerConfig(referenceYaml, { ...folders, trainingFolder: odd });
      } catch (err) {
        caught = err;
      }
      expect(caught, odd).toBeInstanceOf(TrainerConfigError);
      expect((caught as Error).message).toContain('ai-toolkit would not read as written');
    }
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
