// The artifact store's contract, run against both drivers (files under DATA_DIR, and a real
// S3-protocol server: moto) on every test database: uploads in parts, resume, verification,
// dedupe, signed URLs, who may read and write, lease fencing, stored datasets and retention.
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { request } from 'undici';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { databaseKinds } from './helpers/databases.js';
import { startTestServer, testConfig, type GqlClient, type TestServer } from './helpers/server.js';
import { createBasics, createExperiment, createStrategy, queueRun, type Basics } from './helpers/fixtures.js';
import { claimNewRun, expireLease, registerAgent, type TestAgent } from './helpers/agents.js';
import { motoInstalled, startMoto, type Moto } from './helpers/moto.js';
import { rows } from '../src/db/client.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB; // the smallest part S3 allows
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** A Buffer as a fetch body, without copying it. */
const asBody = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.length) as unknown as BodyInit;

const ARTIFACT = `id kind fileName sizeBytes sha256 contentType step promptIndex stored url storedAt prunedAt`;
const BEGIN_RUN = `mutation($r: ID!, $t: String!, $i: ArtifactUploadInput!) { beginRunUpload(runId: $r, leaseToken: $t, input: $i) { artifact { ${ARTIFACT} } alreadyStored partSize parts { number url } } }`;
const BEGIN_DATASET = `mutation($d: ID!, $i: ArtifactUploadInput!) { beginDatasetUpload(datasetId: $d, input: $i) { artifact { ${ARTIFACT} } alreadyStored partSize parts { number url } } }`;
const COMPLETE = `mutation($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { ${ARTIFACT} thumbnailUrl } }`;
const REPORT_CHECKPOINT = `mutation($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { id } }`;
const REPORT_SAMPLE = `mutation($r: ID!, $t: String!, $i: SampleInput!) { reportSample(runId: $r, leaseToken: $t, input: $i) { id } }`;

interface Upload {
  artifact: { id: string; stored: boolean; url: string | null };
  alreadyStored: boolean;
  partSize: number | null;
  parts: { number: number; url: string }[];
}

/** PUTs part `number` of `bytes` to its URL as any HTTP client would; the answer's status and ETag. */
async function putPart(upload: Upload, bytes: Buffer, number: number, body?: Buffer) {
  const part = upload.parts.find((p) => p.number === number)!;
  const offset = (number - 1) * upload.partSize!;
  const res = await fetch(part.url, { method: 'PUT', body: asBody(body ?? bytes.subarray(offset, offset + upload.partSize!)) });
  await res.arrayBuffer();
  return { status: res.status, etag: res.headers.get('etag') };
}

/** Sends the given parts (default: all missing, in order) and returns their ETags. */
async function sendParts(upload: Upload, bytes: Buffer, numbers = upload.parts.map((p) => p.number)) {
  const sent: { number: number; etag: string }[] = [];
  for (const number of numbers) {
    const { status, etag } = await putPart(upload, bytes, number);
    expect(status, `PUT of part ${number}`).toBe(200);
    sent.push({ number, etag: etag! });
  }
  return sent;
}

const declaration = (bytes: Buffer, input: Record<string, unknown>) => ({ sizeBytes: bytes.length, sha256: sha256(bytes), ...input });

/** A GET as curl would send it (fetch would add Cache-Control: no-cache to a conditional request). */
async function download(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  const header = (name: string) => {
    const value = res.headers[name];
    return value == null ? null : String(value);
  };
  return { res: { status: res.statusCode, headers: { get: header } }, body };
}

async function jpeg(width: number, height: number) {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 80, b: 40 } } })
    .jpeg()
    .toBuffer();
}

/** Descriptors of this process (test servers run in it) open on `file`; with 'writing', only those open read-write. */
function descriptorsOn(file: string, only?: 'writing') {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== file) return false;
      const flags = Number.parseInt(/^flags:\s+(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
      return only !== 'writing' || (flags & 3) === 2; // O_RDWR
    } catch {
      return false; // closed meanwhile
    }
  }).length;
}

const drivers = ['file', 's3'] as const;

/**
 * The type and file name a GET answers with. With S3 they come from the presigned URL's
 * response-content-type / -disposition overrides, which AWS, R2, MinIO and GCS honour and moto
 * ignores: there the checks stay with the embedded store.
 */
const servedAs = (driver: string) => driver === 'file';
const cases = databaseKinds.flatMap((kind) => drivers.map((driver) => [kind, driver] as const));

describe.each(cases)('artifact store on %s with the %s driver', (kind, driver) => {
  const skip = driver === 's3' && !motoInstalled;
  let t: TestServer;
  let moto: Moto | null = null;
  let dataDir: string;
  let basics: Basics;
  let agent: TestAgent;

  beforeAll(async () => {
    if (skip) return;
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'loralab-artifacts-'));
    if (driver === 's3') moto = await startMoto();
    const defaults = testConfig().artifacts;
    t = await startTestServer(kind, {
      dataDir,
      reaperIntervalSeconds: 3600,
      artifacts: {
        ...defaults,
        partSizeBytes: PART,
        maxBytes: 64 * MiB,
        ...(moto ? { store: { kind: 's3', bucket: moto.bucket, prefix: `t-${randomBytes(4).toString('hex')}` }, s3Endpoint: moto.endpoint, s3ForcePathStyle: true } : {}),
      },
    });
    basics = await createBasics(t.admin);
    agent = await registerAgent(t, { gpus: Array.from({ length: 32 }, (_, index) => ({ index, name: 'A', memoryMb: 24_000 })) });
  });
  afterAll(async () => {
    await t?.stop();
    await moto?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const claimed = () => claimNewRun(t, basics, agent);
  const begin = async (client: GqlClient, runId: string, token: string, input: Record<string, unknown>): Promise<Upload> =>
    (await client.ok(BEGIN_RUN, { r: runId, t: token, i: input })).beginRunUpload;
  const complete = async (client: GqlClient, artifactId: string, parts: { number: number; etag: string }[]) =>
    (await client.ok(COMPLETE, { a: artifactId, p: parts })).completeUpload;

  it.skipIf(skip)('stores a checkpoint sent in parts out of order, verified, attached to its checkpoint and downloadable by name', async () => {
    const { runId, token } = await claimed();
    const bytes = randomBytes(2 * PART + 123_456);
    const upload = await begin(agent.client, runId, token, declaration(bytes, { kind: 'CHECKPOINT', fileName: 'lora_000000250.safetensors', step: 250 }));
    expect(upload.alreadyStored).toBe(false);
    expect(upload.partSize).toBe(PART);
    expect(upload.parts.map((p) => p.number)).toEqual([1, 2, 3]);
    expect(upload.artifact.stored).toBe(false);
    expect(upload.artifact.url).toBeNull();

    const etags = await sendParts(upload, bytes, [3, 1, 2]);
    const stored = await complete(agent.client, upload.artifact.id, etags);
    expect(stored).toMatchObject({ stored: true, sizeBytes: bytes.length, sha256: sha256(bytes), contentType: 'application/octet-stream', step: 250 });

    // Reported after the upload: the two meet by step.
    await agent.client.ok(REPORT_CHECKPOINT, { r: runId, t: token, i: { step: 250, path: '/out/lora_000000250.safetensors' } });
    const { run } = await t.admin.ok(
      `query($id: ID!) { run(id: $id) { name storageBytes checkpoints { step downloadUrl artifact { id stored } } events { type data } } }`,
      { id: runId },
    );
    expect(run.checkpoints[0].artifact).toEqual({ id: upload.artifact.id, stored: true });
    expect(run.storageBytes).toBe(bytes.length);
    expect(run.events.find((e: { type: string }) => e.type === 'CHECKPOINT_STORED')?.data).toMatchObject({ step: 250, sizeBytes: bytes.length });

    // No Authorization header: the signature is the permission.
    const { res, body } = await download(run.checkpoints[0].downloadUrl);
    expect(res.status).toBe(200);
    expect(sha256(body)).toBe(sha256(bytes));
    const expectedName = `${run.name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/_+/g, '_').replace(/^[._]+|_+$/g, '')}-step250.safetensors`;
    if (servedAs(driver)) expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${expectedName}"`);
    expect(run.checkpoints[0].downloadUrl).toContain(driver === 'file' ? expectedName : encodeURIComponent(expectedName));
  });

  it.skipIf(skip)('resumes: begin again returns the same artifact and only the missing parts; completing lists only the parts sent since', async () => {
    const { runId, token } = await claimed();
    const bytes = randomBytes(2 * PART + 10);
    const input = declaration(bytes, { kind: 'CHECKPOINT', fileName: 'lora_000000500.safetensors', step: 500 });
    const first = await begin(agent.client, runId, token, input);
    await sendParts(first, bytes, [2]); // then the agent is killed

    const again = await begin(agent.client, runId, token, input);
    expect(again.artifact.id).toBe(first.artifact.id);
    expect(again.parts.map((p) => p.number)).toEqual([1, 3]);
    const sinceRestart = await sendParts(again, bytes);
    const stored = await complete(agent.client, first.artifact.id, sinceRestart);
    expect(stored.stored).toBe(true);
    // Completing again is harmless; beginning again says there is nothing to send.
    expect((await complete(agent.client, first.artifact.id, [])).stored).toBe(true);
    const third = await begin(agent.client, runId, token, input);
    expect(third).toMatchObject({ alreadyStored: true, parts: [], partSize: null });
    expect(third.artifact.id).toBe(first.artifact.id);
  });

  it.skipIf(skip)('names parts not received yet and refuses an ETag that is not the last PUT of its part', async () => {
    const { runId, token } = await claimed();
    const bytes = randomBytes(PART + 5);
    const upload = await begin(agent.client, runId, token, declaration(bytes, { kind: 'TRAINER_LOG', fileName: 'trainer.log' }));
    const [one] = await sendParts(upload, bytes, [1]);
    const missing = await agent.client.fails('BAD_USER_INPUT', COMPLETE, { a: upload.artifact.id, p: [one] }, 'parts');
    expect(missing.message).toContain('2');
    await sendParts(upload, bytes, [2]);
    await agent.client.fails('BAD_USER_INPUT', COMPLETE, { a: upload.artifact.id, p: [{ number: 1, etag: '"not-the-one"' }] }, 'parts.0.etag');
    expect((await complete(agent.client, upload.artifact.id, [one!])).stored).toBe(true);
  });

  it.skipIf(skip)('refuses bytes whose sha256 or size differ from the declaration: the artifact stays unstored and begin asks for every part', async () => {
    const { runId, token } = await claimed();
    const bytes = randomBytes(PART + 1000);
    const input = declaration(bytes, { kind: 'CHECKPOINT', fileName: 'lora.safetensors', step: 750 });
    const upload = await begin(agent.client, runId, token, input);
    const liar = Buffer.from(bytes);
    liar[10] ^= 0xff;
    const etags = await sendParts(upload, liar);
    const error = await agent.client.fails('BAD_USER_INPUT', COMPLETE, { a: upload.artifact.id, p: etags }, 'parts');
    expect(error.message).toContain('sha256');
    const { run } = await t.admin.ok(`query($id: ID!) { run(id: $id) { artifacts(kind: CHECKPOINT) { id stored url } } }`, { id: runId });
    expect(run.artifacts).toEqual([{ id: upload.artifact.id, stored: false, url: null }]);
    expect((await rows(t.server.db.orm, sql`select 1 from artifact_blobs where sha256 = ${sha256(bytes)} or sha256 = ${sha256(liar)}`)).length).toBe(0);

    // A short part: refused when PUT (embedded store) or at completion (a bucket that does not check).
    const retry = await begin(agent.client, runId, token, input);
    expect(retry.parts.map((p) => p.number)).toEqual([1, 2]);
    const [full] = await sendParts(retry, bytes, [1]);
    const short = await putPart(retry, bytes, 2, bytes.subarray(PART, PART + 10));
    if (short.status === 200) await agent.client.fails('BAD_USER_INPUT', COMPLETE, { a: upload.artifact.id, p: [full!, { number: 2, etag: short.etag! }] }, 'parts');
    else expect(short.status).toBe(400);
    const long = await putPart(retry, bytes, 2, Buffer.concat([bytes.subarray(PART), randomBytes(100)]));
    if (long.status !== 200) expect(long.status).toBe(413);

    // The honest bytes still go through.
    const last = await begin(agent.client, runId, token, input);
    expect(last.parts.map((p) => p.number)).toEqual([2]);
    const [two] = await sendParts(last, bytes);
    expect((await complete(agent.client, upload.artifact.id, [two!])).stored).toBe(true);

    await agent.client.fails('PAYLOAD_TOO_LARGE', BEGIN_RUN, { r: runId, t: token, i: { kind: 'CHECKPOINT', fileName: 'huge.safetensors', sizeBytes: 65 * MiB, sha256: sha256(bytes) } }, 'input.sizeBytes');
    await agent.client.fails('BAD_USER_INPUT', BEGIN_RUN, { r: runId, t: token, i: { kind: 'CHECKPOINT', fileName: '../x', sizeBytes: 1, sha256: sha256(bytes) } }, 'input.fileName');
    await agent.client.fails('BAD_USER_INPUT', BEGIN_RUN, { r: runId, t: token, i: { kind: 'DATASET_IMAGE', fileName: 'x.jpg', sizeBytes: 1, sha256: sha256(bytes) } }, 'input.kind');
  });

  it.skipIf(skip)('a part PUT again with other bytes: completion checks the bytes the store kept, not the ones that came first', async () => {
    const { runId, token } = await claimed();
    const bytes = randomBytes(2 * PART + 10);
    const input = declaration(bytes, { kind: 'CHECKPOINT', fileName: 'lora.safetensors', step: 1250 });
    const liar = Buffer.from(bytes);
    liar[PART + 7] ^= 0xff;
    const upload = await begin(agent.client, runId, token, input);
    // The honest bytes first, then other bytes for part 2: what the store keeps is not what was declared.
    const [one, , three] = await sendParts(upload, bytes);
    const swapped = await putPart(upload, liar, 2);
    expect(swapped.status).toBe(200);
    const error = await agent.client.fails('BAD_USER_INPUT', COMPLETE, { a: upload.artifact.id, p: [one!, { number: 2, etag: swapped.etag! }, three!] }, 'parts');
    expect(error.message).toContain('sha256');

    // The other way round: wrong bytes for part 2 first, then the right ones, all parts at once.
    const retry = await begin(agent.client, runId, token, input);
    expect(retry.parts.map((p) => p.number)).toEqual([1, 2, 3]);
    expect((await putPart(retry, liar, 2)).status).toBe(200);
    const etags = await Promise.all([1, 2, 3].map(async (number) => ({ number, etag: (await putPart(retry, bytes, number)).etag! })));
    const stored = await complete(agent.client, retry.artifact.id, etags);
    expect(stored).toMatchObject({ stored: true, sha256: sha256(bytes) });
    expect((await download(stored.url)).body.equals(bytes)).toBe(true);
  });

  it.skipIf(skip || driver === 's3')('verifies an upload as its parts arrive, even several at once, and reads it back only when a part came twice', async () => {
    const verifications = async () => {
      const text = await (await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${t.admin.key}` } })).text();
      const count = (how: string) => Number(new RegExp(`^loralab_artifact_verifications_total\\{how="${how}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
      return { asReceived: count('as_received'), readBack: count('read_back') };
    };
    const { runId, token } = await claimed();
    const bytes = randomBytes(4 * PART + 99);
    const before = await verifications();
    const upload = await begin(agent.client, runId, token, declaration(bytes, { kind: 'CHECKPOINT', fileName: 'lora.safetensors', step: 1500 }));
    const etags = await Promise.all([5, 3, 1, 2, 4].map(async (number) => ({ number, etag: (await putPart(upload, bytes, number)).etag! })));
    const stored = await complete(agent.client, upload.artifact.id, etags);
    expect(stored).toMatchObject({ stored: true, sha256: sha256(bytes) });
    expect((await download(stored.url)).body.equals(bytes)).toBe(true);
    expect(await verifications()).toEqual({ asReceived: before.asReceived + 1, readBack: before.readBack });

    const again = randomBytes(PART + 1);
    const second = await begin(agent.client, runId, token, declaration(again, { kind: 'CHECKPOINT', fileName: 'lora.safetensors', step: 1750 }));
    await sendParts(second, again);
    const resent = await sendParts(second, again, [1]); // a retry of a part the store had: its bytes are read back
    expect((await complete(agent.client, second.artifact.id, resent)).stored).toBe(true);
    expect(await verifications()).toEqual({ asReceived: before.asReceived + 1, readBack: before.readBack + 1 });
  });

  it.skipIf(skip || driver === 's3')('cuts off a PUT still arriving when its upload completes: its later bytes never reach the stored object', async () => {
    const { runId, token } = await claimed();
    const bytes = randomBytes(2 * PART + 10);
    const upload = await begin(agent.client, runId, token, declaration(bytes, { kind: 'CHECKPOINT', fileName: 'lora.safetensors', step: 2250 }));
    const etags = await sendParts(upload, bytes);
    const key = /\/u\/([^/]+)\/1\?/.exec(upload.parts[0]!.url)![1]!;
    const dataFile = path.join(dataDir, 'artifacts', 'uploads', key, 'data');

    // Part 1 again, as a slow retry: half of it now (the same bytes), the rest after completion.
    const retry = httpRequest(upload.parts[0]!.url, { method: 'PUT', headers: { 'content-length': String(PART) } });
    const answered = new Promise<number | Error>((resolve) => {
      retry.on('response', (res) => (res.resume(), resolve(res.statusCode!)));
      retry.on('error', resolve);
    });
    retry.write(bytes.subarray(0, PART / 2));
    await vi.waitFor(() => expect(descriptorsOn(dataFile, 'writing')).toBe(1), { timeout: 10_000, interval: 5 });

    const stored = await complete(agent.client, upload.artifact.id, etags);
    expect(stored).toMatchObject({ stored: true, sha256: sha256(bytes) });
    // Other bytes for the rest of the part: the store must not take them into the stored object.
    retry.end(randomBytes(PART / 2));
    const answer = await answered;
    expect(answer === 200, 'the retry was written after completion').toBe(false);
    // The stored object, as read from the store's folder (what every download of it serves).
    const storageKey = /\/o\/([^/]+)\//.exec(stored.url)![1]!;
    expect(sha256(readFileSync(path.join(dataDir, 'artifacts', 'objects', storageKey.slice(2, 4), storageKey)))).toBe(sha256(bytes));
  });

  it.skipIf(skip)('stores the same bytes once: a second run begins "already stored" and both read them', async () => {
    const a = await claimed();
    const b = await claimed();
    const bytes = randomBytes(300_000);
    const input = declaration(bytes, { kind: 'CHECKPOINT', fileName: 'lora.safetensors', step: 100 });
    const first = await begin(agent.client, a.runId, a.token, input);
    expect(first.parts).toHaveLength(1);
    await complete(agent.client, first.artifact.id, await sendParts(first, bytes));

    const second = await begin(agent.client, b.runId, b.token, input);
    expect(second).toMatchObject({ alreadyStored: true, parts: [], partSize: null });
    expect(second.artifact.id).not.toBe(first.artifact.id);
    expect(second.artifact.stored).toBe(true);
    expect((await rows(t.server.db.orm, sql`select storage_key from artifact_blobs where sha256 = ${sha256(bytes)}`)).length).toBe(1);
    for (const runId of [a.runId, b.runId]) {
      const { run } = await t.admin.ok(`query($id: ID!) { run(id: $id) { storageBytes artifacts { url } } }`, { id: runId });
      expect(run.storageBytes).toBe(bytes.length);
      expect(sha256((await download(run.artifacts[0].url)).body)).toBe(sha256(bytes));
    }
  });

  it.skipIf(skip)('shows samples as images with a thumbnail at most 512 px, whichever of report and upload comes first', async () => {
    const { runId, token } = await claimed();
    const image = await jpeg(1024, 768);
    await agent.client.ok(REPORT_SAMPLE, { r: runId, t: token, i: { step: 250, promptIndex: 0, prompt: 'a photo of p3r5on', path: '/out/samples/x_0.jpg' } });
    for (const promptIndex of [0, 1]) {
      const upload = await begin(agent.client, runId, token, declaration(image, { kind: 'SAMPLE', fileName: `x_${promptIndex}.jpg`, step: 250, promptIndex, contentType: 'text/html' }));
      const stored = await complete(agent.client, upload.artifact.id, await sendParts(upload, image));
      expect(stored.contentType).toBe('image/jpeg'); // sniffed, not declared
    }
    await agent.client.ok(REPORT_SAMPLE, { r: runId, t: token, i: { step: 250, promptIndex: 1, path: '/out/samples/x_1.jpg' } });
    const { run } = await t.admin.ok(`query($id: ID!) { run(id: $id) { samples { promptIndex url thumbnailUrl artifact { stored } } } }`, { id: runId });
    expect(run.samples).toHaveLength(2);
    for (const sample of run.samples) {
      expect(sample.artifact.stored).toBe(true);
      const full = await download(sample.url);
      if (servedAs(driver)) expect(full.res.headers.get('content-type')).toBe('image/jpeg');
      expect(full.body.equals(image)).toBe(true);
      const thumb = await download(sample.thumbnailUrl);
      expect(thumb.res.headers.get('content-type')).toBe('image/webp');
      const meta = await sharp(thumb.body).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['webp', 512, 384]);
    }
  });

  it.skipIf(skip)('answers Range requests and a revalidation with its ETag', async () => {
    const { runId, token } = await claimed();
    const bytes = randomBytes(100_000);
    const upload = await begin(agent.client, runId, token, declaration(bytes, { kind: 'TRAINER_CONFIG', fileName: 'config.yaml' }));
    const stored = await complete(agent.client, upload.artifact.id, await sendParts(upload, bytes));
    const range = await download(stored.url, { range: 'bytes=1000-1999' });
    expect(range.res.status).toBe(206);
    expect(range.body.equals(bytes.subarray(1000, 2000))).toBe(true);
    expect(range.res.headers.get('content-range')).toBe(`bytes 1000-1999/${bytes.length}`);
    const etag = range.res.headers.get('etag')!;
    expect(etag).toBeTruthy();
    const again = await download(stored.url, { 'if-none-match': etag });
    expect(again.res.status).toBe(304);
    // Random bytes declared as a config are no text: a download, never shown inline.
    expect(stored.contentType).toBe('application/octet-stream');
    if (servedAs(driver)) expect(range.res.headers.get('content-disposition')).toBe('attachment; filename="config.yaml"');
  });

  it.skipIf(skip || driver === 's3')('refuses a tampered or expired URL with 403 (the embedded store checks its own signatures)', async () => {
    const { runId, token } = await claimed();
    const bytes = Buffer.from('hello, loralab\n');
    const upload = await begin(agent.client, runId, token, declaration(bytes, { kind: 'TRAINER_LOG', fileName: 'trainer.log' }));
    const tamperedPut = upload.parts[0]!.url.replace(/length=\d+/, 'length=999');
    expect((await fetch(tamperedPut, { method: 'PUT', body: asBody(bytes) })).status).toBe(403);
    const stored = await complete(agent.client, upload.artifact.id, await sendParts(upload, bytes));
    expect(stored.contentType).toBe('text/plain; charset=utf-8');
    const good = await download(stored.url);
    expect(good.res.status).toBe(200);
    expect(good.res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(good.res.headers.get('content-security-policy')).toContain("default-src 'none'");

    const url = new URL(stored.url);
    const asHtml = new URL(url);
    asHtml.searchParams.set('type', 'text/html');
    expect((await download(asHtml.toString())).res.status).toBe(403);
    const otherName = new URL(url);
    otherName.pathname = otherName.pathname.replace(/[^/]+$/, 'evil.html');
    expect((await download(otherName.toString())).res.status).toBe(403);
    const later = new URL(url);
    later.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 3600));
    expect((await download(later.toString())).res.status).toBe(403);

    // Signed properly by the server's own key, but back-dated: expired.
    const signer = t.server.app.artifacts.signer!;
    const params = Object.fromEntries([...url.searchParams].filter(([k]) => k !== 'expires' && k !== 'signature'));
    const expired = signer.sign('GET', url.pathname, params, Math.floor(Date.now() / 1000) - 1);
    const res = await download(`${url.origin}${expired}`);
    expect(res.res.status).toBe(403);
    expect(res.body.toString()).toContain('expired');
  });

  it.skipIf(skip)('gives a VIEWER URLs but no uploads, and refuses an AGENT key whose agents never held the run', async () => {
    const { runId, token } = await claimed();
    const bytes = randomBytes(4000);
    const upload = await begin(agent.client, runId, token, declaration(bytes, { kind: 'CHECKPOINT', fileName: 'lora.safetensors', step: 50 }));
    await agent.client.ok(REPORT_CHECKPOINT, { r: runId, t: token, i: { step: 50, path: '/out/lora.safetensors' } });

    const viewer = await t.as('VIEWER');
    await viewer.fails('FORBIDDEN', BEGIN_RUN, { r: runId, t: token, i: declaration(bytes, { kind: 'TRAINER_LOG', fileName: 'x.log' }) });
    await viewer.fails('FORBIDDEN', COMPLETE, { a: upload.artifact.id, p: [] });
    await viewer.fails('FORBIDDEN', BEGIN_DATASET, { d: basics.datasetId, i: declaration(bytes, { kind: 'DATASET_IMAGE', fileName: 'img0.jpg' }) });

    const other = await registerAgent(t);
    await other.client.fails('FORBIDDEN', BEGIN_RUN, { r: runId, t: token, i: declaration(bytes, { kind: 'TRAINER_LOG', fileName: 'x.log' }) });
    await other.client.fails('FORBIDDEN', COMPLETE, { a: upload.artifact.id, p: [] });
    const editor = await t.as('EDITOR');
    await editor.fails('FORBIDDEN', COMPLETE, { a: upload.artifact.id, p: [] });

    await complete(agent.client, upload.artifact.id, await sendParts(upload, bytes));
    const query = `query($id: ID!) { run(id: $id) { checkpoints { downloadUrl } } }`;
    const seen = await viewer.ok(query, { id: runId });
    expect(sha256((await download(seen.run.checkpoints[0].downloadUrl)).body)).toBe(sha256(bytes));
    expect((await agent.client.ok(query, { id: runId })).run.checkpoints[0].downloadUrl).toBeTruthy();
    // Outside an AGENT key's read scope the run does not exist for it: no URL can leak.
    expect((await other.client.ok(query, { id: runId })).run).toBeNull();
  });

  it.skipIf(skip)("fences begin by the lease: a zombie's begin is LEASE_LOST; the attempt that finished the run may still send files", async () => {
    const zombie = await claimed();
    await expireLease(t, zombie.runId);
    await t.server.reaper.sweep();
    const bytes = randomBytes(1000);
    await agent.client.fails('LEASE_LOST', BEGIN_RUN, { r: zombie.runId, t: zombie.token, i: declaration(bytes, { kind: 'TRAINER_LOG', fileName: 'trainer.log' }) });
    await t.admin.ok(`mutation($id: ID!) { cancelRun(id: $id) { id } }`, { id: zombie.runId });

    const done = await claimed();
    expect((await agent.complete(done.runId, done.token, 'FAILED', { code: 'X', message: 'boom' })).errors).toBeUndefined();
    const late = await begin(agent.client, done.runId, done.token, declaration(bytes, { kind: 'TRAINER_LOG', fileName: 'trainer.log' }));
    expect((await complete(agent.client, late.artifact.id, await sendParts(late, bytes))).stored).toBe(true);
  });

  it.skipIf(skip)('keeps a stored dataset: sha256 per image, bytes as declared, no runs until every image is stored', async () => {
    const images = await Promise.all([jpeg(640, 480), jpeg(300, 900)]);
    const declared = images.map((bytes, i) => ({ fileName: `img${i}.jpg`, sha256: sha256(bytes), width: 640, height: 480 }));
    await t.admin.fails('BAD_USER_INPUT', `mutation($i: CreateDatasetInput!) { createDataset(input: $i) { id } }`, { i: { name: 'no sha', images: [{ fileName: 'a.jpg' }] } }, 'input.images.0.sha256');
    const { createDataset } = await t.admin.ok(`mutation($i: CreateDatasetInput!) { createDataset(input: $i) { id uri stored storedImageCount } }`, {
      i: { name: 'stored photos', images: declared },
    });
    expect(createDataset.uri).toBe(`loralab://datasets/${createDataset.id}`);
    expect(createDataset).toMatchObject({ stored: false, storedImageCount: 0 });
    const datasetId = createDataset.id;
    const [experimentId, strategyId] = await Promise.all([createExperiment(t.admin), createStrategy(t.admin)]);
    const queue = `mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`;
    await t.admin.fails('BAD_USER_INPUT', queue, { i: { experimentId, datasetId, captionStrategyId: strategyId } }, 'input.datasetId');

    const editor = await t.as('EDITOR');
    const beginImage = (input: Record<string, unknown>) => editor.request(BEGIN_DATASET, { d: datasetId, i: input });
    expect((await beginImage(declaration(images[0]!, { kind: 'DATASET_IMAGE', fileName: 'other.jpg' }))).errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.fileName' });
    expect((await beginImage(declaration(images[1]!, { kind: 'DATASET_IMAGE', fileName: 'img0.jpg' }))).errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.sha256' });
    expect((await beginImage(declaration(images[0]!, { kind: 'CHECKPOINT', fileName: 'img0.jpg' }))).errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.kind' });
    expect((await editor.request(BEGIN_DATASET, { d: basics.datasetId, i: declaration(images[0]!, { kind: 'DATASET_IMAGE', fileName: 'img0.jpg' }) })).errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'datasetId' });

    for (const [i, bytes] of images.entries()) {
      const upload: Upload = (await editor.ok(BEGIN_DATASET, { d: datasetId, i: declaration(bytes, { kind: 'DATASET_IMAGE', fileName: `img${i}.jpg` }) })).beginDatasetUpload;
      await complete(editor, upload.artifact.id, await sendParts(upload, bytes));
      if (i === 0) await t.admin.fails('BAD_USER_INPUT', queue, { i: { experimentId, datasetId, captionStrategyId: strategyId } }, 'input.datasetId');
    }
    const caption = Buffer.from('a photo of p3r5on\n');
    const capUpload: Upload = (await editor.ok(BEGIN_DATASET, { d: datasetId, i: declaration(caption, { kind: 'DATASET_CAPTION', fileName: 'img1.txt' }) })).beginDatasetUpload;
    expect((await complete(editor, capUpload.artifact.id, await sendParts(capUpload, caption))).contentType).toBe('text/plain; charset=utf-8');
    await editor.fails('BAD_USER_INPUT', BEGIN_DATASET, { d: datasetId, i: declaration(caption, { kind: 'DATASET_CAPTION', fileName: 'img7.txt' }) }, 'input.fileName');

    const { dataset } = await t.admin.ok(`query($id: ID!) { dataset(id: $id) { stored storedImageCount images { edges { node { fileName url thumbnailUrl } } } } }`, { id: datasetId });
    expect(dataset).toMatchObject({ stored: true, storedImageCount: 2 });
    for (const [i, { node }] of dataset.images.edges.entries()) expect((await download(node.url)).body.equals(images[i]!)).toBe(true);
    const run = await queueRun(t.admin, { experimentId, datasetId, strategyId }, { priority: 1000 });

    // The agent that holds a run on the dataset may read its images; another agent may not.
    const holder = await registerAgent(t);
    const claim = await holder.claim();
    expect(claim?.run.id).toBe(run.id);
    const imagesQuery = `query($id: ID!) { run(id: $id) { dataset { images { edges { node { url } } } } } }`;
    const viaRun = await holder.client.ok(imagesQuery, { id: run.id });
    expect(sha256((await download(viaRun.run.dataset.images.edges[1].node.url)).body)).toBe(sha256(images[1]!));
    expect((await agent.client.ok(imagesQuery, { id: run.id })).run).toBeNull();
  });

  it.skipIf(skip)('keeps optimizer state for the newest stored checkpoint only; pruning drops bytes for real and keeps the records', async () => {
    const { runId, token } = await claimed();
    const uploaded = new Map<string, { url: string; key: string }>();
    const store = async (input: Record<string, unknown>, bytes: Buffer) => {
      const upload = await begin(agent.client, runId, token, declaration(bytes, input));
      const stored = await complete(agent.client, upload.artifact.id, await sendParts(upload, bytes));
      const [blob] = await rows<{ storage_key: string }>(t.server.db.orm, sql`select storage_key from artifact_blobs where sha256 = ${sha256(bytes)}`);
      uploaded.set(`${input.kind}:${input.step}`, { url: stored.url, key: blob!.storage_key });
      return stored;
    };
    const objectExists = (key: string) => t.server.app.artifacts.driver.read(key).then((s) => (s.destroy(), true), () => false);
    for (const step of [100, 200, 300]) {
      await agent.client.ok(REPORT_CHECKPOINT, { r: runId, t: token, i: { step, path: `/out/lora_${step}.safetensors` } });
      await store({ kind: 'OPTIMIZER_STATE', fileName: 'optimizer.pt', step }, randomBytes(2000));
      await store({ kind: 'CHECKPOINT', fileName: `lora_${step}.safetensors`, step }, randomBytes(3000));
    }
    const listed = async () =>
      (await t.admin.ok(`query($id: ID!) { run(id: $id) { storageBytes artifacts { kind step stored prunedAt } checkpoints { id step prunedAt downloadUrl } } }`, { id: runId })).run;
    let run = await listed();
    const optimizer = run.artifacts.filter((a: { kind: string }) => a.kind === 'OPTIMIZER_STATE');
    expect(optimizer.map((a: { step: number; stored: boolean }) => [a.step, a.stored])).toEqual([
      [100, false],
      [200, false],
      [300, true],
    ]);
    expect(await objectExists(uploaded.get('OPTIMIZER_STATE:100')!.key)).toBe(false);
    expect(await objectExists(uploaded.get('OPTIMIZER_STATE:300')!.key)).toBe(true);
    expect(run.storageBytes).toBe(3 * 3000 + 2000);

    // Rated checkpoints stay; the newest stays while the run can still resume from it.
    await t.admin.ok(`mutation($c: ID!) { rateCheckpoint(checkpointId: $c, score: 4) { id } }`, { c: run.checkpoints[0].id });
    const { pruneArtifacts } = await t.admin.ok(`mutation($r: ID!) { pruneArtifacts(runId: $r, keep: 0) { pruned { step prunedAt } freedBytes run { storageBytes } } }`, { r: runId });
    expect(pruneArtifacts.pruned.map((c: { step: number }) => c.step)).toEqual([200]);
    expect(pruneArtifacts.freedBytes).toBe(3000);
    expect(pruneArtifacts.run.storageBytes).toBe(2 * 3000 + 2000);
    expect(await objectExists(uploaded.get('CHECKPOINT:200')!.key)).toBe(false);
    // 404, or 403 from a bucket that does not tell which keys exist.
    expect([403, 404]).toContain((await download(uploaded.get('CHECKPOINT:200')!.url)).res.status);
    run = await listed();
    expect(run.checkpoints.map((c: { step: number; prunedAt: string | null; downloadUrl: string | null }) => [c.step, c.prunedAt != null, c.downloadUrl != null])).toEqual([
      [100, false, true],
      [200, true, false],
      [300, false, true],
    ]);
    // The agent's retry of a pruned upload is told so instead of sending it again.
    const pruned = await agent.client.request(BEGIN_RUN, { r: runId, t: token, i: { kind: 'CHECKPOINT', fileName: 'lora_200.safetensors', step: 200, sizeBytes: 3000, sha256: (await rows<{ sha256: string }>(t.server.db.orm, sql`select sha256 from artifacts where run_id = ${runId} and kind = 'CHECKPOINT' and step = 200`))[0]!.sha256 } });
    expect(pruned.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });
});

describe('artifact store policy: ARTIFACT_KEEP_CHECKPOINTS', () => {
  let t: TestServer;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'loralab-artifacts-'));
    t = await startTestServer('pglite', { dataDir, reaperIntervalSeconds: 3600, artifacts: { ...testConfig().artifacts, keepCheckpoints: 2 } });
  });
  afterAll(async () => {
    await t?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps the newest N stored checkpoints plus the final and promoted ones', async () => {
    const basics = await createBasics(t.admin);
    const agent = await registerAgent(t);
    const run = await queueRun(t.admin, basics, { hyperparameters: { steps: 500, saveEvery: 100 } });
    const claim = (await agent.claim())!;
    const send = async (step: number) => {
      const bytes = randomBytes(1000 + step);
      await agent.client.ok(REPORT_CHECKPOINT, { r: run.id, t: claim.leaseToken, i: { step, path: `/out/${step}.safetensors`, isFinal: step === 500 } });
      const upload: Upload = (await agent.client.ok(BEGIN_RUN, { r: run.id, t: claim.leaseToken, i: declaration(bytes, { kind: 'CHECKPOINT', fileName: `${step}.safetensors`, step }) })).beginRunUpload;
      await agent.client.ok(COMPLETE, { a: upload.artifact.id, p: await sendParts(upload, bytes) });
    };
    await send(100);
    const { run: before } = await t.admin.ok(`query($id: ID!) { run(id: $id) { checkpoints { id step } } }`, { id: run.id });
    await t.admin.ok(`mutation($r: ID!, $c: ID!) { promoteCheckpoint(runId: $r, checkpointId: $c) { id } }`, { r: run.id, c: before.checkpoints[0].id });
    for (const step of [200, 300, 400, 500]) await send(step);
    const { run: after } = await t.admin.ok(`query($id: ID!) { run(id: $id) { checkpoints { step prunedAt artifact { stored } } } }`, { id: run.id });
    expect(after.checkpoints.map((c: { step: number; artifact: { stored: boolean } }) => [c.step, c.artifact.stored])).toEqual([
      [100, true], // promoted
      [200, false],
      [300, false],
      [400, true],
      [500, true], // final
    ]);
  });
});

describe('embedded store when the server stops', () => {
  it('closes the file of an upload abandoned half way, which its sha256 had been reading', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'loralab-artifacts-'));
    const t = await startTestServer('pglite', { dataDir, reaperIntervalSeconds: 3600, artifacts: { ...testConfig().artifacts, partSizeBytes: PART } });
    let stopped = false;
    try {
      const basics = await createBasics(t.admin);
      const agent = await registerAgent(t);
      const { runId, token } = await claimNewRun(t, basics, agent);
      const bytes = randomBytes(3 * PART);
      const upload: Upload = (await agent.client.ok(BEGIN_RUN, { r: runId, t: token, i: declaration(bytes, { kind: 'CHECKPOINT', fileName: 'lora.safetensors', step: 10 }) })).beginRunUpload;
      const key = /\/u\/([^/]+)\/1\?/.exec(upload.parts[0]!.url)![1]!;
      const dataFile = path.join(dataDir, 'artifacts', 'uploads', key, 'data');
      // Part 2 ahead of part 1: once part 1 is in, the digest reads part 2 back from the file and
      // keeps it open for what comes next. Part 3 never comes (the agent died).
      for (const number of [2, 1]) expect((await putPart(upload, bytes, number)).status).toBe(200);
      await vi.waitFor(() => expect(descriptorsOn(dataFile)).toBe(1), { timeout: 10_000, interval: 5 });
      await t.stop();
      stopped = true;
      expect(descriptorsOn(dataFile)).toBe(0);
    } finally {
      if (!stopped) await t.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
