// Typed hyperparameters with the defaults of DESIGN.md (from a published FLUX LoRA write-up:
// rank 16 at LR 4e-4 is a good default; 2,200–2,600 steps converge, some checkpoints up to 4,000 are good).
import { z } from 'zod';

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

export const hyperparametersInput = z
  .object({
    baseModel: label(500).default('black-forest-labs/FLUX.1-dev'),
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
    optimizer: label(100).default('adamw8bit'),
    lrScheduler: label(100).default('constant'),
    noiseScheduler: label(100).default('flowmatch'),
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
    samplePrompts: z.array(z.string().max(2000, 'must be at most 2,000 characters')).max(100, 'at most 100 prompts').default(DEFAULT_SAMPLE_PROMPTS),
    sampleSeed: int(0, 2_147_483_647).default(42),
    guidanceScale: z.number().min(0, 'must be between 0 and 100').max(100, 'must be between 0 and 100').default(4),
    sampleSteps: int(1, 1000).default(20),
    quantize: z.boolean().default(true),
    dtype: label(20).default('bf16'),
    seed: int(0, 2_147_483_647).nullish(),
    extra: z
      .record(z.string(), z.unknown(), { error: 'must be a JSON object' })
      .nullish(),
  })
  .transform((h) => ({ ...h, alpha: h.alpha ?? h.rank, seed: h.seed ?? null, extra: h.extra ?? null }));

export type Hyperparameters = z.output<typeof hyperparametersInput>;

/** Nulls from GraphQL mean "not given": drop them so the defaults apply. */
export function withoutNulls(input: Record<string, unknown> | null | undefined) {
  return Object.fromEntries(Object.entries(input ?? {}).filter(([, v]) => v != null));
}
