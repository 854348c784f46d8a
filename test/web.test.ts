// The page at `/` in a real browser (Debian's Chromium through playwright-core), against a server
// on PGlite that the test feeds through the API and the agent protocol, as a training machine would.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { startTestServer, testConfig, type GqlClient, type TestServer } from './helpers/server.js';
import { createBasics, queueRun, type Basics } from './helpers/fixtures.js';
import { registerAgent, type TestAgent, REPORT_LOSS } from './helpers/agents.js';
import { launchChromium, screenshots, SIZES, withoutChromium } from './helpers/browser.js';
import { jpeg, sha256, uploadDatasetFile, uploadRunFile } from './helpers/uploads.js';

/** Small parts, so the page's folder upload sends several per image (and a test can fail some). */
const PART_SIZE = 64 * 1024;

const report = REPORT_LOSS;
const reportCheckpoint = `mutation($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { id } }`;
const reportSample = `mutation($r: ID!, $t: String!, $i: SampleInput!) { reportSample(runId: $r, leaseToken: $t, input: $i) { id } }`;
/** A falling, noisy curve, as training reports it. */
const points = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ step: from + i, loss: 0.6 / Math.sqrt(from + i + 1) + 0.05 * Math.abs(Math.sin(from + i)), lr: 4e-4 }));

/** sha256 of each sample's bytes by run, step and prompt; of each checkpoint's by run and step. */
const sampleSha = new Map<string, string>();
const checkpointSha = new Map<string, string>();

/** What a trainer makes and the agent sends: samples (JPEGs) at each step for each prompt, then the checkpoint's file. */
async function trainerOutput(agent: TestAgent, runId: string, token: string, step: number, prompts: number, checkpoint = true) {
  for (let p = 0; p < prompts; p++) {
    const bytes = await jpeg(step / 50 + p * 3 + runId.charCodeAt(0), 512);
    await agent.client.ok(reportSample, { r: runId, t: token, i: { step, promptIndex: p, prompt: `p3r5on prompt ${p}`, path: `/out/samples/${step}_${p}.jpg` } });
    await uploadRunFile(agent.client, runId, token, bytes, { kind: 'SAMPLE', fileName: `${step}_${p}.jpg`, step, promptIndex: p, contentType: 'image/jpeg' });
    sampleSha.set(`${runId}:${step}:${p}`, sha256(bytes));
  }
  if (!checkpoint) return;
  const bytes = randomBytes(40_000 + step);
  await agent.client.ok(reportCheckpoint, { r: runId, t: token, i: { step, path: `/out/lora_${step}.safetensors`, sizeBytes: bytes.length } });
  await uploadRunFile(agent.client, runId, token, bytes, { kind: 'CHECKPOINT', fileName: `lora_${step}.safetensors`, step });
  checkpointSha.set(`${runId}:${step}`, sha256(bytes));
}

/** sha256 of what the page's image shows, fetched as the page fetched it. */
const shownSha = (page: Page, selector: string) =>
  page.locator(selector).evaluate(async (img: HTMLImageElement) => {
    const bytes = await (await fetch(img.src)).arrayBuffer();
    return [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
  });

describe.skipIf(withoutChromium)('the web page in a browser', () => {
  let t: TestServer;
  let editor: GqlClient;
  let basics: Basics;
  let agent: TestAgent;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const consoleErrors: string[] = [];
  const runIds: string[] = [];
  let leaseToken = '';
  let strengthsLease: { runId: string; token: string } | null = null;
  let dataDir = '';

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'loralab-web-'));
    [t, browser] = await Promise.all([
      startTestServer('pglite', { reaperIntervalSeconds: 3600, dataDir, artifacts: { ...testConfig({ dataDir }).artifacts, partSizeBytes: PART_SIZE } }),
      launchChromium(),
    ]);
    editor = await t.as('EDITOR');
    basics = await createBasics(editor);
    agent = await registerAgent(t, { name: 'gpu-box-1', hourlyCostUsd: 0.69, gpus: Array.from({ length: 4 }, (_, index) => ({ index, name: 'NVIDIA GeForce RTX 4090', memoryMb: 24_564 })) });
    // A small sweep: rank × learning rate.
    for (const [rank, learningRate] of [[16, 4e-4], [16, 1e-4], [32, 4e-4], [32, 1e-4]] as const) {
      runIds.push((await queueRun(editor, basics, { name: `r${rank}-lr${learningRate}`, hyperparameters: { rank, learningRate, steps: 1000, saveEvery: 250 } })).id);
    }
    context = await browser.newContext({ viewport: SIZES.desktop });
    context.setDefaultTimeout(10_000);
    page = await context.newPage();
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    page.on('pageerror', (err) => consoleErrors.push(String(err)));
  });

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** The page's socket is up, and its subscriptions have had a moment to register on the server. */
  async function live() {
    await page.waitForSelector('html[data-live="connected"]');
    await page.waitForTimeout(300);
  }

  const statusOf = (runId: string) => page.locator(`#runs-table tr[data-run-id="${runId}"]`).getAttribute('data-status');

  it('tells plainly that a wrong key was not accepted', async () => {
    await page.goto(t.url);
    await page.getByLabel('API key').fill('llk_not_a_real_key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#signin-error').textContent()).toBe('That key was not accepted');
    expect(await page.evaluate(() => localStorage.getItem('loralab.apiKey'))).toBeNull();
    await screenshots(page, 'signin');
  });

  it('signs in with a key and lists the queued runs', async () => {
    await page.getByLabel('API key').fill(editor.key!);
    await page.getByLabel('API key').press('Enter');
    await page.waitForSelector('#runs-table tbody tr');
    expect(await page.locator('#runs-table tbody tr').count()).toBe(4);
    for (const id of runIds) expect(await statusOf(id)).toBe('QUEUED');
    const row = page.locator(`#runs-table tr[data-run-id="${runIds[0]}"]`);
    expect(await row.textContent()).toContain('trigger only');
    expect(await row.textContent()).toContain('4e-4');
    expect(await page.evaluate(() => localStorage.getItem('loralab.apiKey'))).toBe(editor.key);
    // The filters narrow the table through the API.
    await page.getByLabel('Rank').fill('32');
    await page.getByLabel('Rank').press('Enter');
    await page.getByLabel('Rank').blur();
    await expect.poll(() => page.locator('#runs-table tbody tr').count()).toBe(2);
    await page.getByLabel('Rank').fill('');
    await page.getByLabel('Rank').blur();
    await expect.poll(() => page.locator('#runs-table tbody tr').count()).toBe(4);
    // A learning rate that is not one is said so next to the field.
    await page.getByLabel('Learning rate').fill('4e-4x');
    await page.getByLabel('Learning rate').blur();
    await expect.poll(() => page.locator('#f-lr-error').textContent()).toContain('Not a learning rate');
    expect(await page.getByLabel('Learning rate').getAttribute('aria-invalid')).toBe('true');
    await page.getByLabel('Learning rate').fill('');
    await page.getByLabel('Learning rate').blur();
    await expect.poll(() => page.locator('#f-lr-error').textContent()).toBe('');
  });

  it('shows a new run and a status change live, without a reload', async () => {
    await live();
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 1));
    const added = await queueRun(editor, basics, { name: 'late arrival', hyperparameters: { rank: 8 } });
    runIds.push(added.id);
    await page.waitForSelector(`#runs-table tr[data-run-id="${added.id}"]`);

    const claim = (await agent.claim())!;
    expect(claim.run.id).toBe(runIds[0]);
    leaseToken = claim.leaseToken;
    await agent.start(claim.run.id, claim.leaseToken);
    await expect.poll(() => statusOf(claim.run.id)).toBe('RUNNING');
    await agent.heartbeat(claim.run.id, claim.leaseToken, { step: 250, totalSteps: 1000, secondsPerStep: 1.5, vramUsedMb: 20_000 });
    await expect.poll(() => page.locator(`#runs-table tr[data-run-id="${claim.run.id}"]`).textContent()).toContain('25%');
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(1);
    // At 1280 px every column of the runs table shows: it does not scroll sideways.
    expect(await page.locator('#runs-table').evaluate((table) => table.scrollWidth - table.parentElement!.clientWidth)).toBeLessThanOrEqual(0);
    await screenshots(page, 'runs');
  });

  it('draws the loss curve and extends it live as the agent reports loss', async () => {
    const runId = runIds[0]!;
    await agent.client.ok(report, { r: runId, t: leaseToken, p: points(0, 299) });
    await page.getByRole('link', { name: `r16-lr${4e-4}` }).click();
    await page.waitForSelector('#loss-chart[data-points="300"]');
    await live();
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 2));

    for (let from = 300; from < 600; from += 100) await agent.client.ok(report, { r: runId, t: leaseToken, p: points(from, from + 99) });
    await expect.poll(() => page.locator('#loss-chart').getAttribute('data-points').then(Number)).toBe(600);
    await page.getByLabel('Log scale').check();
    await expect.poll(() => page.locator('#loss-chart').getAttribute('data-points').then(Number)).toBe(600);
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(2);

    // The socket drops; what is reported meanwhile arrives after the reconnect (sinceStep), once.
    await page.evaluate(() => window.__loralabDropSocket!());
    await page.waitForSelector('html[data-live="closed"]');
    await agent.client.ok(report, { r: runId, t: leaseToken, p: points(600, 649) });
    await agent.heartbeat(runId, leaseToken, { step: 650, totalSteps: 1000, secondsPerStep: 1.75, vramUsedMb: 21_504 });
    await expect.poll(() => page.locator('#loss-chart').getAttribute('data-points').then(Number), { timeout: 15_000 }).toBe(650);
    await expect.poll(() => page.locator('#run-stats').textContent()).toContain('1.75');

    // Progress, checkpoints and samples arrive through runUpdated; events through runEvents.
    await live();
    await agent.heartbeat(runId, leaseToken, { step: 650, totalSteps: 1000, secondsPerStep: 1.25, vramUsedMb: 21_504 });
    await expect.poll(() => page.locator('#run-stats').textContent()).toContain('1.25');
    for (const step of [250, 500]) await trainerOutput(agent, runId, leaseToken, step, 2);
    await page.waitForSelector('#checkpoints tr[data-step="500"] a.download');
    await page.waitForSelector('#samples tr[data-step="500"] img');
    expect(await page.locator('#run-events').textContent()).toContain('STARTED');
    expect(await page.locator('#run-events').textContent()).toContain('Claimed by gpu-box-1'); // the agent's name, not its id
    expect(await page.locator('.config').textContent()).toContain('network');
    await screenshots(page, 'run');
  });

  it('shows the samples as thumbnails (prompt × step); the viewer opens full size, moves with the keyboard and rates', async () => {
    const runId = runIds[0]!;
    // Every thumbnail loaded; a row per step, a column per prompt.
    await expect.poll(() => page.locator('#samples img').evaluateAll((imgs) => imgs.filter((i) => (i as HTMLImageElement).naturalWidth > 0).length)).toBe(4);
    expect(await page.locator('#samples tbody tr').count()).toBe(2);
    expect(await page.locator('#samples thead th.prompt').allTextContents()).toEqual(['p3r5on prompt 0', 'p3r5on prompt 1']);

    await page.getByRole('button', { name: 'Step 250, p3r5on prompt 0' }).click();
    const viewer = page.locator('dialog#viewer[open]');
    await viewer.waitFor();
    expect(await viewer.getAttribute('data-step')).toBe('250');
    expect(await shownSha(page, '#viewer .viewer-image img')).toBe(sampleSha.get(`${runId}:250:0`));
    await page.keyboard.press('ArrowRight');
    expect(await viewer.getAttribute('data-step')).toBe('500');
    await page.keyboard.press('ArrowDown');
    expect(await viewer.getAttribute('data-prompt')).toBe('1');
    expect(await shownSha(page, '#viewer .viewer-image img')).toBe(sampleSha.get(`${runId}:500:1`));
    await page.keyboard.press('ArrowRight'); // the last step: stays
    expect(await viewer.getAttribute('data-step')).toBe('500');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowLeft');
    expect([await viewer.getAttribute('data-step'), await viewer.getAttribute('data-prompt')]).toEqual(['250', '0']);

    // Rating from the viewer: a note, then 5 on the keyboard.
    await page.locator('#viewer-notes').fill('crisp face');
    await page.locator('#viewer-title').click(); // out of the text field: keys move and rate again
    await page.keyboard.press('2');
    await expect.poll(() => page.locator('#viewer .mean-rating').textContent()).toBe('2.00 (1)');
    expect(await page.locator('#viewer .notes-list').textContent()).toContain('crisp face');
    await screenshots(page, 'viewer');
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('dialog#viewer').count()).toBe(0);
    const { run } = await editor.ok(`query($id: ID!) { run(id: $id) { checkpoints { step meanRating ratings { notes } } } }`, { id: runId });
    expect(run.checkpoints.find((c: { step: number }) => c.step === 250)).toEqual({ step: 250, meanRating: 2, ratings: [{ notes: 'crisp face' }] });
    // The checkpoints table shows the rating and its note.
    await expect.poll(() => page.locator('#checkpoints tr[data-step="250"]').textContent()).toContain('crisp face');
  });

  it("downloads a checkpoint's bytes under the run's name", async () => {
    const runId = runIds[0]!;
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#checkpoints tr[data-step="500"] a.download').click()]);
    expect(download.suggestedFilename()).toBe(`r16-lr${4e-4}-step500.safetensors`);
    const file = path.join(dataDir, 'downloaded.safetensors');
    await download.saveAs(file);
    const { readFile } = await import('node:fs/promises');
    expect(sha256(await readFile(file))).toBe(checkpointSha.get(`${runId}:500`));

    // A checkpoint the trainer pruned has nothing left to rate, promote or download.
    await agent.client.ok(reportCheckpoint, { r: runId, t: leaseToken, i: { step: 600, path: '/out/lora_600.safetensors', sizeBytes: 1000 } });
    await agent.client.ok(reportCheckpoint, { r: runId, t: leaseToken, i: { step: 600, path: '/out/lora_600.safetensors', pruned: true } });
    const pruned = page.locator('#checkpoints tr[data-step="600"]');
    await expect.poll(() => pruned.textContent()).toContain('pruned');
    expect(await pruned.getByRole('button').count()).toBe(0);
    expect(await pruned.locator('a.download').count()).toBe(0);
  });

  it('rates a checkpoint and shows its new mean rating', async () => {
    const row = page.locator('#checkpoints tr[data-step="500"]');
    await row.locator('label', { hasText: '4' }).click();
    await row.getByLabel('Notes for step 500').fill('sharp, on style');
    await row.getByRole('button', { name: 'Rate' }).click();
    await expect.poll(() => row.locator('.mean-rating').textContent()).toBe('4.00 (1)');
    await row.locator('label', { hasText: '2' }).click();
    await row.getByRole('button', { name: 'Rate' }).click();
    await expect.poll(() => row.locator('.mean-rating').textContent()).toBe('3.00 (2)');
    const { run } = await editor.ok(`query($id: ID!) { run(id: $id) { checkpoints { step meanRating } } }`, { id: runIds[0] });
    expect(run.checkpoints.find((c: { step: number }) => c.step === 500).meanRating).toBe(3);

    // Unpromoted, the best checkpoint is the best rated one; a person may pick another.
    await expect.poll(() => row.textContent()).toContain('★ best');
    const earlier = page.locator('#checkpoints tr[data-step="250"]');
    await earlier.getByRole('button', { name: 'Promote as best' }).click();
    await expect.poll(() => earlier.textContent()).toContain('★ best');
    await expect.poll(() => row.textContent()).toContain('Promote as best');
    // The best checkpoint downloads from the run's head.
    await expect.poll(() => page.locator('#best-download a.download').getAttribute('aria-label')).toBe('Download best step 250');

    // On a phone every score button, Promote and Download of a checkpoint are on the screen.
    await page.setViewportSize(SIZES.phone);
    const boxes = await row.locator('button, a, label').evaluateAll((els) => els.map((e) => e.getBoundingClientRect()).map((r) => [r.left, r.right]));
    expect(boxes.length).toBeGreaterThan(6);
    for (const [left, right] of boxes) expect(left >= 0 && right <= SIZES.phone.width, `${left}–${right}`).toBe(true);
    await page.setViewportSize(SIZES.desktop);
  });

  it('compares runs: overlaid curves, the grouped values the API returns, and the checkpoint matrix', async () => {
    // A second running run with loss, so two groups have numbers.
    const claim = (await agent.claim())!;
    await agent.start(claim.run.id, claim.leaseToken);
    await agent.client.ok(report, { r: claim.run.id, t: claim.leaseToken, p: points(0, 199).map((p) => ({ ...p, loss: p.loss * 1.3 })) });
    await trainerOutput(agent, claim.run.id, claim.leaseToken, 250, 2);
    const [a, b] = [runIds[0]!, claim.run.id];

    await page.goto(`${t.url}/#/compare?runs=${runIds[0]},${claim.run.id}&experiment=${basics.experimentId}`);
    await page.waitForSelector('#groups-table tbody tr');
    await page.waitForSelector('#heat-table');
    await page.waitForSelector('#compare-chart[data-points]:not([data-points="0"])');
    await page.waitForSelector('#matrix-table');

    // The tables follow the picked runs (the experiment has five, in four rank × LR groups).
    const { compareRuns } = await editor.ok(
      `query($f: RunFilter) { compareRuns(filter: $f, groupBy: [RANK, LEARNING_RATE]) { key { rank learningRate } runCount meanEmaLoss minLoss } }`,
      { f: { ids: [a, b] } },
    );
    expect(compareRuns).toHaveLength(2);
    const shown = await page.locator('#groups-table tbody tr').evaluateAll((rows) =>
      rows.map((tr) => ({
        rank: tr.querySelector('[data-dim="RANK"]')!.textContent,
        runCount: Number(tr.querySelector('[data-metric="runCount"]')!.textContent),
        meanEmaLoss: tr.querySelector<HTMLElement>('[data-metric="meanEmaLoss"]')!.dataset.value,
        minLoss: tr.querySelector<HTMLElement>('[data-metric="minLoss"]')!.dataset.value,
      })),
    );
    expect(shown).toHaveLength(compareRuns.length);
    compareRuns.forEach((g: { key: { rank: number }; runCount: number; meanEmaLoss: number | null; minLoss: number | null }, i: number) => {
      expect(shown[i]).toEqual({ rank: String(g.key.rank), runCount: g.runCount, meanEmaLoss: g.meanEmaLoss == null ? '' : String(g.meanEmaLoss), minLoss: g.minLoss == null ? '' : String(g.minLoss) });
    });
    // The heat table has a cell per rank × LR pair, with the chosen metric's value.
    const cell = await page.locator(`#heat-table td[data-rank="16"][data-lr="${4e-4}"]`).getAttribute('data-value');
    const g16 = compareRuns.find((g: { key: { rank: number; learningRate: number } }) => g.key.rank === 16 && g.key.learningRate === 4e-4);
    expect(Number(cell)).toBe(g16.meanEmaLoss);
    expect(await page.locator('#matrix-table tbody tr').count()).toBe(2);
    await page.waitForSelector(`#matrix-table tr[data-run-id="${b}"] td[data-step="250"] img`);
    await screenshots(page, 'compare');

    // A matrix cell's thumbnail opens the viewer at that run and step.
    await page.locator(`#matrix-table tr[data-run-id="${b}"] td[data-step="250"] button.thumb`).click();
    const viewer = page.locator('dialog#viewer[open]');
    await viewer.waitFor();
    expect(await viewer.getAttribute('data-step')).toBe('250');
    expect(await shownSha(page, `#viewer img[data-run-id="${b}"]`)).toBe(sampleSha.get(`${b}:250:0`));
    await page.keyboard.press('Escape');

    // A/B: the same prompt and step of both runs side by side, stepping together.
    await page.locator('#ab-open').click();
    await viewer.waitFor();
    expect(await page.locator('#viewer .viewer-pane').count()).toBe(2);
    for (const prompt of [0, 1]) {
      expect([await viewer.getAttribute('data-step'), await viewer.getAttribute('data-prompt')]).toEqual(['250', String(prompt)]);
      for (const run of [a, b]) expect(await shownSha(page, `#viewer img[data-run-id="${run}"]`), `${run} prompt ${prompt}`).toBe(sampleSha.get(`${run}:250:${prompt}`));
      if (prompt === 0) await page.keyboard.press('ArrowDown');
    }
    await screenshots(page, 'ab');
    await page.keyboard.press('Escape');
  });

  it("shows a stored dataset's images with their captions", async () => {
    const images = await Promise.all([1, 2, 3].map((i) => jpeg(i * 11, 256)));
    const { createDataset } = await editor.ok(`mutation($i: CreateDatasetInput!) { createDataset(input: $i) { id } }`, {
      i: { name: 'uploaded photos', images: images.map((bytes, i) => ({ fileName: `photo${i}.jpg`, sha256: sha256(bytes), caption: `a photo of p3r5on, number ${i}` })) },
    });
    for (const [i, bytes] of images.entries()) await uploadDatasetFile(editor, createDataset.id, bytes, { kind: 'DATASET_IMAGE', fileName: `photo${i}.jpg`, contentType: 'image/jpeg' });
    await page.goto(`${t.url}/#/datasets/${createDataset.id}`);
    await expect.poll(() => page.locator('#dataset-images img').evaluateAll((imgs) => imgs.filter((i) => (i as HTMLImageElement).naturalWidth > 0).length)).toBe(3);
    expect(await page.locator('#dataset-images li[data-file="photo1.jpg"]').textContent()).toContain('a photo of p3r5on, number 1');
    await page.getByRole('button', { name: 'Open photo2.jpg' }).click();
    expect(await shownSha(page, '#image-viewer[open] img')).toBe(sha256(images[2]!));
    await page.keyboard.press('Escape');
    await screenshots(page, 'dataset');
    await page.getByRole('link', { name: 'Datasets' }).first().click();
    await page.waitForSelector(`#datasets-table tr[data-dataset-id="${createDataset.id}"]`);
    await screenshots(page, 'datasets');
  });

  it("edits a STORED strategy's caption beside its image, shows it as a run gets it, keeps it across a reload, and sets two strategies side by side", async () => {
    const images = await Promise.all([1, 2].map((i) => jpeg(60 + i * 17, 256)));
    const { createDataset } = await editor.ok(`mutation($i: CreateDatasetInput!) { createDataset(input: $i) { id } }`, {
      i: { name: 'captioned', images: images.map((bytes, i) => ({ fileName: `cap${i}.jpg`, sha256: sha256(bytes) })) },
    });
    for (const [i, bytes] of images.entries()) await uploadDatasetFile(editor, createDataset.id, bytes, { kind: 'DATASET_IMAGE', fileName: `cap${i}.jpg`, contentType: 'image/jpeg' });
    const { createCaptionStrategy: stored } = await editor.ok(`mutation($i: CreateCaptionStrategyInput!) { createCaptionStrategy(input: $i) { id } }`, {
      i: { name: 'hand captions', kind: 'STORED', triggerWord: 'zk9', template: '[trigger], {caption}, film photo' },
    });
    await editor.ok(`mutation($d: ID!, $s: ID!, $c: [CaptionInput!]!) { setCaptions(datasetId: $d, strategyId: $s, captions: $c) }`, { d: createDataset.id, s: stored.id, c: [{ fileName: 'cap0.jpg', text: 'a man at a desk' }] });

    await page.goto(`${t.url}/#/datasets/${createDataset.id}?strategy=${stored.id}`);
    const card = page.locator('#dataset-images li[data-file="cap1.jpg"]');
    const first = page.locator('#dataset-images li[data-file="cap0.jpg"]');
    await expect.poll(() => first.getByLabel('Stored caption').inputValue()).toBe('a man at a desk');
    expect(await first.locator('.as-run').textContent()).toBe('zk9, a man at a desk, film photo');
    expect(await card.getByLabel('Stored caption').inputValue()).toBe('');
    expect(await card.locator('.as-run').textContent()).toContain('no caption');
    await expect.poll(() => card.locator('img').evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);

    // An edit, saved: what the server stores and what a run gets (the template and trigger applied by the API).
    await card.getByLabel('Stored caption').fill('a woman in a red coat');
    await card.getByRole('button', { name: 'Save caption of cap1.jpg' }).click();
    await expect.poll(() => card.locator('.as-run').textContent()).toBe('zk9, a woman in a red coat, film photo');
    expect(await card.getByRole('status').textContent()).toBe('Saved');
    const { dataset } = await editor.ok(`query($id: ID!, $s: ID!) { dataset(id: $id) { images { edges { node { fileName storedCaption(strategyId: $s) caption(strategyId: $s) } } } } }`, { id: createDataset.id, s: stored.id });
    expect(dataset.images.edges.map((e: any) => e.node)).toEqual([
      { fileName: 'cap0.jpg', storedCaption: 'a man at a desk', caption: 'zk9, a man at a desk, film photo' },
      { fileName: 'cap1.jpg', storedCaption: 'a woman in a red coat', caption: 'zk9, a woman in a red coat, film photo' },
    ]);

    // The API's refusal shows next to the caption, and nothing is written.
    await first.getByLabel('Stored caption').fill('x'.repeat(10_001));
    await first.getByRole('button', { name: 'Save caption of cap0.jpg' }).click();
    await expect.poll(() => first.locator('.field-error').textContent()).toBe('must be at most 10,000 characters');
    expect(await first.getByLabel('Stored caption').getAttribute('aria-invalid')).toBe('true');
    expect(await first.locator('.as-run').textContent()).toBe('zk9, a man at a desk, film photo');

    // After a reload the saved caption is there.
    await page.reload();
    await expect.poll(() => card.getByLabel('Stored caption').inputValue()).toBe('a woman in a red coat');
    expect(await first.getByLabel('Stored caption').inputValue()).toBe('a man at a desk');

    // Side by side: the stored strategy against the trigger-only one, as each run would get them.
    await page.locator('#d-diff-a').selectOption(stored.id);
    await page.locator('#d-diff-b').selectOption(basics.strategyId);
    await expect.poll(() => page.locator('#diff-table thead').textContent()).toContain('hand captions');
    await expect.poll(() => page.locator('#diff-table tbody tr').allTextContents()).toEqual(['cap0.jpgzk9, a man at a desk, film photop3r5on', 'cap1.jpgzk9, a woman in a red coat, film photop3r5on']);
    await screenshots(page, 'caption-editor');
    // At 1280 px the diff table's columns all show; on a phone each caption and its Save stay on the screen.
    expect(await page.locator('#diff-table').evaluate((table) => table.scrollWidth - table.parentElement!.clientWidth)).toBeLessThanOrEqual(0);
    await page.setViewportSize(SIZES.phone);
    for (const box of await card.locator('textarea, button').evaluateAll((els) => els.map((e) => e.getBoundingClientRect()).map((r) => [r.left, r.right]))) {
      expect(box[0]! >= 0 && box[1]! <= SIZES.phone.width, `${box}`).toBe(true);
    }
    await page.setViewportSize(SIZES.desktop);
  });

  it('shows a strength axis for a run sampled at several LoRA strengths', async () => {
    const run = await queueRun(editor, basics, { name: 'strengths', priority: 100, hyperparameters: { sampleStrengths: [0.5, 1], samplePrompts: ['[trigger] on a bike'] } });
    const claim = (await agent.claim())!;
    expect(claim.run.id).toBe(run.id);
    strengthsLease = { runId: run.id, token: claim.leaseToken };
    // The trainer numbers its samples by item: prompt 0 at 0.5 is item 0, at 1 item 1.
    const shas: string[] = [];
    for (const item of [0, 1]) {
      const bytes = await jpeg(100 + item * 40, 256);
      await agent.client.ok(reportSample, { r: run.id, t: claim.leaseToken, i: { step: 100, promptIndex: item, path: `/out/samples/100_${item}.jpg` } });
      await uploadRunFile(agent.client, run.id, claim.leaseToken, bytes, { kind: 'SAMPLE', fileName: `100_${item}.jpg`, step: 100, promptIndex: item, contentType: 'image/jpeg' });
      shas.push(sha256(bytes));
    }
    await page.goto(`${t.url}/#/runs/${run.id}`);
    await page.waitForSelector('#samples tr[data-step="100"] img');
    expect(await page.locator('#samples thead th.prompt').allTextContents()).toEqual(['p3r5on on a bikestrength 0.5', 'p3r5on on a bikestrength 1']);
    await page.getByRole('button', { name: 'Step 100, p3r5on on a bike, strength 0.5' }).click();
    const viewer = page.locator('dialog#viewer[open]');
    await viewer.waitFor();
    expect(await shownSha(page, '#viewer .viewer-image img')).toBe(shas[0]);
    await page.keyboard.press(']');
    expect(await viewer.getAttribute('data-strength')).toBe('1');
    expect(await shownSha(page, '#viewer .viewer-image img')).toBe(shas[1]);
    await page.keyboard.press('Escape');
  });

  it('lists the agents with their GPUs, status, VRAM and GPU use, current run and the runs they trained; an ADMIN drains and undrains', async () => {
    // Its current run's last heartbeat says how much VRAM and GPU it uses.
    await agent.heartbeat(runIds[0]!, leaseToken, { step: 650, totalSteps: 1000, vramUsedMb: 18_432, gpuUtilization: 97 });
    await agent.heartbeat(strengthsLease!.runId, strengthsLease!.token, { step: 50, totalSteps: 3000, vramUsedMb: 18_432, gpuUtilization: 97 });
    await page.getByRole('link', { name: 'Agents' }).click();
    const row = page.locator('#agents-table tbody tr').first();
    await expect.poll(() => row.textContent()).toContain('gpu-box-1');
    expect(await row.textContent()).toContain('RTX 4090');
    expect(await row.textContent()).toContain('BUSY');
    await expect.poll(() => row.locator('td.vram').textContent()).toBe(' 18.0 of 96 GiBGPU 97%');
    const { runs } = await editor.ok(`query($f: RunFilter) { runs(filter: $f) { edges { node { name } } } }`, { f: { agentId: agent.id } });
    expect(runs.edges.map((e: { node: { name: string } }) => e.node.name).sort()).toEqual(['r16-lr0.0001', 'r16-lr0.0004', 'strengths']);
    expect((await row.locator('td.trained a').allTextContents()).sort()).toEqual(['r16-lr0.0001', 'r16-lr0.0004', 'strengths']);
    expect(await row.getByRole('button', { name: 'Drain' }).count()).toBe(0); // an EDITOR may not
    await screenshots(page, 'agents');

    await page.evaluate((key) => localStorage.setItem('loralab.apiKey', key), t.admin.key!);
    await page.reload();
    await row.getByRole('button', { name: 'Drain' }).click();
    await expect.poll(() => row.textContent()).toContain('DRAINING');
    await row.getByRole('button', { name: 'Undrain' }).click();
    await expect.poll(() => row.textContent()).toContain('BUSY');
    await page.evaluate((key) => localStorage.setItem('loralab.apiKey', key), editor.key!);
    await page.reload();
    await page.waitForSelector('#agents-table');
  });

  it('cancels and retries a run with an EDITOR key', async () => {
    const lateRun = runIds[4]!;
    await page.goto(`${t.url}/#/runs/${lateRun}`);
    const cancel = page.getByRole('button', { name: 'Cancel run' });
    await cancel.click();
    await page.getByRole('button', { name: 'Confirm cancel' }).click(); // two clicks for hours of training
    await expect.poll(() => page.locator('#stat-status').textContent()).toBe('CANCELLED');
    await expect.poll(() => page.locator('#action-message').textContent()).toBe('Cancelled'); // not "Cancel requested"
    await page.getByRole('button', { name: 'Retry run' }).click();
    await expect.poll(() => page.locator('#stat-status').textContent()).toBe('QUEUED');
    expect((await editor.ok(`query($id: ID!) { run(id: $id) { status } }`, { id: lateRun })).run.status).toBe('QUEUED');
  });

  it('makes a dataset from a folder (captions from .txt files), queues the sweep the form announces, and an agent trains on it', async () => {
    const folder = path.join(dataDir, 'my-photos');
    await mkdir(folder, { recursive: true });
    const photos = await Promise.all([0, 1, 2].map((i) => jpeg(200 + i * 30, 320)));
    for (const [i, bytes] of photos.entries()) await writeFile(path.join(folder, `shot${i}.jpg`), bytes);
    await writeFile(path.join(folder, 'shot0.txt'), 'a man in a red jacket\n');
    await writeFile(path.join(folder, 'shot2.txt'), 'a man on a bench');
    await page.goto(`${t.url}/#/new`);
    await page.locator('#ds-folder').setInputFiles(folder);
    await expect.poll(() => page.locator('#ds-summary').textContent()).toContain('3 images');
    expect(await page.locator('#ds-summary').textContent()).toContain('2 with a .txt caption');
    expect(await page.locator('#ds-name').inputValue()).toBe('my-photos');
    await page.locator('#ds-trigger').fill('zk9');
    await page.getByRole('button', { name: 'Upload dataset' }).click();
    await page.waitForSelector('#ds-link', { timeout: 20_000 });
    const { datasets } = await editor.ok(`{ datasets(first: 100) { edges { node { id name stored storedImageCount images(first: 10) { edges { node { fileName sha256 sourceCaption captionFile { fileName sha256 stored } } } } } } } }`);
    const made = datasets.edges.map((e: { node: any }) => e.node).find((d: { name: string }) => d.name === 'my-photos');
    expect(made).toMatchObject({ stored: true, storedImageCount: 3 });
    // The .txt files are stored as they are (a FILES strategy trains on them), their text as the STORED strategy's captions.
    const txt = ['a man in a red jacket\n', null, 'a man on a bench'];
    expect(made.images.edges.map((e: { node: any }) => e.node)).toEqual(
      photos.map((bytes, i) => ({
        fileName: `shot${i}.jpg`,
        sha256: sha256(bytes),
        sourceCaption: txt[i]?.trim() ?? null,
        captionFile: txt[i] == null ? null : { fileName: `shot${i}.txt`, sha256: sha256(Buffer.from(txt[i]!)), stored: true },
      })),
    );

    // The run form now points at the new dataset and its STORED captions. A bad value is said next to its field.
    expect(await page.locator('#rf-dataset').inputValue()).toBe(made.id);
    await page.locator('#rf-rank').fill('8, x');
    await page.getByRole('button', { name: /Queue/ }).click();
    await expect.poll(() => page.locator('#rf-err-rank').textContent()).toContain('Not a number');
    await page.locator('#rf-rank').fill('999');
    await page.getByRole('button', { name: /Queue/ }).click();
    await expect.poll(() => page.locator('#rf-err-rank').textContent()).toBe('must be between 1 and 256'); // the API's own message
    await page.locator('#rf-rank').fill('8, 16');
    await page.locator('#rf-lr').fill('1e-4, 4e-4');
    await page.locator('#rf-steps').fill('500');
    await expect.poll(() => page.locator('#sweep-estimate').getAttribute('data-runs')).toBe('4');
    expect(await page.locator('#sweep-estimate').textContent()).toMatch(/4 runs · ≈ [\d.]+ GPU hours · ≈ \$[\d.]+ at \$0\.69\/h/);
    await screenshots(page, 'new');
    await page.getByRole('button', { name: 'Queue sweep of 4 runs' }).click();
    await page.waitForSelector('#rf-sweep-link');
    const sweepId = new URL((await page.locator('#rf-sweep-link').getAttribute('href'))!.replace('#/compare', 'http://x/')).searchParams.get('sweep');
    const { runs } = await editor.ok(`query($f: RunFilter) { runs(filter: $f) { edges { node { id dataset { id } hyperparameters { rank learningRate steps } } } } }`, { f: { sweepId } });
    expect(runs.edges).toHaveLength(4);
    expect(runs.edges.map((e: any) => `${e.node.hyperparameters.rank}/${e.node.hyperparameters.learningRate}/${e.node.dataset.id === made.id}`).sort()).toEqual(['16/0.0001/true', '16/0.0004/true', '8/0.0001/true', '8/0.0004/true']);

    // An agent trains on it: the claim names the stored captions (trigger word applied).
    const trainer = await registerAgent(t, { name: 'gpu-box-2', gpus: Array.from({ length: 8 }, (_, index) => ({ index, name: 'A', memoryMb: 80_000 })) });
    const sweepRuns = new Set(runs.edges.map((e: any) => e.node.id));
    let claim = await trainer.claim();
    while (claim && !sweepRuns.has(claim.run.id)) claim = await trainer.claim();
    expect(claim).not.toBeNull();
    expect(claim!.captions.find((c) => c.fileName === 'shot0.jpg')?.text).toContain('a man in a red jacket');
    expect(claim!.captions.find((c) => c.fileName === 'shot0.jpg')?.text).toContain('zk9');
  });

  it('finishes a folder upload whose part PUTs fail (HTTP 500, a dropped connection): retried, only the missing parts again, the bytes verified by the server', async () => {
    const folder = path.join(dataDir, 'noisy-photos');
    await mkdir(folder, { recursive: true });
    // Noise compresses badly: each JPEG spans several parts.
    const photos = await Promise.all(
      [0, 1, 2].map((i) => sharp(randomBytes(600 * 600 * 3), { raw: { width: 600, height: 600, channels: 3 } }).jpeg({ quality: 90 + i }).toBuffer()),
    );
    for (const [i, bytes] of photos.entries()) {
      expect(bytes.length).toBeGreaterThan(3 * PART_SIZE);
      await writeFile(path.join(folder, `noise${i}.jpg`), bytes);
    }
    // Each upload's part 2 answers 500 the first time it is sent, its part 3 loses its connection the first time.
    const puts: { key: string; part: number; outcome: 'sent' | '500' | 'aborted' }[] = [];
    const errorsBefore = consoleErrors.length;
    await page.route('**/artifacts/u/**', async (route) => {
      if (route.request().method() !== 'PUT') return route.continue();
      const [key, part] = new URL(route.request().url()).pathname.split('/').slice(-2);
      const tried = puts.filter((p) => p.key === key && p.part === Number(part)).length;
      if (tried === 0 && part === '2') {
        puts.push({ key: key!, part: 2, outcome: '500' });
        return route.fulfill({ status: 500, body: 'store unavailable' });
      }
      if (tried === 0 && part === '3') {
        puts.push({ key: key!, part: 3, outcome: 'aborted' });
        return route.abort('connectionreset');
      }
      puts.push({ key: key!, part: Number(part), outcome: 'sent' });
      return route.continue();
    });
    try {
      await page.goto(`${t.url}/#/new`);
      await page.reload(); // the form afresh: the test before left this page with its dataset made
      await page.locator('#ds-folder').setInputFiles(folder);
      await expect.poll(() => page.locator('#ds-summary').textContent()).toContain('3 images');
      await page.getByRole('button', { name: 'Upload dataset' }).click();
      await page.waitForSelector('#ds-link', { timeout: 30_000 });
      expect(await page.locator('#ds-link').textContent()).toContain('noisy-photos');
    } finally {
      await page.unroute('**/artifacts/u/**');
    }
    // Chromium logs each failed PUT; those six are this test's doing, anything else stays for the console check.
    const failedPuts = consoleErrors.slice(errorsBefore).filter((e) => /status of 500|ERR_CONNECTION_RESET/.test(e));
    expect(failedPuts).toHaveLength(6);
    consoleErrors.splice(errorsBefore, consoleErrors.length - errorsBefore, ...consoleErrors.slice(errorsBefore).filter((e) => !failedPuts.includes(e)));
    const { datasets } = await editor.ok(`{ datasets(first: 100) { edges { node { id name stored storedImageCount images(first: 10) { edges { node { fileName sha256 url } } } } } } }`);
    const made = datasets.edges.map((e: { node: any }) => e.node).find((d: { name: string }) => d.name === 'noisy-photos');
    expect(made).toMatchObject({ stored: true, storedImageCount: 3 });
    for (const [i, bytes] of photos.entries()) {
      const image = made.images.edges[i].node;
      expect(image).toMatchObject({ fileName: `noise${i}.jpg`, sha256: sha256(bytes) });
      expect(sha256(Buffer.from(await (await fetch(image.url)).arrayBuffer()))).toBe(sha256(bytes));
    }
    // Three uploads, each failed twice; every part arrived once, and none that had arrived was sent again.
    const keys = [...new Set(puts.map((p) => p.key))];
    expect(keys).toHaveLength(3);
    for (const key of keys) {
      const mine = puts.filter((p) => p.key === key);
      expect(mine.filter((p) => p.outcome !== 'sent').map((p) => p.outcome)).toEqual(['500', 'aborted']);
      const sent = mine.filter((p) => p.outcome === 'sent').map((p) => p.part);
      expect(sent.sort((a, b) => a - b)).toEqual(Array.from({ length: sent.length }, (_, i) => i + 1));
    }
  });

  it('is usable from the keyboard', async () => {
    await page.goto(`${t.url}/#/runs`);
    await page.waitForSelector('#runs-table tbody tr');
    // Tab from the top reaches the navigation links, then the filters.
    const focused: string[] = [];
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press('Tab');
      focused.push(await page.evaluate(() => `${document.activeElement?.tagName}:${document.activeElement?.textContent?.trim().slice(0, 20) ?? ''}`));
    }
    expect(focused).toContain('A:Compare');
    expect(focused.some((f) => f.startsWith('SELECT'))).toBe(true);
    // A run's link opens with Enter.
    await page.locator(`#runs-table tr[data-run-id="${runIds[1]}"] th a`).focus();
    await page.keyboard.press('Enter');
    await page.waitForSelector('#loss-chart');
    expect(page.url()).toContain(`#/runs/${runIds[1]}`);
  });

  it('brings back the sign-in form, saying why, when the stored key is revoked (at once: the server closes its live socket)', async () => {
    const { createApiKey } = await t.admin.ok(`mutation { createApiKey(role: VIEWER, name: "laptop") { id key } }`);
    await page.goto(`${t.url}/#/agents`);
    await page.evaluate((key) => localStorage.setItem('loralab.apiKey', key), createApiKey.key);
    await page.reload();
    await page.waitForSelector('#agents-table');
    // A VIEWER reads; it gets no buttons that change runs.
    await page.goto(`${t.url}/#/runs/${runIds[0]}`);
    await page.waitForSelector('#checkpoints tr[data-step="500"]');
    expect(await page.getByRole('button', { name: /Cancel run|Retry run|Rate|Promote as best/ }).count()).toBe(0);
    await t.admin.ok(`mutation($id: ID!) { revokeApiKey(id: $id) }`, { id: createApiKey.id });
    await expect.poll(() => page.locator('#signin-error').textContent()).toBe('That key was not accepted');
    expect(await page.evaluate(() => localStorage.getItem('loralab.apiKey'))).toBeNull();
  });

  it('wrote no error to the console', () => {
    expect(consoleErrors).toEqual([]);
  });
});

declare global {
  interface Window {
    __loralabDropSocket?: () => void;
  }
}
