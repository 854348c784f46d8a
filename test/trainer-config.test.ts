// Run.trainerConfig is the ai-toolkit YAML an agent trains with. It is compared key by key with
// ai-toolkit's own FLUX LoRA example (test/fixtures/train_lora_flux_24gb.yaml, MIT, see its first line).
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { createBasics, createStrategy, type Basics } from './helpers/fixtures.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';

type Json = any;
const reference: Json = parse(readFileSync(new URL('./fixtures/train_lora_flux_24gb.yaml', import.meta.url), 'utf8'));
const referenceProcess = reference.config.process[0];

/** Every leaf path of a config: objects and arrays of objects are walked, arrays of values are leaves. */
function leafPaths(value: Json, prefix: string[] = []): string[][] {
  if (Array.isArray(value) && value.some((v) => typeof v === 'object' && v !== null)) {
    return value.flatMap((v, i) => leafPaths(v, [...prefix, String(i)]));
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) => leafPaths(v, [...prefix, k]));
  }
  return [prefix];
}
const at = (value: Json, path: string[]) => path.reduce((v, k) => (v == null ? undefined : v[k]), value);
const has = (value: Json, path: string[]) => {
  const parent = at(value, path.slice(0, -1));
  return parent != null && typeof parent === 'object' && Object.hasOwn(parent, path.at(-1)!);
};

const QUEUE = `mutation($input: QueueRunInput!) { queueRun(input: $input) { id name trainerConfig } }`;

describe.each(databaseKinds)('trainer config on %s', (kind) => {
  let t: TestServer;
  let editor: GqlClient;
  let basics: Basics;
  const configOf = async (input: Record<string, unknown>) => {
    const { queueRun } = await editor.ok(QUEUE, {
      input: { experimentId: basics.experimentId, datasetId: basics.datasetId, captionStrategyId: basics.strategyId, ...input },
    });
    return { run: queueRun, config: parse(queueRun.trainerConfig) as Json };
  };

  beforeAll(async () => {
    t = await startTestServer(kind);
    editor = await t.as('EDITOR');
    basics = await createBasics(editor);
  });
  afterAll(() => t?.stop());

  it('has every key of the ai-toolkit example, with its values where the run asks for the same', async () => {
    const strategyId = await createStrategy(editor, { name: 'reference', kind: 'STORED', triggerWord: null, dropoutRate: 0.05, shuffleTokens: false });
    // The example's own choices, as hyperparameters.
    const { config } = await configOf({
      captionStrategyId: strategyId,
      hyperparameters: { learningRate: 1e-4, steps: 2000, samplePrompts: referenceProcess.sample.prompts },
    });
    expect(config.job).toBe(reference.job);
    expect(config.meta).toMatchObject(reference.meta);
    expect(typeof config.config.name).toBe('string');
    expect(config.config.process).toHaveLength(1);

    const ours = config.config.process[0];
    const placeholders = new Set(['training_folder', 'datasets.0.folder_path']);
    for (const path of leafPaths(referenceProcess)) {
      const key = path.join('.');
      expect(has(ours, path), `process[0].${key} is missing`).toBe(true);
      if (placeholders.has(key)) continue;
      expect(at(ours, path), `process[0].${key}`).toEqual(at(referenceProcess, path));
    }
    // Folders belong to the agent's machine: placeholders it replaces before it starts the trainer.
    expect(ours.training_folder).not.toBe(referenceProcess.training_folder);
    expect(ours.datasets[0].folder_path).not.toBe(referenceProcess.datasets[0].folder_path);
    expect(ours.training_folder).toMatch(/agent/);
    expect(ours.datasets[0].folder_path).toMatch(/agent/);
    expect(ours).not.toHaveProperty('trigger_word');
  });

  it('takes each value from the run: hyperparameters, and the caption strategy for dropout, shuffling and trigger word', async () => {
    const strategyId = await createStrategy(editor, {
      name: 'shuffled tags',
      kind: 'STORED',
      style: 'TAGS',
      triggerWord: 'p3r5on',
      dropoutRate: 0.1,
      shuffleTokens: true,
    });
    const hyperparameters = {
      baseModel: 'black-forest-labs/FLUX.1-schnell',
      rank: 32,
      alpha: 24,
      learningRate: 2e-4,
      steps: 4000,
      batchSize: 2,
      gradientAccumulation: 4,
      optimizer: 'prodigy',
      lrScheduler: 'cosine',
      noiseScheduler: 'ddpm',
      resolutions: [768, 1024],
      saveEvery: 500,
      checkpointsToKeep: 6,
      sampleEvery: 400,
      samplePrompts: ['[trigger] in a forest', 'portrait of [trigger]'],
      sampleSeed: 7,
      guidanceScale: 3.5,
      sampleSteps: 28,
      quantize: false,
      dtype: 'fp16',
      seed: 1234,
    };
    const { run, config } = await configOf({ name: 'p3r5on / rank 32 (fine detail)', captionStrategyId: strategyId, hyperparameters });
    const p = config.config.process[0];
    expect(p.trigger_word).toBe('p3r5on');
    expect(p.network).toEqual({ type: 'lora', linear: 32, linear_alpha: 24 });
    expect(p.save).toMatchObject({ save_every: 500, max_step_saves_to_keep: 6 });
    expect(p.datasets[0]).toMatchObject({ caption_dropout_rate: 0.1, shuffle_tokens: true, resolution: [768, 1024], caption_ext: 'txt' });
    expect(p.train).toMatchObject({
      batch_size: 2,
      steps: 4000,
      gradient_accumulation_steps: 4,
      optimizer: 'prodigy',
      lr: 2e-4,
      lr_scheduler: 'cosine',
      noise_scheduler: 'ddpm',
      dtype: 'fp16',
      seed: 1234,
    });
    expect(p.model).toMatchObject({ name_or_path: 'black-forest-labs/FLUX.1-schnell', quantize: false, is_flux: true });
    expect(p.sample).toMatchObject({
      sample_every: 400,
      prompts: ['[trigger] in a forest', 'portrait of [trigger]'],
      seed: 7,
      guidance_scale: 3.5,
      sample_steps: 28,
    });
    // ai-toolkit names its output folder and checkpoint files after config.name.
    expect(config.config.name).toMatch(/^[a-z0-9_]+$/);
    expect(config.config.name).toContain('p3r5on_rank_32');
    expect(config.meta.loralab_run_id).toBe(run.id);
  });

  it('deep-merges hyperparameters.extra into the process', async () => {
    const { config } = await configOf({
      hyperparameters: {
        extra: {
          train: { skip_first_sample: true, ema_config: { ema_decay: 0.95 } },
          model: { low_vram: true },
          logging: { use_ui_logger: true },
          sample: { prompts: ['only this one'] },
        },
      },
    });
    const p = config.config.process[0];
    expect(p.train).toMatchObject({ skip_first_sample: true, ema_config: { use_ema: true, ema_decay: 0.95 }, lr: 4e-4, steps: 3000 });
    expect(p.model).toMatchObject({ low_vram: true, name_or_path: 'black-forest-labs/FLUX.1-dev', quantize: true });
    expect(p.logging).toEqual({ use_ui_logger: true });
    expect(p.sample.prompts).toEqual(['only this one']); // a list replaces, it does not append
    expect(p.sample.sample_every).toBe(250);
  });

  it('is the same text when read again, through run(id)', async () => {
    const { run } = await configOf({});
    const { run: read } = await editor.ok(`query($id: ID!) { run(id: $id) { trainerConfig } }`, { id: run.id });
    expect(read.trainerConfig).toBe(run.trainerConfig);
  });
});
