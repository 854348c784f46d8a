import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GpuError, GpuMonitor, parseGpuList, parseGpuOverride, parseGpuStats, probeGpus } from '../../agents/gpu.js';
import { tempDir } from './helpers.js';

describe('--gpus', () => {
  it('reads INDEX:NAME:MEMORY_MB entries separated by commas', () => {
    expect(parseGpuOverride('0:NVIDIA GeForce RTX 4090:24564,1:NVIDIA H100 80GB HBM3:81559')).toEqual([
      { index: 0, name: 'NVIDIA GeForce RTX 4090', memoryMb: 24564 },
      { index: 1, name: 'NVIDIA H100 80GB HBM3', memoryMb: 81559 },
    ]);
  });

  it('keeps colons inside a name and ignores spaces around the parts', () => {
    expect(parseGpuOverride(' 2 : Fake: GPU : 24000 , ')).toEqual([{ index: 2, name: 'Fake: GPU', memoryMb: 24000 }]);
  });

  it.each([
    ['', 'lists no GPU'],
    ['0:RTX 4090', 'is not INDEX:NAME:MEMORY_MB'],
    ['x:RTX 4090:24564', 'the index "x" is not a whole number'],
    ['0::24564', 'the GPU name is empty'],
    ['0:RTX 4090:24 GB', 'the memory "24 GB" is not a positive number of MiB'],
    ['0:RTX 4090:0', 'is not a positive number of MiB'],
    ['0:A:1,0:B:1', 'lists GPU 0 twice'],
  ])('refuses %j: %s', (text, message) => {
    expect(() => parseGpuOverride(text)).toThrow(GpuError);
    expect(() => parseGpuOverride(text)).toThrow(message);
  });
});

describe('nvidia-smi output', () => {
  it('lists GPUs from --query-gpu=index,name,memory.total --format=csv,noheader,nounits', () => {
    expect(parseGpuList('0, NVIDIA GeForce RTX 4090, 24564\n1, NVIDIA GeForce RTX 3090, 24576\n')).toEqual([
      { index: 0, name: 'NVIDIA GeForce RTX 4090', memoryMb: 24564 },
      { index: 1, name: 'NVIDIA GeForce RTX 3090', memoryMb: 24576 },
    ]);
  });

  it('reads VRAM in use and utilisation, leaving out what the driver does not know', () => {
    const stats = parseGpuStats('0, 17890, 98\n1, [N/A], [N/A]\n');
    expect(stats.get(0)).toEqual({ vramUsedMb: 17890, utilization: 98 });
    expect(stats.get(1)).toEqual({});
  });
});

describe('probing with nvidia-smi', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('gpu'));
  });
  afterAll(() => cleanup());

  /** A stand-in nvidia-smi that answers each query the way the real one does. */
  async function fakeNvidiaSmi(list: string, stats: string): Promise<string> {
    const file = path.join(dir, `nvidia-smi-${Math.random().toString(36).slice(2)}`);
    await writeFile(
      file,
      `#!/bin/sh\ncase "$1" in\n  --query-gpu=index,name,memory.total) printf '${list}' ;;\n  --query-gpu=index,memory.used,utilization.gpu) printf '${stats}' ;;\n  *) exit 9 ;;\nesac\n`,
    );
    await chmod(file, 0o755);
    return file;
  }

  it('finds the GPUs nvidia-smi lists', async () => {
    const smi = await fakeNvidiaSmi('0, NVIDIA A100-SXM4-80GB, 81920\\n', '');
    expect(await probeGpus(smi)).toEqual([{ index: 0, name: 'NVIDIA A100-SXM4-80GB', memoryMb: 81920 }]);
  });

  it('says how to declare GPUs when there is no nvidia-smi or it lists none', async () => {
    await expect(probeGpus(path.join(dir, 'no-such-nvidia-smi'))).rejects.toThrow(/No NVIDIA GPU found \(.* is not installed\)\. Declare the GPUs with --gpus/);
    await expect(probeGpus(await fakeNvidiaSmi('', ''))).rejects.toThrow(/lists none\)\. Declare the GPUs with --gpus/);
  });

  it('sums VRAM and averages utilisation over the GPUs of a run, and gives up quietly without nvidia-smi', async () => {
    const smi = await fakeNvidiaSmi('', '0, 1000, 90\\n1, 3000, 50\\n2, 5000, 10\\n');
    const monitor = new GpuMonitor(smi);
    expect(await monitor.query([0, 1])).toEqual({ vramUsedMb: 4000, utilization: 70 });
    expect(await monitor.query([7])).toBeNull();
    expect(await new GpuMonitor(path.join(dir, 'missing')).query([0])).toBeNull();
  });
});
