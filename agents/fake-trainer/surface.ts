// A made-up response surface for the fake trainer's loss, so a demo sweep has a winner to find: the
// loss floor moves smoothly with rank, learning rate, steps and captions, plus a little per-seed
// noise. Opt in per run with `loralab_fake_trainer: { surface: true }` in hyperparameters.extra;
// without it the fake trainer prints the same losses as before, which tests compare exactly.

export interface SurfaceSettings {
  rank: number;
  learningRate: number;
  steps: number;
  /** The dataset has caption files (.txt beside the images): a captioned dataset learns better. */
  captioned: boolean;
  /** datasets[0].caption_dropout_rate */
  captionDropout: number;
  seed: number;
}

/**
 * What is added to the loss at every step. Best near rank 32 and LR 3e-4; longer runs end lower;
 * captions help, heavy caption dropout hurts a little. Between about −0.08 and +0.25.
 */
export function lossOffset(s: SurfaceSettings): number {
  const rank = 0.03 * Math.log2(Math.max(1, s.rank) / 32) ** 2;
  const lr = 0.06 * Math.log10(Math.max(1e-8, s.learningRate) / 3e-4) ** 2 * 4;
  const steps = -0.02 * Math.max(-2, Math.min(2, Math.log2(Math.max(1, s.steps) / 1000)));
  const captions = (s.captioned ? -0.03 : 0) + 0.04 * Math.max(0, s.captionDropout - 0.05);
  const noise = (((Math.imul(s.seed ^ 0x27d4eb2d, 0x165667b1) >>> 0) / 4294967296) - 0.5) * 0.01;
  return Math.min(0.25, rank + lr + steps + captions + noise);
}
