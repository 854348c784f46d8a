// Issue 15, the agent's side of the artifact store:
// - fetching a 1,000-image stored dataset into an empty agent cache (sha256 checked per file) vs a
//   raw parallel download of the same files from the same signed URLs (goal ≥ 0.8×), and a second
//   run on the same agent (goal: no bytes downloaded);
// - the time from the fake trainer renaming a sample into samples/ to a runUpdated subscriber
//   seeing its URL (p50, p99): watcher, reportSample, upload, completeUpload, announcement.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import http from 'node:http';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { ApiClient } from '../agents/api-client.js';
import { startAgent } from '../agents/agent.js';
import { resolveConfig } from '../agents/config.js';
import { DatasetCache } from '../agents/dataset-cache.js';
import { silentLog } from '../agents/log.js';
import { parseSampleFileName } from '../agents/files.js';
import { createKey, gql, isMain, ms, percentile, startServerProcess, table, type ServerProcess, fakeTrainerBasics } from './lib.js';

const IMAGES = Number(process.env.BENCH_DATASET_IMAGES ?? 1000);
const IMAGE_BYTES = 256 * 1024;
const CONCURRENCY = 8;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>) {
  const queue = [...items];
  await Promise.all(Array.from({ length: limit }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
  }));
}

/** A stored dataset of IMAGES random "images", uploaded through beginDatasetUpload (setup, not timed). */
async function storedDataset(server: ServerProcess) {
  const files = Array.from({ length: IMAGES }, (_, i) => ({ fileName: `img${String(i).padStart(4, '0')}.jpg`, bytes: randomBytes(IMAGE_BYTES) }));
  const { createDataset } = await gql(server.url, server.adminKey, `mutation($i: CreateDatasetInput!) { createDataset(input: $i) { id } }`, {
    i: { name: 'bench stored', images: files.map((f) => ({ fileName: f.fileName, sha256: sha256(f.bytes) })) },
  });
  await eachLimited(files, CONCURRENCY, async (f) => {
    const { beginDatasetUpload: u } = await gql(
      server.url,
      server.adminKey,
      `mutation($d: ID!, $i: ArtifactUploadInput!) { beginDatasetUpload(datasetId: $d, input: $i) { artifact { id } alreadyStored parts { number url } } }`,
      { d: createDataset.id, i: { kind: 'DATASET_IMAGE', fileName: f.fileName, sizeBytes: f.bytes.length, sha256: sha256(f.bytes) } },
    );
    const res = await fetch(u.parts[0].url, { method: 'PUT', body: new Uint8Array(f.bytes) });
    await res.arrayBuffer();
    await gql(server.url, server.adminKey, `mutation($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { id } }`, {
      a: u.artifact.id,
      p: [{ number: 1, etag: res.headers.get('etag') }],
    });
  });
  return createDataset.id as string;
}

/** The baseline: GET every URL into a folder, CONCURRENCY at once, keep-alive, no checks. */
async function rawDownload(urls: string[], dir: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  await mkdir(dir, { recursive: true });
  let i = 0;
  await eachLimited(urls, CONCURRENCY, async (url) => {
    const file = path.join(dir, String(i++));
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(url, { agent }, resolve).on('error', reject));
    await pipeline(res, createWriteStream(file));
  });
  agent.destroy();
}

async function datasetFetch(server: ServerProcess, dir: string) {
  const datasetId = await storedDataset(server);
  // An AGENT key reads a dataset's URLs only for the runs it holds: read them as an editor here.
  const api = new ApiClient({ server: server.url, token: server.adminKey });
  const files = await api.storedDatasetFiles(datasetId);
  const urls = files.map((f) => f.url!);

  // Two rounds, each kind in turn, each from nothing (an empty folder, an empty cache): the best of
  // each is compared, so a burst of the machine's other load falls on neither figure alone.
  let rawSeconds = Infinity;
  let cacheSeconds = Infinity;
  let cache!: DatasetCache;
  let first!: Awaited<ReturnType<DatasetCache['fetch']>>;
  const wanted = files.map((f) => ({ fileName: f.fileName, sha256: f.sha256!, url: f.url! }));
  let started: number;
  for (let round = 0; round < 2; round++) {
    rmSync(path.join(dir, 'raw'), { recursive: true, force: true });
    rmSync(path.join(dir, 'cache'), { recursive: true, force: true });
    started = performance.now();
    await rawDownload(urls, path.join(dir, 'raw'));
    rawSeconds = Math.min(rawSeconds, (performance.now() - started) / 1000);
    cache = new DatasetCache(path.join(dir, 'cache'), 100 * 1024 ** 3);
    started = performance.now();
    first = await cache.fetch(wanted, { concurrency: CONCURRENCY });
    cacheSeconds = Math.min(cacheSeconds, (performance.now() - started) / 1000);
  }
  started = performance.now();
  const second = await cache.fetch(wanted, { concurrency: CONCURRENCY });
  const secondSeconds = (performance.now() - started) / 1000;

  const mb = (IMAGES * IMAGE_BYTES) / 1024 / 1024;
  table(`Stored dataset of ${IMAGES} images × ${IMAGE_BYTES / 1024} KiB into an empty agent cache (${CONCURRENCY} at once)`, [
    ['raw parallel download of the same URLs (best of 2)', `${rawSeconds.toFixed(2)} s (${(mb / rawSeconds).toFixed(0)} MiB/s)`],
    ['agent cache: download + sha256 check + rename (best of 2)', `${cacheSeconds.toFixed(2)} s (${(mb / cacheSeconds).toFixed(0)} MiB/s), ${first.downloaded} downloaded`],
    ['ratio (raw time / cache time; goal ≥ 0.8)', (rawSeconds / cacheSeconds).toFixed(2)],
    ['second run on the same agent', `${secondSeconds.toFixed(2)} s, ${second.downloadedBytes} bytes downloaded (goal 0), ${second.hits} from the cache`],
  ]);
}

/** Samples from the fake trainer through the agent to a runUpdated subscriber. */
async function sampleLatency(server: ServerProcess, dir: string) {
  const agentKey = await createKey(server.url, server.adminKey, 'AGENT');
  const basics = await fakeTrainerBasics(server.url, server.adminKey, dir);
  const prompts = ['a photo', 'a painting'];
  const { queueRun } = await gql(server.url, server.adminKey, `mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`, {
    i: { ...basics, hyperparameters: { steps: 300, saveEvery: 1000, sampleEvery: 10, samplePrompts: prompts, extra: { loralab_fake_trainer: { stepMs: 20 } } } },
  });
  const latencies: number[] = [];
  const seen = new Set<string>();
  const ws = createClient({ url: `${server.url.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${server.adminKey}` } });
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  const dispose = ws.subscribe<{ runUpdated: { status: string; samples: { path: string; url: string | null }[] } }>(
    { query: `subscription($id: ID!) { runUpdated(runId: $id) { status samples { path url } } }`, variables: { id: queueRun.id } },
    {
      next: ({ data }) => {
        const now = Date.now();
        for (const sample of data!.runUpdated.samples) {
          if (!sample.url || seen.has(sample.path)) continue;
          seen.add(sample.path);
          // The fake trainer names a sample by the clock just before it encodes, writes and renames it.
          latencies.push(now - parseSampleFileName(path.basename(sample.path))!.epochMs);
        }
        if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(data!.runUpdated.status)) finished();
      },
      error: () => finished(),
      complete: () => finished(),
    },
  );
  const config = resolveConfig({ server: server.url, token: agentKey, workDir: path.join(dir, 'work'), fakeTrainer: true, gpus: '0:Fake GPU:24000', claimWaitSeconds: '2' }, {});
  const agent = startAgent(config, { log: silentLog(), maxRetryDelayMs: 1000 });
  await done;
  dispose();
  await ws.dispose();
  agent.stop();
  await agent.done;
  const sorted = [...latencies].sort((a, b) => a - b);
  table(`A sample renamed into samples/ → its URL seen by a runUpdated subscriber (${latencies.length} samples, fake trainer, embedded store)`, [
    ['p50', ms(percentile(sorted, 50))],
    ['p99', ms(percentile(sorted, 99))],
    ['max', ms(sorted.at(-1) ?? 0)],
  ]);
}

export async function run() {
  const dir = mkdtempSync(path.join(tmpdir(), 'loralab-bench-agent-files-'));
  const server = await startServerProcess();
  try {
    await datasetFetch(server, dir);
    await sampleLatency(server, dir);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) await run();
