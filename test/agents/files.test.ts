import { describe, expect, it } from 'vitest';
import {
  checkpointFileName,
  checkpointStepFromFileName,
  padStep,
  parseSampleFileName,
  sampleFileName,
} from '../../agents/files.js';
import { encodeSafetensors, readSafetensorsMetadata, stepFromMetadata } from '../../agents/safetensors.js';
import { tempDir } from './helpers.js';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

describe('checkpoint file names', () => {
  const name = 'my_first_flux_lora_v1';

  it('reads the step of an intermediate save and recognises the final one', () => {
    expect(checkpointStepFromFileName(name, `${name}_000000250.safetensors`)).toBe(250);
    expect(checkpointStepFromFileName(name, `${name}_000000000.safetensors`)).toBe(0);
    expect(checkpointStepFromFileName(name, `${name}.safetensors`)).toBe('final');
  });

  it('ignores everything else in the output folder', () => {
    for (const other of [
      'optimizer.pt',
      'config.yaml',
      `${name}_00000250.safetensors`, // 8 digits
      `${name}_0000002500.safetensors`, // 10 digits
      `${name}_000000250.safetensors.tmp`,
      `.${name}_000000250.safetensors.tmp`,
      `${name}_000000250.yaml`,
      `${name}_LoRA_000000250.safetensors`,
      `other_${name}_000000250.safetensors`,
      `${name}_v2.safetensors`,
    ]) {
      expect(checkpointStepFromFileName(name, other), other).toBeNull();
    }
  });

  it('treats the config name literally, not as a pattern', () => {
    expect(checkpointStepFromFileName('lora.v1', 'loraXv1_000000010.safetensors')).toBeNull();
    expect(checkpointStepFromFileName('lora.v1', 'lora.v1_000000010.safetensors')).toBe(10);
    expect(checkpointStepFromFileName('a+b(c)', 'a+b(c).safetensors')).toBe('final');
    expect(checkpointStepFromFileName('a+b(c)', 'aab(c).safetensors')).toBeNull();
  });

  it('formats the names the reader accepts', () => {
    expect(padStep(250)).toBe('000000250');
    expect(checkpointFileName(name, 250)).toBe(`${name}_000000250.safetensors`);
    expect(checkpointFileName(name)).toBe(`${name}.safetensors`);
    for (const step of [0, 1, 999, 123456789]) {
      expect(checkpointStepFromFileName(name, checkpointFileName(name, step))).toBe(step);
    }
  });
});

describe('sample file names', () => {
  it('reads epoch ms, step and prompt index', () => {
    expect(parseSampleFileName('1718000000000__000000250_1.jpg')).toEqual({
      epochMs: 1718000000000,
      step: 250,
      promptIndex: 1,
      ext: 'jpg',
    });
    expect(parseSampleFileName('1718000000000__000000000_12.webp')).toMatchObject({ promptIndex: 12, ext: 'webp' });
  });

  it('refuses names that are not samples', () => {
    for (const bad of [
      '1718000000000__000000250_1.jpeg',
      '171800000000__000000250_1.jpg', // 12-digit time
      '1718000000000_000000250_1.jpg', // one underscore
      '1718000000000__00000250_1.jpg',
      '1718000000000__000000250_.jpg',
      '1718000000000__000000250_1.jpg.tmp',
      '.tmp',
      '1718000000000__000000250_1.png/x',
    ]) {
      expect(parseSampleFileName(bad), bad).toBeNull();
    }
  });

  it('formats names the reader accepts', () => {
    const sample = { epochMs: 1718000000123, step: 30, promptIndex: 2, ext: 'png' as const };
    expect(sampleFileName(sample)).toBe('1718000000123__000000030_2.png');
    expect(parseSampleFileName(sampleFileName(sample))).toEqual(sample);
  });
});

describe('safetensors metadata', () => {
  it('round-trips the metadata and finds the step, also from ai-toolkit’s training_info', async () => {
    const { dir, cleanup } = await tempDir('safetensors');
    try {
      const file = path.join(dir, 'x.safetensors');
      const bytes = encodeSafetensors({ step: '250', name: 'x' }, [
        { name: 'w', dtype: 'F16', shape: [1, 2], data: Buffer.from([0, 60, 0, 60]) },
      ]);
      await writeFile(file, bytes);
      const headerLength = Number(bytes.readBigUInt64LE(0));
      expect(headerLength % 8).toBe(0);
      const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
      expect(header.w).toEqual({ dtype: 'F16', shape: [1, 2], data_offsets: [0, 4] });
      expect(bytes.length).toBe(8 + headerLength + 4);

      const meta = await readSafetensorsMetadata(file);
      expect(meta).toEqual({ step: '250', name: 'x' });
      expect(stepFromMetadata(meta!)).toBe(250);
      expect(stepFromMetadata({ training_info: '{"step": 1200, "epoch": 3}' })).toBe(1200);
      expect(stepFromMetadata({ name: 'x' })).toBeNull();

      await writeFile(file, 'not a safetensors file');
      expect(await readSafetensorsMetadata(file)).toBeNull();
    } finally {
      await cleanup();
    }
  });
});
