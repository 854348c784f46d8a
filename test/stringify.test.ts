import { describe, expect, it } from 'vitest';
import { stringifyResult } from '../src/graphql/stringify.js';

/** A random JSON-like value: long lists, nested objects, members without a JSON form. */
function randomValue(random: () => number, depth: number): unknown {
  const pick = random();
  if (depth > 4 || pick < 0.3) return [null, true, 1.5e-7, -0, 'a"\u2028\n', undefined, 42, () => 1][Math.floor(random() * 8)];
  if (pick < 0.6) {
    // Long lists of small items (a curve's buckets), short lists of anything.
    if (random() < 0.3) return Array.from({ length: 1000 + Math.floor(random() * 3000) }, () => ({ max: random(), step: Math.floor(random() * 1e6), at: undefined }));
    return Array.from({ length: Math.floor(random() * 5) }, () => randomValue(random, depth + 1));
  }
  const object: Record<string, unknown> = {};
  for (let i = 0; i < 4; i++) object[`k${i}\u00e9"`] = randomValue(random, depth + 1);
  return object;
}

describe('the answer writer', () => {
  it('writes exactly what JSON.stringify writes, long lists in slices included', async () => {
    let seed = 7;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    for (let i = 0; i < 200; i++) {
      const value = { data: randomValue(random, 0), errors: i % 5 === 0 ? [{ message: 'x', extensions: { code: 'BAD_USER_INPUT' } }] : undefined };
      expect(await stringifyResult(value)).toBe(`${JSON.stringify(value)}\n`);
    }
    const curve = { data: { run: { c0: Array.from({ length: 10_000 }, (_, i) => ({ max: 1 / (i + 1) })), when: new Date(0) } } };
    expect(await stringifyResult(curve)).toBe(`${JSON.stringify(curve)}\n`);
  });
});
