// The agent's side of a resume (agents/resume.ts): the training folder ends up holding exactly the
// stored checkpoint as the only save and its optimizer state, each checked against its sha256;
// bytes the folder already holds are not fetched again.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearSaves, placeResumeFiles, ResumeError } from '../../agents/resume.js';
import { tempDir } from './helpers.js';

const NAME = 'lora_abc';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const checkpoint = Buffer.from('checkpoint bytes at step 40');
const optimizer = Buffer.from('optimizer state at step 40');

describe('placing a stored checkpoint to resume from', () => {
  let server: http.Server;
  let base: string;
  const requests: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      requests.push(req.url!);
      const body = req.url === '/checkpoint' ? checkpoint : req.url === '/optimizer' ? optimizer : null;
      res.writeHead(body ? 200 : 404).end(body ?? undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function folderWithEarlierSaves() {
    const { dir, cleanup } = await tempDir('resume-place');
    const out = path.join(dir, NAME);
    await mkdir(path.join(out, 'samples'), { recursive: true });
    for (const f of [`${NAME}_000000020.safetensors`, `${NAME}_000000060.safetensors`, `${NAME}.safetensors`, 'optimizer.pt', 'config.yaml', 'samples/1__000000020_0.jpg']) {
      await writeFile(path.join(out, f), `old ${f}`);
    }
    return { out, cleanup };
  }

  // The server's URLs exist once it listens.
  const resumeFrom = () => ({ step: 40, checkpointUrl: `${base}/checkpoint`, checkpointSha256: sha256(checkpoint), optimizerStateUrl: `${base}/optimizer`, optimizerStateSha256: sha256(optimizer) });

  it('leaves the checkpoint as the only save, with its optimizer state as optimizer.pt; other files stay', async () => {
    const { out, cleanup } = await folderWithEarlierSaves();
    try {
      const placed = await placeResumeFiles(out, NAME, resumeFrom());
      expect(readdirSync(out).sort()).toEqual(['config.yaml', `${NAME}_000000040.safetensors`, 'optimizer.pt', 'samples']);
      expect(readFileSync(path.join(out, `${NAME}_000000040.safetensors`))).toEqual(checkpoint);
      expect(readFileSync(path.join(out, 'optimizer.pt'))).toEqual(optimizer);
      expect(placed).toMatchObject({ withOptimizer: true, downloadedBytes: checkpoint.length + optimizer.length });

      // Placed again (the same agent claims the run again): the checkpoint is not fetched again.
      requests.length = 0;
      const again = await placeResumeFiles(out, NAME, { ...resumeFrom(), optimizerStateUrl: null, optimizerStateSha256: null });
      expect(requests).toEqual([]);
      expect(again).toMatchObject({ withOptimizer: false, downloadedBytes: 0 });
      // Weights only: no optimizer.pt for the trainer to load.
      expect(readdirSync(out).sort()).toEqual(['config.yaml', `${NAME}_000000040.safetensors`, 'samples']);
    } finally {
      await cleanup();
    }
  });

  it('refuses bytes that are not the stored ones, leaving no checkpoint behind', async () => {
    const { out, cleanup } = await folderWithEarlierSaves();
    try {
      await expect(placeResumeFiles(out, NAME, { ...resumeFrom(), checkpointSha256: sha256(Buffer.from('other')), optimizerStateUrl: null })).rejects.toThrow(ResumeError);
      expect(readdirSync(out).filter((f) => f.endsWith('.safetensors'))).toEqual([]);
      await expect(placeResumeFiles(out, NAME, { ...resumeFrom(), checkpointUrl: `${base}/gone`, optimizerStateUrl: null })).rejects.toThrow(/HTTP 404/);
    } finally {
      await cleanup();
    }
  });

  it('nothing to resume from: earlier saves go, so the trainer starts from scratch', async () => {
    const { out, cleanup } = await folderWithEarlierSaves();
    try {
      expect(await clearSaves(out, NAME)).toBe(4);
      expect(readdirSync(out).sort()).toEqual(['config.yaml', 'samples']);
      expect(await clearSaves(path.join(out, 'missing'), NAME)).toBe(0);
    } finally {
      await cleanup();
    }
  });
});
