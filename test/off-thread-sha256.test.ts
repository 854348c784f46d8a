// The worker-thread sha256 that verifies large read-backs must give exactly node:crypto's digest,
// whatever the chunking, for several hashes at once, and for no bytes at all.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { OffThreadSha256 } from '../src/modules/artifacts/off-thread-sha256.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function hashInChunks(bytes: Buffer, chunk: number) {
  const hash = new OffThreadSha256();
  for (let i = 0; i < bytes.length; i += chunk) await hash.update(bytes.subarray(i, i + chunk));
  return hash.digest();
}

describe('sha256 on the worker thread', () => {
  it('gives the same digest as node:crypto for any chunking, across batch boundaries', async () => {
    const bytes = randomBytes(4 * 1024 * 1024 * 5 + 12_345); // five batches and a tail
    for (const chunk of [1, 1000, 65_536, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1, bytes.length]) {
      const slice = chunk === 1 ? bytes.subarray(0, 100_000) : bytes;
      expect(await hashInChunks(slice, chunk), `chunks of ${chunk}`).toBe(sha256(slice));
    }
  });

  it('keeps several hashes apart when they run at once, and hashes nothing as the empty string', async () => {
    const inputs = Array.from({ length: 6 }, (_, i) => randomBytes(3_000_000 + i * 1_000_003));
    const digests = await Promise.all(inputs.map((b, i) => hashInChunks(b, 16_384 * (i + 1))));
    expect(digests).toEqual(inputs.map(sha256));
    expect(await new OffThreadSha256().digest()).toBe(sha256(Buffer.alloc(0)));
  });

  it('forgets a hash that is dropped half way; the worker goes on serving others', async () => {
    const dropped = new OffThreadSha256();
    await dropped.update(randomBytes(5 * 1024 * 1024));
    dropped.drop();
    const bytes = randomBytes(9 * 1024 * 1024);
    expect(await hashInChunks(bytes, 1 << 20)).toBe(sha256(bytes));
  });
});
