// Typed hyperparameters with loralab's defaults (docs/api.md; from a published FLUX LoRA write-up:
// rank 16 at LR 4e-4 is a good default; 2,200–2,600 steps converge, some checkpoints up to 4,000 are good).
// Names ai-toolkit resolves (base model, optimizer, schedulers, dtype) are checked against what it
// accepts (ai-toolkit.ts), and text that ai-toolkit would rewrite before reading it is refused.
import { z } from 'zod';
import {
  BASE_MODELS,
  DEFAULT_BASE_MODEL,
  DTYPES,
  LR_SCHEDULERS,
  NAME_TAG_REFUSED,
  NOISE_SCHEDULERS,
  OPTIMIZERS,
  baseModelProfile,
  findNameTag,
} from './ai-toolkit.js';

export const DEFAULT_SAMPLE_PROMPTS = [
  '[trigger], portrait photo, soft window light',
  '[trigger] walking through a forest at golden hour',
  'a woman with red hair playing chess in the park',
];

const int = (min: number, max: number) =>
  z
    .number()
    .int('must be a whole number')
    .min(min, `must be between ${min} and ${max}`)
    .max(max, `must be between ${min} and ${max}`);

const label = (max: number) => z.string().trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

const oneOf = (values: readonly string[], what: string, compare: (v: string) => string = (v) => v) =>
  label(100).refine((v) => values.includes(compare(v)), `is not ${what} ai-toolkit accepts; one of: ${values.join(', ')}`);

const sampleSize = z
  .number()
  .int('must be a whole number')
  .min(256, 'must be a multiple of 16 between 256 and 2048')
  .max(2048, 'must be a multiple of 16 between 256 and 2048')
  .refine((r) => r % 16 === 0, 'must be a multiple of 16 between 256 and 2048');

export const hyperparametersInput = z
  .object({
    baseModel: label(500)
      .refine((m) => m in BASE_MODELS, `is not a base model loralab trains yet; one of: ${Object.keys(BASE_MODELS).join(', ')}`)
      .default(DEFAULT_BASE_MODEL),
    rank: int(1, 256).default(16),
    // Defaults to the rank (alpha = rank keeps the effective LR scale), so rank 16 → alpha 16.
    alpha: int(1, 512).nullish(),
    learningRate: z
      .number()
      .gt(0, 'must be greater than 0 and less than 1')
      .lt(1, 'must be greater than 0 and less than 1')
      .default(4e-4),
    steps: int(1, 100_000).default(3000),
    batchSize: int(1, 64).default(1),
    gradientAccumulation: int(1, 1024).default(1),
    optimizer: oneOf(OPTIMIZERS, 'an optimizer', (v) => v.toLowerCase()).default('adamw8bit'),
    lrScheduler: oneOf(LR_SCHEDULERS, 'a learning-rate scheduler').default('constant'),
    noiseScheduler: oneOf(NOISE_SCHEDULERS, 'a noise scheduler').default('flowmatch'),
    resolutions: z
      .array(
        z
          .number()
          .int('must be a whole number')
          .min(256, 'must be a multiple of 64 between 256 and 2048')
          .max(2048, 'must be a multiple of 64 between 256 and 2048')
          .refine((r) => r % 64 === 0, 'must be a multiple of 64 between 256 and 2048'),
      )
      .min(1, 'needs at least one resolution')
      .max(16)
      .default([512, 768, 1024]),
    saveEvery: int(1, 100_000).default(250),
    checkpointsToKeep: int(1, 1000).default(4),
    sampleEvery: int(1, 100_000).default(250),
    samplePrompts: z
      .array(z.string().max(2000, 'must be at most 2,000 characters').refine((p) => findNameTag(p) === null, NAME_TAG_REFUSED))
      .max(100, 'at most 100 prompts')
      .default(DEFAULT_SAMPLE_PROMPTS),
    sampleSeed: int(0, 2_147_483_647).default(42),
    // LoRA strengths every prompt is sampled at (ai-toolkit's network_multiplier per sample item).
    sampleStrengths: z
      .array(z.number().min(-4, 'must be between -4 and 4').max(4, 'must be between -4 and 4'))
      .min(1, 'needs at least one strength')
      .max(8, 'at most 8 strengths')
      .refine((s) => new Set(s).size === s.length, 'must not repeat a strength')
      .optional(),
    // The next four default to the base model's (FLUX.1-schnell samples in 4 steps without guidance).
    sampleWidth: sampleSize.optional(),
    sampleHeight: sampleSize.optional(),
    guidanceScale: z.number().min(0, 'must be between 0 and 100').max(100, 'must be between 0 and 100').optional(),
    sampleSteps: int(1, 1000).optional(),
    quantize: z.boolean().default(true),
    dtype: oneOf(DTYPES, 'a dtype').default('bf16'),
    seed: int(0, 2_147_483_647).nullish(),
    extra: z
      .record(z.string(), z.unknown(), { error: 'must be a JSON object' })
      .nullish(),
  })
  .superRefine((h, ctx) => {
    const profile = BASE_MODELS[h.baseModel];
    if (profile && !profile.noiseSchedulers.includes(h.noiseScheduler)) {
      ctx.addIssue({
        code: 'custom',
        path: ['noiseScheduler'],
        message: `${h.baseModel} trains and samples with ${profile.noiseSchedulers.join(' or ')} only`,
      });
    }
    const tagged = findNameTag(h.extra);
    if (tagged !== null) ctx.addIssue({ code: 'custom', path: ['extra', ...tagged], message: NAME_TAG_REFUSED });
    // Keys in extra that ai-toolkit would ignore or refuse next to what the hyperparameters render.
    const train = h.extra?.['train'];
    if (typeof train === 'object' && train !== null && !Array.isArray(train)) {
      if ('seed' in train) {
        ctx.addIssue({ code: 'custom', path: ['extra', 'train', 'seed'], message: 'ai-toolkit has no train.seed (it would be ignored); use seed, which sets training_seed' });
      }
      if ('gradient_accumulation_steps' in train) {
        ctx.addIssue({
          code: 'custom',
          path: ['extra', 'train', 'gradient_accumulation_steps'],
          message: 'counts batches as steps, and ai-toolkit refuses it next to gradient_accumulation; use gradientAccumulation',
        });
      }
    }
  })
  .transform((h) => withModelDefaults({ ...h, alpha: h.alpha ?? h.rank, seed: h.seed ?? null, extra: h.extra ?? null }));

export type Hyperparameters = z.output<typeof hyperparametersInput>;

type SampleSettings = { sampleWidth: number; sampleHeight: number; guidanceScale: number; sampleSteps: number; sampleStrengths: number[] };

/**
 * Fills the settings that default to the base model's. Stored hyperparameters go through it too:
 * runs queued before a setting existed read as if they had been queued with its default.
 */
function withModelDefaults<H extends { baseModel: string } & Partial<SampleSettings>>(h: H): H & SampleSettings {
  const sample = baseModelProfile(h.baseModel).sample;
  return {
    ...h,
    sampleWidth: h.sampleWidth ?? sample.width,
    sampleHeight: h.sampleHeight ?? sample.height,
    guidanceScale: h.guidanceScale ?? sample.guidanceScale,
    sampleSteps: h.sampleSteps ?? sample.sampleSteps,
    sampleStrengths: h.sampleStrengths ?? [1],
  };
}

/**
 * Where a sample of a run belongs. The trainer numbers its samples by sample item: with several
 * strengths, every prompt is one item per strength (prompt-major), so item i is prompt
 * ⌊i / strengths⌋ at strength strengths[i mod strengths].
 */
export function sampleSlot(h: Pick<Hyperparameters, 'sampleStrengths'>, itemIndex: number) {
  const strengths = h.sampleStrengths ?? [1];
  return { promptIndex: Math.floor(itemIndex / strengths.length), strength: strengths[itemIndex % strengths.length]! };
}

/** Hyperparameters as stored with a run or sweep, with every setting present. */
export const storedHyperparameters = (stored: unknown): Hyperparameters => withModelDefaults(stored as Hyperparameters);

/** Nulls from GraphQL mean "not given": drop them so the defaults apply. */
export function withoutNulls(input: Record<string, unknown> | null | undefined) {
  return Object.fromEntries(Object.entries(input ?? {}).filter(([, v]) => v != null));
}
