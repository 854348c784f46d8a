// Issue 7: the web page's code size (gzipped) and its time to first chart for a 100,000-point run,
// measured in the browser from navigation start to the chart drawn (window.__firstChartAt, set by
// the chart's first draw with data), against a server in its own process.
// Issue 17: time to the first sample grid of a run with 40 steps × 4 prompts of samples, from
// navigation start to every thumbnail decoded (window.__samplesDecodedAt, set by the grid).
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { gzipSync } from 'node:zlib';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { buildWeb, WEB_DIST } from '../src/web.js';
import { createBasics, createKey, gql, isMain, ms, percentile, startServerProcess, table, timed } from './lib.js';

const POINTS = 100_000;
const SAMPLE_STEPS = 40;
const SAMPLE_PROMPTS = 4;
const BATCH = 5000;
const LOADS = 7;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'];

function distSizes() {
  let raw = 0;
  let gzipped = 0;
  for (const name of readdirSync(WEB_DIST)) {
    if (name.endsWith('.tmp')) continue;
    const bytes = readFileSync(path.join(WEB_DIST, name));
    raw += bytes.byteLength;
    gzipped += gzipSync(bytes, { level: 9 }).byteLength;
  }
  return { raw, gzipped };
}

export async function run() {
  const build = await buildWeb();
  const size = distSizes();
  if (!existsSync(CHROMIUM)) {
    table('Web page (issues 7 and 17)', [
      ['page code', `${(size.gzipped / 1024).toFixed(1)} kB gzipped, ${(size.raw / 1024).toFixed(1)} kB raw (goal < 300 kB gzipped); build ${ms(build.ms)}`],
      ['time to first chart', `skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium)`],
    ]);
    return;
  }

  // The embedded PGlite of a fresh `npm start`: the slower of the two databases.
  const server = await startServerProcess({ env: { REAPER_INTERVAL_SECONDS: '3600' } });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  try {
    const { url, adminKey } = server;
    const basics = await createBasics(url, adminKey);
    const agentKey = await createKey(url, adminKey, 'AGENT');
    const viewerKey = await createKey(url, adminKey, 'VIEWER');
    const { registerAgent } = await gql(url, agentKey, `mutation { registerAgent(input: { name: "bench-web", gpus: [{ index: 0, name: "H100", memoryMb: 81559 }] }) { id } }`);
    const { queueRun } = await gql(url, adminKey, `mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`, {
      i: { ...basics, name: 'long run', hyperparameters: { steps: POINTS } },
    });
    const { claimRun } = await gql(url, agentKey, `mutation($a: ID!) { claimRun(agentId: $a) { leaseToken } }`, { a: registerAgent.id });
    const runId = queueRun.id as string;
    const token = claimRun.leaseToken as string;
    await gql(url, agentKey, `mutation($r: ID!, $t: String!) { startRun(runId: $r, leaseToken: $t) { id } }`, { r: runId, t: token });
    const seedStarted = performance.now();
    for (let from = 0; from < POINTS; from += BATCH) {
      const points = Array.from({ length: BATCH }, (_, i) => {
        const step = from + i;
        return { step, loss: 0.5 / Math.sqrt(step + 1) + 0.05 + 0.03 * Math.sin(step / 7), lr: 4e-4 };
      });
      await gql(url, agentKey, `mutation($r: ID!, $t: String!, $p: [LossPointInput!]!) { reportLoss(runId: $r, leaseToken: $t, points: $p) { accepted } }`, { r: runId, t: token, p: points });
    }
    const seedSeconds = (performance.now() - seedStarted) / 1000;

    // The API's share: the curve query alone, from Node.
    const curveTimes: number[] = [];
    for (let i = 0; i < LOADS; i++) {
      const [, t] = await timed(() => gql(url, viewerKey, `query($id: ID!) { run(id: $id) { lossCurve(maxPoints: 1000) { step toStep min max mean count } } }`, { id: runId }));
      curveTimes.push(t);
    }

    // Each load is a fresh browser context (no cache, no open socket): a person opening the link.
    const times: number[] = [];
    const scriptAt: number[] = [];
    const curveAt: number[] = [];
    let drawn = 0;
    for (let i = 0; i < LOADS; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addInitScript((key) => localStorage.setItem('loralab.apiKey', key), viewerKey);
      const page = await context.newPage();
      await page.goto(`${url}/#/runs/${runId}`);
      await page.waitForFunction(() => window.__firstChartAt != null, null, { timeout: 60_000 });
      const timeline = await page.evaluate(() => ({
        drawn: window.__firstChartAt!,
        script: (performance.getEntriesByType('resource') as PerformanceResourceTiming[]).find((e) => e.name.endsWith('/app.js'))?.responseEnd ?? NaN,
        curve: performance.getEntriesByName('loralab:curve-answered')[0]?.startTime ?? NaN,
      }));
      times.push(timeline.drawn);
      scriptAt.push(timeline.script);
      curveAt.push(timeline.curve);
      drawn = Number(await page.locator('#loss-chart').getAttribute('data-points'));
      await context.close();
    }

    // A second run with samples: 40 steps × 4 prompts of 512 px JPEGs, sent through the upload protocol.
    const { queueRun: sampled } = await gql(url, adminKey, `mutation($i: QueueRunInput!) { queueRun(input: $i) { id } }`, {
      i: { ...basics, name: 'sampled run', hyperparameters: { steps: SAMPLE_STEPS * 100, sampleEvery: 100, samplePrompts: ['a', 'b', 'c', 'd'].map((p) => `p3r5on, prompt ${p}`) } },
    });
    const { registerAgent: second } = await gql(url, agentKey, `mutation { registerAgent(input: { name: "bench-web-2", gpus: [{ index: 0, name: "H100", memoryMb: 81559 }] }) { id } }`);
    const { claimRun: claim2 } = await gql(url, agentKey, `mutation($a: ID!) { claimRun(agentId: $a) { leaseToken run { id } } }`, { a: second.id });
    if (claim2?.run.id !== sampled.id) throw new Error('the sampled run was not claimed');
    await gql(url, agentKey, `mutation($r: ID!, $t: String!) { startRun(runId: $r, leaseToken: $t) { id } }`, { r: sampled.id, t: claim2.leaseToken });
    const uploadStarted = performance.now();
    for (let s = 1; s <= SAMPLE_STEPS; s++) {
      await Promise.all(
        Array.from({ length: SAMPLE_PROMPTS }, async (_, p) => {
          const step = s * 100;
          const noise = Buffer.alloc(128 * 128 * 3);
          for (let i = 0; i < noise.length; i++) noise[i] = (i * 7 + s * 31 + p * 101 + ((i * s) % 13)) & 255;
          const bytes = await sharp(noise, { raw: { width: 128, height: 128, channels: 3 } }).resize(512, 512).jpeg({ quality: 85 }).toBuffer();
          const sha256 = createHash('sha256').update(bytes).digest('hex');
          await gql(url, agentKey, `mutation($r: ID!, $t: String!, $i: SampleInput!) { reportSample(runId: $r, leaseToken: $t, input: $i) { id } }`, {
            r: sampled.id, t: claim2.leaseToken, i: { step, promptIndex: p, path: `/out/samples/${step}_${p}.jpg` },
          });
          const { beginRunUpload: up } = await gql(url, agentKey, `mutation($r: ID!, $t: String!, $i: ArtifactUploadInput!) { beginRunUpload(runId: $r, leaseToken: $t, input: $i) { artifact { id } parts { number url } } }`, {
            r: sampled.id, t: claim2.leaseToken, i: { kind: 'SAMPLE', fileName: `${step}_${p}.jpg`, step, promptIndex: p, sizeBytes: bytes.length, sha256 },
          });
          const parts = [];
          for (const part of up.parts) {
            const res = await fetch(part.url, { method: 'PUT', body: new Uint8Array(bytes) });
            await res.arrayBuffer();
            parts.push({ number: part.number, etag: res.headers.get('etag') });
          }
          await gql(url, agentKey, `mutation($a: ID!, $p: [CompletedPartInput!]!) { completeUpload(artifactId: $a, parts: $p) { id } }`, { a: up.artifact.id, p: parts });
        }),
      );
    }
    const uploadSeconds = (performance.now() - uploadStarted) / 1000;
    const gridTimes: number[] = [];
    let thumbnails = 0;
    for (let i = 0; i < LOADS; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addInitScript((key) => localStorage.setItem('loralab.apiKey', key), viewerKey);
      const page = await context.newPage();
      await page.goto(`${url}/#/runs/${sampled.id}`);
      await page.waitForFunction(() => window.__samplesDecodedAt != null, null, { timeout: 60_000 });
      gridTimes.push(await page.evaluate(() => window.__samplesDecodedAt!));
      thumbnails = await page.locator('#samples img').evaluateAll((imgs) => imgs.filter((img) => (img as HTMLImageElement).naturalWidth > 0).length);
      await context.close();
    }

    table('Web page (issues 7 and 17)', [
      ['page code', `${(size.gzipped / 1024).toFixed(1)} kB gzipped, ${(size.raw / 1024).toFixed(1)} kB raw (goal < 300 kB gzipped); build ${ms(build.ms)}`],
      ['run seeded', `${POINTS.toLocaleString('en')} loss points through reportLoss (${BATCH} per call) in ${seedSeconds.toFixed(1)} s, server on PGlite`],
      ['time to first chart', `p50 ${ms(percentile(times, 50))}, min ${ms(Math.min(...times))}, max ${ms(Math.max(...times))} (${LOADS} cold loads, navigation start → chart drawn, ${drawn} buckets)`],
      ['  of which', `app.js loaded at p50 ${ms(percentile(scriptAt, 50))}, the curve answered at p50 ${ms(percentile(curveAt, 50))}`],
      ['lossCurve(maxPoints: 1000)', `p50 ${ms(percentile(curveTimes, 50))} per query over HTTP (the API's part of the above)`],
      ['samples seeded', `${SAMPLE_STEPS} steps × ${SAMPLE_PROMPTS} prompts of 512 px JPEGs through the upload protocol in ${uploadSeconds.toFixed(1)} s (thumbnails made at upload)`],
      ['time to first sample grid', `p50 ${ms(percentile(gridTimes, 50))}, min ${ms(Math.min(...gridTimes))}, max ${ms(Math.max(...gridTimes))} (${LOADS} cold loads, navigation start → all ${thumbnails} thumbnails decoded)`],
    ]);
  } finally {
    await browser.close();
    await server.stop();
  }
}

declare global {
  interface Window {
    __firstChartAt?: number;
    __samplesDecodedAt?: number;
  }
}

if (isMain(import.meta.url)) await run();
