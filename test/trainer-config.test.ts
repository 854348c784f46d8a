// Run.trainerConfig is the ai-toolkit YAML an agent trains with. It is compared key by key with
// ai-toolkit's own FLUX LoRA example (test/fixtures/train_lora_flux_24gb.yaml, MIT, see its first line).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { createBasics, createStrategy, type Basics } from './helpers/fixtures.js';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';
import { registerAgent } from './helpers/agents.js';

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

/** Whether PyYAML, the loader ai-toolkit uses, is installed on this machine. */
function hasPyYaml(): boolean {
  try {
    execFileSync('python3', ['-c', 'import yaml'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

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
    // The example's legacy key counts batches as steps; a run's gradientAccumulation is rendered with
    // the key that keeps `steps` counting optimizer steps (the same at 1).
    const renamed: Record<string, string[]> = { 'train.gradient_accumulation_steps': ['train', 'gradient_accumulation'] };
    for (const path of leafPaths(referenceProcess)) {
      const key = path.join('.');
      const oursAt = renamed[key] ?? path;
      expect(has(ours, oursAt), `process[0].${oursAt.join('.')} is missing`).toBe(true);
      if (placeholders.has(key)) continue;
      expect(at(ours, oursAt), `process[0].${key}`).toEqual(at(referenceProcess, path));
    }
    expect(ours.train).not.toHaveProperty('gradient_accumulation_steps');
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
      noiseScheduler: 'flowmatch',
      resolutions: [768, 1024],
      saveEvery: 500,
      checkpointsToKeep: 6,
      sampleEvery: 400,
      samplePrompts: ['[trigger] in a forest', 'portrait of [trigger]'],
      sampleSeed: 7,
      sampleWidth: 768,
      sampleHeight: 1344,
      guidanceScale: 3.5,
      sampleSteps: 28,
      quantize: false,
      dtype: 'fp16',
      seed: 1234,
    };
    const { run, config } = await configOf({ name: 'p3r5on / rank 32 (fine detail)', captionStrategyId: strategyId, hyperparameters });
    const p = config.config.process[0];
    expect(p.trigger_word).toBe('p3r5on');
    // The process's seed: ai-toolkit's TrainConfig has no `seed`.
    expect(p.training_seed).toBe(1234);
    expect(p.train).not.toHaveProperty('seed');
    expect(p.network).toEqual({ type: 'lora', linear: 32, linear_alpha: 24 });
    expect(p.save).toMatchObject({ save_every: 500, max_step_saves_to_keep: 6 });
    expect(p.datasets[0]).toMatchObject({ caption_dropout_rate: 0.1, shuffle_tokens: true, resolution: [768, 1024], caption_ext: 'txt' });
    expect(p.train).toMatchObject({
      batch_size: 2,
      steps: 4000,
      gradient_accumulation: 4,
      optimizer: 'prodigy',
      lr: 2e-4,
      lr_scheduler: 'cosine',
      noise_scheduler: 'flowmatch',
      dtype: 'fp16',
    });
    expect(p.model).toEqual({
      name_or_path: 'black-forest-labs/FLUX.1-schnell',
      assistant_lora_path: 'ostris/FLUX.1-schnell-training-adapter',
      is_flux: true,
      quantize: false,
    });
    expect(p.sample).toMatchObject({
      sampler: 'flowmatch',
      sample_every: 400,
      // As the sampler gets them.
      prompts: ['p3r5on in a forest', 'portrait of p3r5on'],
      seed: 7,
      width: 768,
      height: 1344,
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

  // The strings of the issue: each changes type, or breaks the loader, if a YAML 1.1 reader sees it bare.
  const HOSTILE = ['on', 'no', 'yes', 'off', 'On', 'y', 'n', '~', 'null', '1:20', '2024-01-01', '1_000', '0x1F', '1e3', '.inf', 'a=b', '=', '<<', '${HOME}', 'x ${HOME} y', '#c', "it's", '"q"', 'a: b', '- x', '[x]', '{x}', '@x', '`x`', '  pad  ', 'tab\there', 'line\nbreak', 'del\x7f', 'nel\x85', 'ls\u2028', 'é 🙂'];

  /** What ai-toolkit's toolkit/config.py does to the file: `${VAR}` from the environment in the text, then YAML 1.1. */
  const loadLikeAiToolkit = (text: string, env: Record<string, string> = { HOME: '/root' }) =>
    parse(
      text.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
        if (!(name in env)) throw new Error(`Environment variable ${name} not set`);
        return env[name]!;
      }),
      { version: '1.1' },
    ) as Json;

  it('is read back by a YAML 1.1 loader exactly as typed, hostile strings included (prompts, trigger word, extra)', async () => {
    for (const word of ['on', 'no', '1:20', '${HOME}', '<<']) {
      const strategyId = await createStrategy(editor, { name: `trigger ${word}`, kind: 'TRIGGER_ONLY', triggerWord: word });
      const extra = { sample: { neg: HOSTILE }, logging: Object.fromEntries(HOSTILE.map((h, i) => [h, i])) };
      const { run } = await configOf({ captionStrategyId: strategyId, hyperparameters: { samplePrompts: HOSTILE, extra } });
      const config = loadLikeAiToolkit(run.trainerConfig);
      const p = config.config.process[0];
      expect(p.trigger_word, word).toBe(word);
      expect(p.sample.prompts, word).toEqual(HOSTILE);
      expect(p.sample.neg).toEqual(HOSTILE);
      expect(p.logging).toEqual(extra.logging);
      // Nothing for ai-toolkit's environment pass to find: `${` only ever appears escaped.
      expect(run.trainerConfig).not.toContain('${');
      expect(run.trainerConfig).toContain('\\x24{HOME}');
    }
  });

  it.runIf(hasPyYaml())('is read back by PyYAML exactly as typed, after ai-toolkit’s ${VAR} pass', async () => {
    const { run } = await configOf({ hyperparameters: { samplePrompts: HOSTILE, extra: { logging: Object.fromEntries(HOSTILE.map((h, i) => [h, i])) } } });
    const script = [
      'import json, os, re, sys, yaml',
      'text = re.sub(r"\\$\\{([^}]+)\\}", lambda m: os.environ[m.group(1)], sys.stdin.read())',
      'p = yaml.safe_load(text)["config"]["process"][0]',
      'print(json.dumps({"prompts": p["sample"]["prompts"], "logging": p["logging"]}))',
    ].join('\n');
    const out = execFileSync('python3', ['-c', script], { input: run.trainerConfig, env: { ...process.env, HOME: '/root' } });
    expect(JSON.parse(out.toString('utf8'))).toEqual({ prompts: HOSTILE, logging: Object.fromEntries(HOSTILE.map((h, i) => [h, i])) });
  });

  it('sets the seed at the process level (training_seed), where ai-toolkit reads it', async () => {
    const { config } = await configOf({ hyperparameters: { seed: 31337 } });
    const p = config.config.process[0];
    expect(p.training_seed).toBe(31337);
    expect(p.train).not.toHaveProperty('seed');
    const { config: unseeded } = await configOf({});
    expect(unseeded.config.process[0]).not.toHaveProperty('training_seed');
  });

  it('renders gradientAccumulation as gradient_accumulation: steps stay optimizer steps, each of that many batches', async () => {
    const { config } = await configOf({ hyperparameters: { steps: 1000, batchSize: 2, gradientAccumulation: 4 } });
    const train = config.config.process[0].train;
    expect(train).toMatchObject({ steps: 1000, batch_size: 2, gradient_accumulation: 4 });
    expect(train).not.toHaveProperty('gradient_accumulation_steps');
  });

  it('puts the trigger word in the prompts, and without one leaves [trigger] out instead of handing it to the sampler', async () => {
    const prompts = ['[trigger], portrait photo, soft window light', '[trigger] walking through a forest', 'a photo of [trigger]', 'a, [trigger], b', 'no tag'];
    const none = await createStrategy(editor, { name: 'no captions', kind: 'NONE', triggerWord: null });
    const files = await createStrategy(editor, { name: 'own files', kind: 'FILES', triggerWord: null });
    for (const captionStrategyId of [none, files]) {
      const { config } = await configOf({ captionStrategyId, hyperparameters: { samplePrompts: prompts } });
      expect(config.config.process[0]).not.toHaveProperty('trigger_word');
      expect(config.config.process[0].sample.prompts).toEqual(['portrait photo, soft window light', 'walking through a forest', 'a photo of', 'a, b', 'no tag']);
    }
    // The defaults start with [trigger] too.
    const { config: defaults } = await configOf({ captionStrategyId: none });
    expect(defaults.config.process[0].sample.prompts.some((p: string) => p.includes('[trigger]'))).toBe(false);
    const { config: triggered } = await configOf({ hyperparameters: { samplePrompts: prompts } });
    expect(triggered.config.process[0].sample.prompts).toEqual([
      'p3r5on, portrait photo, soft window light',
      'p3r5on walking through a forest',
      'a photo of p3r5on',
      'a, p3r5on, b',
      'no tag',
    ]);
    // A trigger word given in extra is the one the sampler uses.
    const { config: fromExtra } = await configOf({ captionStrategyId: none, hyperparameters: { samplePrompts: prompts, extra: { trigger_word: 'zxq' } } });
    expect(fromExtra.config.process[0].sample.prompts[0]).toBe('zxq, portrait photo, soft window light');
  });

  it('samples each prompt at several LoRA strengths as sample items with network_multiplier; each Sample says its prompt and strength', async () => {
    const prompts = ['[trigger] at the beach', 'a portrait of [trigger]'];
    const { config, run } = await configOf({ priority: 100, hyperparameters: { samplePrompts: prompts, sampleStrengths: [0.5, 1, 1.25] } });
    const sample = config.config.process[0].sample;
    expect(sample).not.toHaveProperty('prompts');
    expect(sample.samples).toEqual([
      { prompt: 'p3r5on at the beach', network_multiplier: 0.5 },
      { prompt: 'p3r5on at the beach', network_multiplier: 1 },
      { prompt: 'p3r5on at the beach', network_multiplier: 1.25 },
      { prompt: 'a portrait of p3r5on', network_multiplier: 0.5 },
      { prompt: 'a portrait of p3r5on', network_multiplier: 1 },
      { prompt: 'a portrait of p3r5on', network_multiplier: 1.25 },
    ]);
    // One strength of 1 (the default) keeps the plain prompt list.
    const { config: plain } = await configOf({ hyperparameters: { samplePrompts: prompts } });
    expect(plain.config.process[0].sample.samples).toBeUndefined();
    expect(plain.config.process[0].sample.prompts).toHaveLength(2);

    // The trainer numbers samples by item: item 4 is prompt 1 at strength 1.
    const agent = await registerAgent(t, { gpus: [{ index: 0, name: 'A', memoryMb: 80_000 }] });
    const claim = await agent.claim(); // the highest priority first
    expect(claim?.run.id).toBe(run.id);
    for (const item of [0, 4, 5]) {
      await agent.client.ok(`mutation($r: ID!, $t: String!, $i: SampleInput!) { reportSample(runId: $r, leaseToken: $t, input: $i) { id } }`, {
        r: run.id, t: claim!.leaseToken, i: { step: 100, promptIndex: item, path: `/out/samples/100_${item}.jpg` },
      });
    }
    const { run: read } = await editor.ok(`query($id: ID!) { run(id: $id) { hyperparameters { sampleStrengths } samples { promptIndex strength path } } }`, { id: run.id });
    expect(read.hyperparameters.sampleStrengths).toEqual([0.5, 1, 1.25]);
    expect(read.samples.map((s: { promptIndex: number; strength: number }) => [s.promptIndex, s.strength]).sort()).toEqual([[0, 0.5], [1, 1], [1, 1.25]]);

    for (const [strengths, message] of [[[], 'at least one'], [[1, 1], 'repeat'], [[5], 'between -4 and 4']] as const) {
      const { errors } = await editor.request(QUEUE, { input: { experimentId: basics.experimentId, datasetId: basics.datasetId, captionStrategyId: basics.strategyId, hyperparameters: { sampleStrengths: strengths } } });
      expect(errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(errors?.[0]?.message).toContain(message);
    }
  });

  it('renders the model and sampling block of the base model, samples at the size asked for', async () => {
    const { config: dev, run } = await configOf({});
    expect(dev.config.process[0].model).toEqual({ name_or_path: 'black-forest-labs/FLUX.1-dev', is_flux: true, quantize: true });
    expect(dev.config.process[0].sample).toMatchObject({ sampler: 'flowmatch', width: 1024, height: 1024, guidance_scale: 4, sample_steps: 20 });
    const { config: schnell, run: schnellRun } = await configOf({ hyperparameters: { baseModel: 'black-forest-labs/FLUX.1-schnell', sampleWidth: 832, sampleHeight: 1216 } });
    expect(schnell.config.process[0].model).toEqual({
      name_or_path: 'black-forest-labs/FLUX.1-schnell',
      assistant_lora_path: 'ostris/FLUX.1-schnell-training-adapter',
      is_flux: true,
      quantize: true,
    });
    // schnell's own sampling defaults: 4 steps, no guidance.
    expect(schnell.config.process[0].sample).toMatchObject({ width: 832, height: 1216, guidance_scale: 1, sample_steps: 4 });
    const read = async (id: string) =>
      (await editor.ok(`query($id: ID!) { run(id: $id) { hyperparameters { sampleWidth sampleHeight guidanceScale sampleSteps } } }`, { id })).run.hyperparameters;
    expect(await read(run.id)).toEqual({ sampleWidth: 1024, sampleHeight: 1024, guidanceScale: 4, sampleSteps: 20 });
    expect(await read(schnellRun.id)).toEqual({ sampleWidth: 832, sampleHeight: 1216, guidanceScale: 1, sampleSteps: 4 });
  });

  it('shows a run queued before sample sizes existed with the base model’s defaults', async () => {
    const { run } = await configOf({});
    await t.server.db.orm.execute(
      sql`update runs set hyperparameters = hyperparameters - 'sampleWidth' - 'sampleHeight' - 'guidanceScale' - 'sampleSteps' where id = ${run.id}`,
    );
    const { run: read } = await editor.ok(`query($id: ID!) { run(id: $id) { trainerConfig hyperparameters { sampleWidth sampleHeight guidanceScale sampleSteps } } }`, { id: run.id });
    expect(read.hyperparameters).toEqual({ sampleWidth: 1024, sampleHeight: 1024, guidanceScale: 4, sampleSteps: 20 });
    expect(read.trainerConfig).toBe(run.trainerConfig);
  });

  it('is the same text when read again, through run(id)', async () => {
    const { run } = await configOf({});
    const { run: read } = await editor.ok(`query($id: ID!) { run(id: $id) { trainerConfig } }`, { id: run.id });
    expect(read.trainerConfig).toBe(run.trainerConfig);
  });

  describe('queueRun refuses what ai-toolkit would not read as meant', () => {
    const refused = async (hyperparameters: Record<string, unknown>, field: string) => {
      const error = await editor.fails('BAD_USER_INPUT', QUEUE, {
        input: { experimentId: basics.experimentId, datasetId: basics.datasetId, captionStrategyId: basics.strategyId, hyperparameters },
      }, `input.hyperparameters.${field}`);
      return error.message;
    };

    it.each([
      ['optimizer', 'adamw8bitt', 'adamw8bit, adam8bit'],
      ['lrScheduler', 'cosine_annealing', 'constant, constant_with_warmup, linear, cosine, cosine_with_restarts, step'],
      ['noiseScheduler', 'flow_match', 'flowmatch, ddpm'],
      ['dtype', 'bfloat', 'bf16, bfloat16, fp16'],
    ])('%s %s, naming the field and the values ai-toolkit accepts', async (field, value, accepted) => {
      const message = await refused({ [field]: value }, field);
      expect(message).toContain(`input.hyperparameters.${field}: is not`);
      expect(message).toContain(accepted);
    });

    it('takes an optimizer in any case, as ai-toolkit does, and keeps it as typed', async () => {
      const { config } = await configOf({ hyperparameters: { optimizer: 'AdamW8bit' } });
      expect(config.config.process[0].train.optimizer).toBe('AdamW8bit');
    });

    it('a base model it has no profile for, and a noise scheduler FLUX does not train with', async () => {
      const message = await refused({ baseModel: 'stabilityai/stable-diffusion-xl-base-1.0' }, 'baseModel');
      expect(message).toContain('black-forest-labs/FLUX.1-dev, black-forest-labs/FLUX.1-schnell');
      expect(await refused({ noiseScheduler: 'ddpm' }, 'noiseScheduler')).toContain('flowmatch only');
    });

    it('extra keys ai-toolkit would ignore (train.seed) or refuse next to gradient_accumulation', async () => {
      expect(await refused({ extra: { train: { seed: 5 } } }, 'extra.train.seed')).toContain('use seed');
      expect(await refused({ extra: { train: { gradient_accumulation_steps: 4 } } }, 'extra.train.gradient_accumulation_steps')).toContain('use gradientAccumulation');
    });

    it('a sample size that is not a multiple of 16', async () => {
      expect(await refused({ sampleWidth: 1000 }, 'sampleWidth')).toContain('multiple of 16');
    });

    it('[name] in a prompt or in extra, saying why (ai-toolkit replaces it with the job name)', async () => {
      expect(await refused({ samplePrompts: ['ok', 'photo of [name]'] }, 'samplePrompts.1')).toContain('replaces with the job name');
      expect(await refused({ extra: { sample: { neg: ['x', 'by [name]'] } } }, 'extra.sample.neg.1')).toContain('replaces with the job name');
      expect(await refused({ extra: { '[name]': 1 } }, 'extra.[name]')).toContain('[name]');
    });

    it('in a sweep too, naming the base’s field', async () => {
      await editor.fails(
        'BAD_USER_INPUT',
        `mutation($input: QueueSweepInput!) { queueSweep(input: $input) { id } }`,
        {
          input: {
            base: { experimentId: basics.experimentId, datasetId: basics.datasetId, captionStrategyId: basics.strategyId, hyperparameters: { optimizer: 'adamw9bit' } },
            grid: { rank: [8, 16] },
          },
        },
        'input.base.hyperparameters.optimizer',
      );
    });

    it('[name] in a trigger word or caption template, when the strategy is made and when a run would use an older one', async () => {
      const create = `mutation($input: CreateCaptionStrategyInput!) { createCaptionStrategy(input: $input) { id } }`;
      await editor.fails('BAD_USER_INPUT', create, { input: { name: 'x', kind: 'TRIGGER_ONLY', triggerWord: 'the [name]' } }, 'input.triggerWord');
      await editor.fails('BAD_USER_INPUT', create, { input: { name: 'x', kind: 'STORED', template: '[name], {caption}' } }, 'input.template');
      const older = await createStrategy(editor, { name: 'older', kind: 'STORED', triggerWord: 'p3r5on', template: '{caption}' });
      await t.server.db.orm.execute(sql`update caption_strategies set template = '[name], {caption}' where id = ${older}`);
      const error = await editor.fails('BAD_USER_INPUT', QUEUE, { input: { experimentId: basics.experimentId, datasetId: basics.datasetId, captionStrategyId: older } }, 'input.captionStrategyId');
      expect(error.message).toContain('caption template contains [name]');
    });
  });
});
