// The fake trainer draws its bars with agents/fake-trainer/tqdm.ts. These transcripts were drawn by
// real tqdm 4.70.1 replaying ai-toolkit's training loop; the fake must print the same bytes for the
// same calls, so the fake trainer's output has tqdm's real framing, throttling and cutting.
import { describe, expect, it } from 'vitest';
import { replay, transcripts } from './transcripts.js';

describe('the fake trainer’s tqdm', () => {
  it.each(transcripts().map((t) => [t.file, t] as const))('prints what tqdm 4.70.1 printed, byte for byte: %s', (_file, t) => {
    expect(t.tqdm).toBe('4.70.1');
    const ours = replay(t);
    // Chunk by chunk first, so a difference names its place.
    for (let i = 0; i < Math.max(ours.length, t.chunks.length); i++) {
      expect(JSON.stringify(ours[i]), `chunk ${i}`).toBe(JSON.stringify(t.chunks[i]));
    }
  });
});
