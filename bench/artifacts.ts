// Issue 15: a 1 GiB checkpoint uploaded through the embedded store (begin, PUT parts, complete with
// its sha256 verified) vs `cp` of the same file on the same disk (goal ≥ 0.7×); the server's RSS
// growth during that upload (goal ≤ 50 MB: nothing buffered); and the same upload through the S3
// driver (presigned part URLs, then ListParts, CompleteMultipartUpload and the read-back that
// verifies the sha256) vs a raw multipart upload of the same bytes to the same endpoint with the
// AWS SDK (goal ≥ 0.9×). moto_server is the S3 endpoint here. Beside cp, a bare Node HTTP server
// that only writes the PUT parts to a file shows what any upload over HTTP can reach on the machine.
// Both HTTP uploads send their parts with the agent's own code (agents/uploads.ts sendParts).
// BENCH_UPLOAD_MIB, BENCH_PARTS_AT_ONCE and BENCH_SKIP_S3 are for quick looks.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { once } from 'node:events';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { PARTS_AT_ONCE, sendParts } from '../agents/uploads.js';
import { createKey, freePort, gql, isMain, startServerProcess, table, type ServerProcess } from './lib.js';

/** 1 GiB; BENCH_UPLOAD_MIB makes it smaller for a quick look. */
const SIZE = Number(process.env.BENCH_UPLOAD_MIB ?? 1024) * 1024 * 1024;
const PART_MIB = 64;
const PART = PART_MIB * 1024 * 1024;
/**
 * Parts in flight at once: the agent's own number for the embedded store (and the bare server);
 * one for loralab's client and the raw SDK upload to moto, a single Python process that parallel
 * parts only slow down, many times over.
 */
const CONCURRENCY = { embedded: Number(process.env.BENCH_PARTS_AT_ONCE ?? PARTS_AT_ONCE), s3: 1 };
const MB = 1024 * 1024;

async function makeFile(file: string) {
  const out = createWriteStream(file);
  const hash = createHash('sha256');
  for (let written = 0; written < SIZE; written += 16 * MB) {
    const chunk = randomBytes(16 * MB);
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return hash.digest('hex');
}

/** Runs `fn` over 1..count with at most `concurrency` at once. */
async function eachPart<T>(count: number, concurrency: number, fn: (number: number) => Promise<T>) {
  const results: T[] = [];
  let next = 1;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      for (let n = next++; n <= count; n = next++) results[n - 1] = await fn(n);
    }),
  );
  return results;
}

/** Part `number` of the file, read whole (from the page cache): both uploaders send the same buffers. */
async function readPart(file: string, number: number) {
  const start = (number - 1) * PART;
  const length = Math.min(SIZE, start + PART) - start;
  const handle = await open(file, 'r');
  try {
    const body = Buffer.allocUnsafe(length);
    await handle.read(body, 0, length, start);
    return body;
  } finally {
    await handle.close();
  }
}

/** What an agent does: begin, PUT every part from the file (with the agent's own code), complete. */
async function uploadThroughLoralab(server: ServerProcess, file: string, sha256: string, concurrency: number) {
  const agentKey = await createKey(server.url, server.adminKey, 'AGENT');
  const { e, d, s } = await gql(
    server.url,
    server.adminKey,
    `mutation { e: createExperiment(input: { name: "bench", goal: CONCEPT }) { id } d: createDataset(input: { name: "bench", uri: "/data/bench", images: [] }) { id }
      s: createCaptionStrategy(input: { name: "none", kind: NONE }) { id } }`,
  );
  await gql(server.url, server.adminKey, `mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`, { i: { experimentId: e.id, datasetId: d.id, captionStrategyId: s.id } });
  const { registerAgent } = await gql(server.url, agentKey, `mutation { registerAgent(input: { name: "bench", gpus: [{ index: 0, name: "H100", memoryMb: 81559 }] }) { id } }`);
  const { claimRun } = await gql(server.url, agentKey, `mutation($a: ID!) { claimRun(agentId: $a) { run { id } leaseToken } }`, { a: registerAgent.id });

  const started = performance.now();
  const { beginRunUpload: upload } = await gql(
    server.url,
    agentKey,
    `mutation($r: ID!, $t: String!, $i: ArtifactUploadInput!) { beginRunUpload(runId: $r, leaseToken: $t, input: $i) { artifact { id } partSize parts { number url } } }`,
    { r: claimRun.run.id, t: claimRun.leaseToken, i: { kind: 'CHECKPOINT', fileName: 'lora.safetensors', step: 1000, sizeBytes: SIZE, sha256 } },
  );
  if (upload.partSize !== PART) throw new Error(`expected ${PART}-byte parts, got ${upload.partSize}`);
  // The agent's own PUTs: each part streamed from the file on its own connection.
  const etags = await sendParts(upload, file, SIZE, new AbortController().signal, undefined, concurrency);
  const sent = performance.now();
  const { completeUpload } = await gql(server.url, agentKey, `mutation($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { stored } }`, {
    a: upload.artifact.id,
    p: etags,
  });
  if (!completeUpload.stored) throw new Error('not stored');
  const done = performance.now();
  return { seconds: (done - started) / 1000, putSeconds: (sent - started) / 1000, completeSeconds: (done - sent) / 1000 };
}

/**
 * The floor for any upload over HTTP on this machine: a bare Node server (its own process, as
 * loralab's is) that writes each PUT's body at its offset in one file and fsyncs it at the end;
 * no signatures, no records, no sha256. The same parts, as many at once.
 */
const BARE_SERVER = `
const http = require('node:http'), fs = require('node:fs'), { pipeline } = require('node:stream/promises');
const [file, port] = process.argv.slice(1);
fs.writeFileSync(file, '');
http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'POST') { const fd = fs.openSync(file, 'r'); fs.fsyncSync(fd); fs.closeSync(fd); return res.end(); }
  await pipeline(req, fs.createWriteStream(file, { flags: 'r+', start: Number(url.searchParams.get('offset')), highWaterMark: 1 << 20 }));
  res.setHeader('ETag', '"x"').end();
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\\n'));
`;

async function uploadToBareServer(file: string, target: string, concurrency: number) {
  const port = await freePort();
  const child = spawn(process.execPath, ['-e', BARE_SERVER, target, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await once(child.stdout!, 'data');
    const url = `http://127.0.0.1:${port}`;
    const started = performance.now();
    const parts = Array.from({ length: Math.ceil(SIZE / PART) }, (_, i) => ({ number: i + 1, url: `${url}/?offset=${i * PART}` }));
    await sendParts({ partSize: PART, parts }, file, SIZE, new AbortController().signal, undefined, concurrency);
    await (await request(url, { method: 'POST' })).body.dump();
    return (performance.now() - started) / 1000;
  } finally {
    child.kill();
  }
}

/** Samples the server's RSS while `fn` runs; the largest growth over the RSS just before, and the CPU it used. */
async function rssGrowthDuring<T>(server: ServerProcess, fn: () => Promise<T>) {
  const before = server.rssMb();
  const cpuBefore = server.cpuSeconds();
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, server.rssMb())), 20);
  try {
    return { result: await fn(), before, growth: peak - before, cpuSeconds: server.cpuSeconds() - cpuBefore };
  } finally {
    clearInterval(timer);
  }
}

async function startMoto() {
  const port = await freePort();
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  for (let tries = 0; ; tries++) {
    try {
      await fetch(`${endpoint}/moto-api/`);
      break;
    } catch {
      if (tries > 300) throw new Error('moto_server did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    endpoint,
    async stop() {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The baseline for the S3 driver: the AWS SDK uploads the same parts to the same endpoint itself. */
async function rawMultipart(client: S3Client, bucket: string, file: string) {
  const Key = `raw-${randomBytes(4).toString('hex')}`;
  const started = performance.now();
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }));
  const parts = await eachPart(Math.ceil(SIZE / PART), CONCURRENCY.s3, async (number) => {
    const body = await readPart(file, number);
    const { ETag } = await client.send(new UploadPartCommand({ Bucket: bucket, Key, UploadId, PartNumber: number, Body: body }));
    return { PartNumber: number, ETag };
  });
  await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
  const seconds = (performance.now() - started) / 1000;
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
  return seconds;
}

export async function run() {
  const dir = mkdtempSync(path.join(tmpdir(), 'loralab-bench-artifacts-'));
  try {
    const file = path.join(dir, 'lora.safetensors');
    const sha256 = await makeFile(file);

    // Each measurement starts with nothing left to write back from the one before.
    const settle = () => spawnSync('sync');
    const copy = path.join(dir, 'copy.safetensors');
    settle();
    const cpStarted = performance.now();
    const cp = spawnSync('cp', [file, copy]);
    if (cp.status !== 0) throw new Error(`cp failed: ${cp.stderr}`);
    const cpSeconds = (performance.now() - cpStarted) / 1000;
    settle();
    const cpSyncSeconds = (performance.now() - cpStarted) / 1000;
    rmSync(copy);
    settle();
    const bareSeconds = await uploadToBareServer(file, copy, CONCURRENCY.embedded);
    rmSync(copy);
    settle();

    // DATA_DIR in the same temporary folder: the same disk as the file and cp's copy.
    const embedded = await startServerProcess({ env: { DATA_DIR: path.join(dir, 'data'), ARTIFACT_PART_SIZE_MIB: String(PART_MIB) } });
    let upload: Awaited<ReturnType<typeof uploadThroughLoralab>>;
    let rss: { before: number; growth: number; cpuSeconds: number };
    try {
      settle();
      const measured = await rssGrowthDuring(embedded, () => uploadThroughLoralab(embedded, file, sha256, CONCURRENCY.embedded));
      upload = measured.result;
      rss = measured;
    } finally {
      await embedded.stop();
    }
    const rate = (seconds: number) => `${(SIZE / MB / seconds).toFixed(0)} MiB/s`;
    table(`${SIZE / MB} MiB upload through the embedded store (${PART_MIB} MiB parts, ${CONCURRENCY.embedded} at once; fsynced; sha256 verified)`, [
      ['cp of the same file, same disk', `${cpSeconds.toFixed(2)} s (${rate(cpSeconds)})`],
      ['cp, then sync (durable, as the upload is)', `${cpSyncSeconds.toFixed(2)} s (${rate(cpSyncSeconds)})`],
      ['loralab: begin, PUT parts, complete', `${upload.seconds.toFixed(2)} s (${rate(upload.seconds)})`],
      ['  of which PUTs / complete (sha256 catch-up, fsync)', `${upload.putSeconds.toFixed(2)} s / ${upload.completeSeconds.toFixed(2)} s`],
      ['ratio (cp time / loralab time; goal ≥ 0.7)', (cpSeconds / upload.seconds).toFixed(2)],
      ['ratio (cp + sync time / loralab time)', (cpSyncSeconds / upload.seconds).toFixed(2)],
      ['bare Node HTTP server: PUT the parts, fsync', `${bareSeconds.toFixed(2)} s (${rate(bareSeconds)}): the floor for any upload over HTTP here`],
      ['ratio (bare HTTP time / loralab time)', (bareSeconds / upload.seconds).toFixed(2)],
      ['server CPU during the upload', `${rss.cpuSeconds.toFixed(2)} s`],
      // The ratios are wall times: on a shared machine they say as much about the neighbours.
      ['load average (1 min) at the end', os.loadavg()[0]!.toFixed(1)],
      ['server RSS before the upload', `${rss.before.toFixed(0)} MB`],
      ['server RSS growth during it (goal ≤ 50 MB)', `${rss.growth.toFixed(1)} MB`],
    ]);

    if (process.env.BENCH_SKIP_S3) return;
    if (spawnSync('moto_server', ['--help'], { stdio: 'ignore' }).status !== 0) {
      console.log('\nmoto_server is not installed: the S3 comparison is skipped');
      return;
    }
    const moto = await startMoto();
    const credentials = { AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
    Object.assign(process.env, credentials);
    const client = new S3Client({ endpoint: moto.endpoint, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    const bucket = 'loralab-bench';
    try {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      const rawSeconds = await rawMultipart(client, bucket, file);
      const s3 = await startServerProcess({
        env: { ...credentials, DATA_DIR: path.join(dir, 'data-s3'), ARTIFACT_STORE: `s3://${bucket}/bench`, S3_ENDPOINT: moto.endpoint, S3_FORCE_PATH_STYLE: 'true', ARTIFACT_PART_SIZE_MIB: String(PART_MIB) },
      });
      let viaS3: Awaited<ReturnType<typeof uploadThroughLoralab>>;
      try {
        viaS3 = await uploadThroughLoralab(s3, file, sha256, CONCURRENCY.s3);
      } finally {
        await s3.stop();
      }
      table(`${SIZE / MB} MiB upload to S3 (moto at ${moto.endpoint}; ${PART_MIB} MiB parts, ${CONCURRENCY.s3} at a time)`, [
        ['raw multipart with the AWS SDK', `${rawSeconds.toFixed(2)} s (${rate(rawSeconds)})`],
        ['loralab: presigned parts, complete, read back to verify', `${viaS3.seconds.toFixed(2)} s (${rate(viaS3.seconds)})`],
        ['  of which PUTs / complete (join, sha256 read-back)', `${viaS3.putSeconds.toFixed(2)} s / ${viaS3.completeSeconds.toFixed(2)} s`],
        ['ratio (raw time / loralab time; goal ≥ 0.9)', (rawSeconds / viaS3.seconds).toFixed(2)],
      ]);
    } finally {
      client.destroy();
      await moto.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) await run();
