// Files travelling with the GPU agent, end to end: server + agent + fake trainer (which writes real
// JPEG samples and real safetensors checkpoints). The trainer's samples and checkpoints reach the
// store byte for byte, a stored dataset trains on an agent that starts empty (and a second run on
// it downloads nothing), an agent killed mid-upload resumes without sending finished parts again,
// an upload survives the server going away, and the same bytes in two runs are stored once.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import sharp from 'sharp';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../agents/api-client.js';
import { PARTS_AT_ONCE, Transfers, UploadQueue } from '../agents/uploads.js';
import { rows } from '../src/db/client.js';
import { startServer } from '../src/server.js';
import { registerAgent } from './helpers/agents.js';
import { databaseKinds } from './helpers/databases.js';
import { createExperiment, createStrategy } from './helpers/fixtures.js';
import { startCountingProxy } from './helpers/counting-proxy.js';
import {
  agentConfig,
  agentInProcess,
  agentProcess,
  createDatasetAt,
  killAgentProcesses,
  runState,
  tempFolder,
  waitFor,
  waitForStatus,
  type InProcessAgent,
} from './helpers/gpu-agent.js';
import { motoInstalled, startMoto, type Moto } from './helpers/moto.js';
import { startTestServer, testConfig, type GqlClient, type TestServer } from './helpers/server.js';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const download = async (url: string) => {
  const res = await fetch(url);
  expect(res.status, url).toBe(200);
  return Buffer.from(await res.arrayBuffer());
};

/** begin…Upload, PUT every part, completeUpload: what a client of the store does. */
async function uploadWhole(client: GqlClient, begin: string, variables: Record<string, unknown>, bytes: Buffer) {
  const data = await client.ok(begin, variables);
  const upload = Object.values(data)[0] as { artifact: { id: string }; alreadyStored: boolean; partSize: number | null; parts: { number: number; url: string }[] };
  if (upload.alreadyStored) return;
  const parts = [];
  for (const part of upload.parts) {
    const offset = (part.number - 1) * upload.partSize!;
    const res = await fetch(part.url, { method: 'PUT', body: new Uint8Array(bytes.subarray(offset, offset + upload.partSize!)) });
    await res.arrayBuffer();
    parts.push({ number: part.number, etag: res.headers.get('etag')! });
  }
  await client.ok(`mutation($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { id } }`, { a: upload.artifact.id, p: parts });
}

/** A stored dataset (created without uri) with `count` real JPEGs, uploaded by an editor, and caption files (image name → text) uploaded beside them. */
async function storedDataset(t: TestServer, count: number, captionFiles: Record<string, string> = {}) {
  const images = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 20 * i, g: 100, b: 200 - 10 * i } } })
        .jpeg()
        .toBuffer(),
    ),
  );
  const files = images.map((bytes, i) => ({ fileName: `photo${i}.jpg`, bytes }));
  const { createDataset } = await t.admin.ok(`mutation($i: CreateDatasetInput!) { createDataset(input: $i) { id } }`, {
    i: { name: `stored ${randomBytes(3).toString('hex')}`, images: files.map((f) => ({ fileName: f.fileName, sha256: sha256(f.bytes) })) },
  });
  const editor = await t.as('EDITOR');
  for (const f of files) {
    await uploadWhole(
      editor,
      `mutation($d: ID!, $i: ArtifactUploadInput!) { beginDatasetUpload(datasetId: $d, input: $i) { artifact { id } alreadyStored partSize parts { number url } } }`,
      { d: createDataset.id, i: { kind: 'DATASET_IMAGE', fileName: f.fileName, sizeBytes: f.bytes.length, sha256: sha256(f.bytes) } },
      f.bytes,
    );
  }
  for (const [image, text] of Object.entries(captionFiles)) {
    const bytes = Buffer.from(text, 'utf8');
    await uploadWhole(
      editor,
      `mutation($d: ID!, $i: ArtifactUploadInput!) { beginDatasetUpload(datasetId: $d, input: $i) { artifact { id } alreadyStored partSize parts { number url } } }`,
      { d: createDataset.id, i: { kind: 'DATASET_CAPTION', fileName: image.replace(/\.jpg$/, '.txt'), sizeBytes: bytes.length, sha256: sha256(bytes), contentType: 'text/plain' } },
      bytes,
    );
  }
  return { id: createDataset.id as string, files };
}

const drivers = ['file', 's3'] as const;
const cases = databaseKinds.flatMap((kind) => drivers.map((driver) => [kind, driver] as const));

describe.each(cases)('the agent and the artifact store on %s with the %s driver', (kind, driver) => {
  const skip = driver === 's3' && !motoInstalled;
  let t: TestServer;
  let moto: Moto | null = null;
  let root: string;
  let cleanup: () => Promise<void>;
  let agent: InProcessAgent;
  let workDir: string;
  let experimentId: string;
  let strategyId: string;

  beforeAll(async () => {
    if (skip) return;
    ({ dir: root, cleanup } = await tempFolder('agent-artifacts'));
    if (driver === 's3') moto = await startMoto();
    const defaults = testConfig().artifacts;
    t = await startTestServer(kind, {
      leaseTtlSeconds: 30,
      reaperIntervalSeconds: 3600,
      artifacts: {
        ...defaults,
        partSizeBytes: 5 * MiB,
        ...(moto ? { store: { kind: 's3', bucket: moto.bucket, prefix: `e2e-${randomBytes(4).toString('hex')}` }, s3Endpoint: moto.endpoint, s3ForcePathStyle: true } : {}),
      },
    });
    workDir = path.join(root, 'work');
    const agentKey = await t.as('AGENT');
    [experimentId, strategyId] = await Promise.all([createExperiment(t.admin), createStrategy(t.admin, { kind: 'TRIGGER_ONLY', triggerWord: 'p3r5on' })]);
    agent = agentInProcess(agentConfig({ server: t.url, token: agentKey.key, workDir, name: `files-${driver}`, heartbeatSeconds: '1' }));
  }, 180_000);

  afterAll(async () => {
    agent?.stop();
    agent?.stop();
    await agent?.done;
    await t?.stop();
    await moto?.stop();
    await cleanup?.();
  }, 180_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.log(agent.lines.join('\n'));
  });

  it.skipIf(skip)('stores every sample and checkpoint the trainer wrote, byte for byte, the pruned ones too, and completes once the final one is stored', { timeout: 120_000 }, async () => {
    const datasetId = await createDatasetAt(t.admin, path.join(root, `dataset-${driver}`));
    const { queueRun: run } = await t.admin.ok(`mutation($i: QueueRunInput!) { queueRun(input: $i) { id name } }`, {
      i: {
        experimentId,
        datasetId,
        captionStrategyId: strategyId,
        hyperparameters: { steps: 30, saveEvery: 10, sampleEvery: 10, checkpointsToKeep: 1, samplePrompts: ['[trigger] on a beach', 'a portrait of [trigger]'], extra: { loralab_fake_trainer: { stepMs: 30 } } },
      },
    });
    const done = await waitForStatus(t.admin, run.id, ['SUCCEEDED', 'FAILED', 'CANCELLED']);
    expect(done).toMatchObject({ status: 'SUCCEEDED', error: null });

    const detail = await runState(
      t.admin,
      run.id,
      `samples { step promptIndex path url thumbnailUrl } checkpoints { step isFinal sha256 sizeBytes downloadUrl prunedAt artifact { sha256 sizeBytes } }
       artifacts { kind step fileName stored sizeBytes } events(first: 100) { type data }`,
    );
    // Every sample URL answers exactly the bytes the trainer wrote (baseline, steps 10 and 20, final: 4 × 2 prompts).
    expect(detail.samples).toHaveLength(8);
    for (const s of detail.samples) {
      expect(s.url, `sample ${s.step}/${s.promptIndex}`).toBeTruthy();
      expect(sha256(await download(s.url))).toBe(sha256(readFileSync(s.path)));
      const thumb = await sharp(await download(s.thumbnailUrl)).metadata();
      expect(Math.max(thumb.width!, thumb.height!)).toBeLessThanOrEqual(512);
    }
    // Every checkpoint downloads with its sha256 — step 10's too, which ai-toolkit deleted at step 20.
    expect(detail.checkpoints.map((c: any) => [c.step, c.isFinal])).toEqual([
      [10, false],
      [20, false],
      [30, true],
    ]);
    const outputDir = path.join(workDir, 'runs', run.id, 'output');
    const names = readdirSync(outputDir);
    expect(readdirSync(path.join(outputDir, names[0]!)).filter((f) => f.endsWith('.safetensors'))).toHaveLength(2); // 20 and final: 10 was pruned
    for (const c of detail.checkpoints) {
      const bytes = await download(c.downloadUrl);
      expect(sha256(bytes), `checkpoint ${c.step}`).toBe(c.artifact.sha256);
      expect(bytes.length).toBe(c.artifact.sizeBytes);
      // Step 10 was deleted before the agent's watcher could hash it; the others were reported with theirs.
      if (c.step !== 10) expect(c.sha256).toBe(c.artifact.sha256);
      // A real safetensors file with ai-toolkit's metadata.
      const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
      expect(JSON.parse(header.__metadata__.training_info).step).toBe(c.step);
    }
    const stored = detail.events.filter((e: any) => e.type === 'CHECKPOINT_STORED').map((e: any) => e.data.step);
    expect(stored.sort((a: number, b: number) => a - b)).toEqual([10, 20, 30]);
    // The optimizer state of the newest checkpoint, the rendered config and the trainer's log.
    const artifacts = detail.artifacts.filter((a: any) => a.stored);
    expect(artifacts.filter((a: any) => a.kind === 'OPTIMIZER_STATE').map((a: any) => a.step)).toEqual([30]);
    expect(artifacts.filter((a: any) => a.kind === 'TRAINER_CONFIG' || a.kind === 'TRAINER_LOG').map((a: any) => a.fileName).sort()).toEqual(['config.yaml', 'trainer.log']);
    // The snapshots made for the uploads are gone once stored.
    expect(readdirSync(path.join(workDir, 'runs', run.id, 'attempt-1', 'files'))).toEqual([]);
  });

  it.skipIf(skip)('samples a run at several LoRA strengths: one image per prompt, step and strength, each different, stored byte for byte', { timeout: 120_000 }, async () => {
    const datasetId = await createDatasetAt(t.admin, path.join(root, `dataset-strengths-${driver}`));
    const prompts = ['[trigger] on a beach', 'a portrait of [trigger]'];
    const { queueRun: run } = await t.admin.ok(`mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`, {
      i: { experimentId, datasetId, captionStrategyId: strategyId, hyperparameters: { steps: 10, saveEvery: 10, sampleEvery: 5, samplePrompts: prompts, sampleStrengths: [0.5, 1.0] } },
    });
    expect(await waitForStatus(t.admin, run.id, ['SUCCEEDED', 'FAILED', 'CANCELLED'])).toMatchObject({ status: 'SUCCEEDED' });
    const { samples } = await runState(t.admin, run.id, `samples { step promptIndex strength prompt path url }`);
    // Baseline, step 5 and the final step 10: two prompts at two strengths each.
    expect(samples.map((s: any) => `${s.step}/${s.promptIndex}/${s.strength}`).sort()).toEqual(
      [0, 5, 10].flatMap((step) => [0, 1].flatMap((p) => [0.5, 1].map((m) => `${step}/${p}/${m}`))).sort(),
    );
    // The trainer wrote them as ai-toolkit names several items per step: <time>__<step>_<item>, item = prompt × strengths + strength.
    const names = samples.map((s: any) => path.basename(s.path));
    expect(names.every((n: string) => /^\d{13}__\d{9}_[0-3]\.jpg$/.test(n))).toBe(true);
    const shaOf = new Map<string, string>();
    for (const s of samples) {
      const bytes = await download(s.url);
      expect(sha256(bytes)).toBe(sha256(readFileSync(s.path)));
      expect((await sharp(bytes).metadata()).format).toBe('jpeg');
      shaOf.set(`${s.step}/${s.promptIndex}/${s.strength}`, sha256(bytes));
    }
    // Every image differs from every other: by strength at the same step and prompt, by prompt, by step.
    expect(new Set(shaOf.values()).size).toBe(12);
    for (const step of [0, 5, 10]) for (const p of [0, 1]) expect(shaOf.get(`${step}/${p}/0.5`)).not.toBe(shaOf.get(`${step}/${p}/1`));
  });

  it.skipIf(skip)('trains a stored dataset on an agent whose work folder was empty; a second run on it downloads nothing', { timeout: 120_000 }, async () => {
    const dataset = await storedDataset(t, 4);
    const queue = async () =>
      (
        await t.admin.ok(`mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`, {
          i: { experimentId, datasetId: dataset.id, captionStrategyId: strategyId, hyperparameters: { steps: 5, saveEvery: 1000, sampleEvery: 1000 } },
        })
      ).queueRun.id as string;
    expect(existsSync(path.join(workDir, 'cache'))).toBe(false);
    const first = await queue();
    expect(await waitForStatus(t.admin, first, ['SUCCEEDED', 'FAILED', 'CANCELLED'])).toMatchObject({ status: 'SUCCEEDED' });
    // The staging folder holds the images with the bytes loralab has (hard links into the cache).
    for (const f of dataset.files) {
      const staged = path.join(workDir, 'runs', first, 'dataset', f.fileName);
      expect(sha256(readFileSync(staged))).toBe(sha256(f.bytes));
      const cached = path.join(workDir, 'cache', sha256(f.bytes).slice(0, 2), sha256(f.bytes));
      expect(statSync(staged).ino).toBe(statSync(cached).ino);
    }
    expect(agent.lines.some((l) => l.includes(`${first.slice(0, 8)}`) && l.includes('0 file(s) from the cache, 4 downloaded'))).toBe(true);

    const second = await queue();
    expect(await waitForStatus(t.admin, second, ['SUCCEEDED', 'FAILED', 'CANCELLED'])).toMatchObject({ status: 'SUCCEEDED' });
    expect(agent.lines.some((l) => l.includes(`${second.slice(0, 8)}`) && l.includes('4 file(s) from the cache, 0 downloaded (0 kB)'))).toBe(true);
  });

  it.skipIf(skip)('a stored dataset trained with a FILES strategy gets the caption files uploaded with it, beside its images', { timeout: 120_000 }, async () => {
    const texts = { 'photo0.jpg': 'p3r5on in a red jacket, studio light', 'photo2.jpg': 'p3r5on on a bench\nsecond line kept' };
    const dataset = await storedDataset(t, 3, texts);
    const filesStrategy = await createStrategy(t.admin, { kind: 'FILES', triggerWord: 'p3r5on' });
    const { dataset: listed } = await t.admin.ok(`query($id: ID!) { dataset(id: $id) { images { edges { node { fileName captionFile { fileName stored } } } } } }`, { id: dataset.id });
    expect(listed.images.edges.map((e: any) => e.node.captionFile)).toEqual([{ fileName: 'photo0.txt', stored: true }, null, { fileName: 'photo2.txt', stored: true }]);
    const { queueRun: run } = await t.admin.ok(`mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`, {
      i: { experimentId, datasetId: dataset.id, captionStrategyId: filesStrategy, hyperparameters: { steps: 5, saveEvery: 1000, sampleEvery: 1000 } },
    });
    expect(await waitForStatus(t.admin, run.id, ['SUCCEEDED', 'FAILED', 'CANCELLED'])).toMatchObject({ status: 'SUCCEEDED' });
    // The folder the trainer read: each image, and beside it the .txt with the uploaded text (none where none was uploaded).
    const staged = path.join(workDir, 'runs', run.id, 'dataset');
    expect(readdirSync(staged).filter((f) => !f.startsWith('_')).sort()).toEqual(['photo0.jpg', 'photo0.txt', 'photo1.jpg', 'photo2.jpg', 'photo2.txt']);
    expect(readFileSync(path.join(staged, 'photo0.txt'), 'utf8')).toBe(texts['photo0.jpg']);
    expect(readFileSync(path.join(staged, 'photo2.txt'), 'utf8')).toBe(texts['photo2.jpg']);
    // The trainer was pointed at that folder, reading .txt captions.
    const config = readFileSync(path.join(workDir, 'runs', run.id, 'attempt-1', 'config.yaml'), 'utf8');
    expect(config).toContain(`folder_path: "${staged}"`);
    expect(config).toContain(`caption_ext: "txt"`);
  });
});

describe.each(databaseKinds)('uploads interrupted on %s', (kind) => {
  let root: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir: root, cleanup } = await tempFolder('agent-uploads'));
  });
  afterEach(() => killAgentProcesses());
  afterAll(() => cleanup?.());

  async function queueOn(t: TestServer, dir: string, extra: Record<string, unknown>) {
    const [experimentId, datasetId, captionStrategyId] = await Promise.all([
      createExperiment(t.admin),
      createDatasetAt(t.admin, path.join(dir, 'dataset')),
      createStrategy(t.admin, { kind: 'TRIGGER_ONLY', triggerWord: 'p3r5on' }),
    ]);
    const { queueRun } = await t.admin.ok(`mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`, {
      i: { experimentId, datasetId, captionStrategyId, hyperparameters: { steps: 3, saveEvery: 1000, sampleEvery: 1000, extra: { loralab_fake_trainer: { stepMs: 10, ...extra } } } },
    });
    return queueRun.id as string;
  }

  const finalCheckpoint = async (t: TestServer, runId: string) =>
    (await runState(t.admin, runId, 'checkpoints { isFinal sha256 downloadUrl }')).checkpoints.find((c: any) => c.isFinal);

  it('kill -9 of the agent in the middle of a large checkpoint upload: restarted, it completes without sending finished parts again', { timeout: 180_000 }, async () => {
    const t = await startTestServer(kind, { leaseTtlSeconds: 60, reaperIntervalSeconds: 3600, artifacts: { ...testConfig().artifacts, partSizeBytes: 5 * MiB } });
    const proxy = await startCountingProxy(t.url);
    try {
      const dir = path.join(root, 'kill9');
      const runId = await queueOn(t, dir, { checkpointMiB: 40 });
      const key = await t.as('AGENT');
      const args = ['--server', proxy.url, '--token', key.key!, '--work-dir', path.join(dir, 'work'), '--name', 'box', '--fake-trainer', '--gpus', '0:Fake GPU:24000', '--heartbeat-seconds', '1', '--claim-wait-seconds', '2'];
      proxy.throttleBytesPerSecond = 20 * MiB;
      const first = agentProcess(args);
      // Two parts of the 40 MiB checkpoint (8 parts) are in; then the agent dies.
      await waitFor('two finished parts of the checkpoint', async () => proxy.puts.filter((p) => p.status === 200 && p.bytes === 5 * MiB).length >= 2, 90_000, 20);
      first.child.kill('SIGKILL');
      await first.exited;
      const before = proxy.puts.filter((p) => p.status === 200).map((p) => p.path);
      const sentBefore = proxy.puts.length;
      expect((await runState(t.admin, runId)).status).toBe('RUNNING');

      proxy.throttleBytesPerSecond = null;
      const second = agentProcess(args);
      const done = await waitForStatus(t.admin, runId, ['SUCCEEDED', 'FAILED', 'CANCELLED']);
      expect(done).toMatchObject({ status: 'SUCCEEDED', attempt: 1, error: null });
      const after = proxy.puts.slice(sentBefore);
      // No part the store had received travelled again, and what did travel is what was missing.
      expect(after.filter((p) => before.includes(p.path))).toEqual([]);
      const checkpoint = await finalCheckpoint(t, runId);
      const bytes = await download(checkpoint.downloadUrl);
      expect(sha256(bytes)).toBe(checkpoint.sha256);
      const checkpointKey = after.find((p) => p.bytes === 5 * MiB)!.path.split('/')[3];
      const resent = after.filter((p) => p.path.split('/')[3] === checkpointKey).reduce((sum, p) => sum + p.bytes, 0);
      const receivedBefore = before.filter((p) => p.split('/')[3] === checkpointKey).length * 5 * MiB;
      // The parts on their way when the agent died (PARTS_AT_ONCE of them) may have reached the
      // store all the same (the proxy saw no answer go back): then they are not sent again either.
      expect(resent).toBeLessThanOrEqual(bytes.length - receivedBefore);
      expect(resent).toBeGreaterThanOrEqual(bytes.length - receivedBefore - PARTS_AT_ONCE * 5 * MiB);
      expect(second.output()).toContain('replaying');
      second.child.kill('SIGTERM');
      await second.exited;
    } finally {
      await proxy.close();
      await t.stop();
    }
  });

  it('the server away for 5 s in the middle of an upload: the agent waits and completes it', { timeout: 180_000 }, async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'loralab-outage-'));
    const t = await startTestServer(kind, { dataDir, leaseTtlSeconds: 60, reaperIntervalSeconds: 3600, artifacts: { ...testConfig().artifacts, partSizeBytes: 5 * MiB } });
    let server = t.server;
    const proxy = await startCountingProxy(t.url);
    const dir = path.join(root, 'outage');
    let agent: InProcessAgent | null = null;
    try {
      const runId = await queueOn(t, dir, { checkpointMiB: 30 });
      const key = await t.as('AGENT');
      proxy.throttleBytesPerSecond = 20 * MiB;
      agent = agentInProcess(agentConfig({ server: proxy.url, token: key.key, workDir: path.join(dir, 'work'), name: 'box', heartbeatSeconds: '1' }));
      await waitFor('a finished part', async () => proxy.puts.some((p) => p.status === 200 && p.bytes === 5 * MiB), 90_000, 20);
      await server.close();
      const outage = Date.now();
      await new Promise((r) => setTimeout(r, 5000)); // the outage the scenario is about
      proxy.throttleBytesPerSecond = null;
      server = await startServer({ config: testConfig({ ...t.server.app.config, port: t.server.port }), db: t.database.db, log: pino({ level: 'silent' }) });
      const done = await waitForStatus(t.admin, runId, ['SUCCEEDED', 'FAILED', 'CANCELLED']);
      expect(done).toMatchObject({ status: 'SUCCEEDED', error: null });
      expect(Date.now() - outage).toBeGreaterThanOrEqual(5000);
      const checkpoint = await finalCheckpoint(t, runId);
      expect(sha256(await download(checkpoint.downloadUrl))).toBe(checkpoint.sha256);
      expect(agent.lines.some((l) => l.includes('trying again') || l.includes('server unreachable'))).toBe(true);
    } finally {
      agent?.stop();
      agent?.stop();
      await agent?.done;
      await proxy.close();
      await server.close();
      await t.database.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('the same checkpoint bytes in two runs are stored once; the second run sends none of them', { timeout: 60_000 }, async () => {
    const t = await startTestServer(kind, { reaperIntervalSeconds: 3600, artifacts: { ...testConfig().artifacts, partSizeBytes: 5 * MiB } });
    const proxy = await startCountingProxy(t.url);
    try {
      const dir = path.join(root, 'dedupe');
      const bytes = randomBytes(12 * MiB);
      const file = path.join(dir, 'lora.safetensors');
      await mkdir(dir, { recursive: true });
      await writeFile(file, bytes);
      const agentClient = await t.as('AGENT');
      const box = await registerAgent(t, { gpus: [0, 1].map((index) => ({ index, name: 'Fake GPU', memoryMb: 24_000 })) }, agentClient);
      const transfers = new Transfers(2);
      const runs: string[] = [];
      for (let i = 0; i < 2; i++) {
        const runId = await queueOn(t, path.join(dir, `r${i}`), {});
        const claim = (await box.claim())!;
        expect(claim.run.id).toBe(runId);
        const queue = new UploadQueue({
          api: new ApiClient({ server: proxy.url, token: agentClient.key! }),
          runId,
          leaseToken: claim.leaseToken,
          journal: path.join(dir, `uploads-${i}.jsonl`),
          transfers,
          log: () => {},
        });
        const putsBefore = proxy.puts.length;
        queue.add({ kind: 'CHECKPOINT', file, fileName: 'lora.safetensors', step: 3 });
        await queue.idle();
        queue.close();
        expect(queue.outcomeOf('CHECKPOINT', 3)).toBe('stored');
        const sent = proxy.puts.slice(putsBefore).reduce((sum, p) => sum + p.bytes, 0);
        expect(sent).toBe(i === 0 ? bytes.length : 0);
        runs.push(runId);
      }
      const [blobs] = await rows<{ n: number }>(t.server.db.orm, sql`select count(*)::int as n from artifact_blobs where sha256 = ${sha256(bytes)}`);
      expect(Number(blobs!.n)).toBe(1);
      for (const runId of runs) {
        const { artifacts } = await runState(t.admin, runId, 'artifacts(kind: CHECKPOINT) { stored url }');
        expect(sha256(await download(artifacts[0].url))).toBe(sha256(bytes));
      }
    } finally {
      await proxy.close();
      await t.stop();
    }
  });
});
