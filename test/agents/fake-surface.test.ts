// The fake trainer's made-up response surface: a demo sweep has a winner, and without opting in
// the printed losses stay exactly what other tests expect.
import { describe, expect, it } from 'vitest';
import { lossText } from '../../agents/fake-trainer.js';
import { lossOffset, type SurfaceSettings } from '../../agents/fake-trainer/surface.js';

const base: SurfaceSettings = { rank: 32, learningRate: 3e-4, steps: 2000, captioned: true, captionDropout: 0.05, seed: 42 };
const meanLoss = (offset: number, total = 200) => {
  let sum = 0;
  for (let step = total - 50; step < total; step++) sum += Number(lossText(42, step, total, offset));
  return sum / 50;
};

describe('the fake trainer’s loss surface', () => {
  it('is lowest near rank 32 and LR 3e-4, with more steps and with captions', () => {
    const best = lossOffset(base);
    for (const worse of [{ rank: 4 }, { rank: 128 }, { learningRate: 1e-5 }, { learningRate: 2e-3 }, { steps: 500 }, { captioned: false }, { captionDropout: 0.5 }]) {
      expect(lossOffset({ ...base, ...worse }), JSON.stringify(worse)).toBeGreaterThan(best);
    }
    // Smooth: neighbours differ by little.
    expect(Math.abs(lossOffset({ ...base, rank: 24 }) - best)).toBeLessThan(0.01);
  });

  it('moves the printed losses; offset 0 prints what it always did', () => {
    expect(meanLoss(lossOffset({ ...base, rank: 4, learningRate: 2e-3 }))).toBeGreaterThan(meanLoss(lossOffset(base)) + 0.05);
    expect(lossText(42, 17, 30, 0)).toBe(lossText(42, 17, 30));
  });
});
