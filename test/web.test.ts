// The page at `/` in a real browser (Debian's Chromium through playwright-core), against a server
// on PGlite that the test feeds through the API and the agent protocol, as a training machine would.
import { mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type GqlClient, type TestServer } from './helpers/server.js';
import { createBasics, queueRun, type Basics } from './helpers/fixtures.js';
import { registerAgent, type TestAgent, REPORT_LOSS } from './helpers/agents.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'];
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/web', import.meta.url));
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

const report = REPORT_LOSS;
const reportCheckpoint = `mutation($r: ID!, $t: String!, $i: CheckpointInput!) { reportCheckpoint(runId: $r, leaseToken: $t, input: $i) { id } }`;
const reportSample = `mutation($r: ID!, $t: String!, $i: SampleInput!) { reportSample(runId: $r, leaseToken: $t, input: $i) { id } }`;
/** A falling, noisy curve, as training reports it. */
const points = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ step: from + i, loss: 0.6 / Math.sqrt(from + i + 1) + 0.05 * Math.abs(Math.sin(from + i)), lr: 4e-4 }));

// Without Chromium (apt-get install -y chromium) a developer's run skips this file; CI's must not.
describe.skipIf(!existsSync(CHROMIUM) && !process.env.CI)('the web page in a browser', () => {
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

  beforeAll(async () => {
    [t, browser] = await Promise.all([
      startTestServer('pglite', { reaperIntervalSeconds: 3600 }),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }),
    ]);
    await mkdir(ARTIFACTS, { recursive: true });
    editor = await t.as('EDITOR');
    basics = await createBasics(editor);
    agent = await registerAgent(t, { name: 'gpu-box-1', gpus: Array.from({ length: 4 }, (_, index) => ({ index, name: 'NVIDIA GeForce RTX 4090', memoryMb: 24_564 })) });
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
  });

  async function screenshots(name: string) {
    for (const [size, viewport] of Object.entries(SIZES)) {
      await page.setViewportSize(viewport);
      await page.waitForTimeout(150); // the chart follows its container's new width
      // Readable at that width: nothing but the tables' own scrollers is wider than the screen.
      expect(await page.evaluate(() => document.documentElement.scrollWidth), `${name} at ${size}`).toBeLessThanOrEqual(viewport.width);
      await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${size}.png`), fullPage: true });
    }
    await page.setViewportSize(SIZES.desktop);
  }

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
    await screenshots('signin');
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
    await screenshots('runs');
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
    await agent.client.ok(reportCheckpoint, { r: runId, t: leaseToken, i: { step: 250, path: '/out/r16/r16_000000250.safetensors', sizeBytes: 171_000_000 } });
    await agent.client.ok(reportCheckpoint, { r: runId, t: leaseToken, i: { step: 500, path: '/out/r16/r16_000000500.safetensors', sizeBytes: 171_000_000 } });
    await agent.client.ok(reportSample, { r: runId, t: leaseToken, i: { step: 500, promptIndex: 0, prompt: 'p3r5on at the beach', path: '/out/r16/samples/500_0.jpg' } });
    await page.waitForSelector('#checkpoints tr[data-step="500"]');
    await page.waitForSelector('#samples');
    expect(await page.locator('#run-events').textContent()).toContain('STARTED');
    expect(await page.locator('.config').textContent()).toContain('network');
    await screenshots('run');
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
  });

  it('compares runs: overlaid curves, the grouped values the API returns, and the checkpoint matrix', async () => {
    // A second running run with loss, so two groups have numbers.
    const claim = (await agent.claim())!;
    await agent.start(claim.run.id, claim.leaseToken);
    await agent.client.ok(report, { r: claim.run.id, t: claim.leaseToken, p: points(0, 199).map((p) => ({ ...p, loss: p.loss * 1.3 })) });
    await agent.client.ok(reportCheckpoint, { r: claim.run.id, t: claim.leaseToken, i: { step: 250, path: '/out/b/b_000000250.safetensors', sizeBytes: 171_000_000 } });

    await page.goto(`${t.url}/#/compare?runs=${runIds[0]},${claim.run.id}&experiment=${basics.experimentId}`);
    await page.waitForSelector('#groups-table tbody tr');
    await page.waitForSelector('#heat-table');
    await page.waitForSelector('#compare-chart[data-points]:not([data-points="0"])');
    await page.waitForSelector('#matrix-table');

    const { compareRuns } = await editor.ok(
      `query($f: RunFilter) { compareRuns(filter: $f, groupBy: [RANK, LEARNING_RATE]) { key { rank learningRate } runCount meanEmaLoss minLoss } }`,
      { f: { experimentId: basics.experimentId } },
    );
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
    await screenshots('compare');
  });

  it('lists the agents with their GPUs, status and current run', async () => {
    await page.getByRole('link', { name: 'Agents' }).click();
    const row = page.locator('#agents-table tbody tr').first();
    await expect.poll(() => row.textContent()).toContain('gpu-box-1');
    expect(await row.textContent()).toContain('RTX 4090');
    expect(await row.textContent()).toContain('BUSY');
    await screenshots('agents');
  });

  it('cancels and retries a run with an EDITOR key', async () => {
    const lateRun = runIds[4]!;
    await page.goto(`${t.url}/#/runs/${lateRun}`);
    const cancel = page.getByRole('button', { name: 'Cancel run' });
    await cancel.click();
    await page.getByRole('button', { name: 'Confirm cancel' }).click(); // two clicks for hours of training
    await expect.poll(() => page.locator('#stat-status').textContent()).toBe('CANCELLED');
    await page.getByRole('button', { name: 'Retry run' }).click();
    await expect.poll(() => page.locator('#stat-status').textContent()).toBe('QUEUED');
    expect((await editor.ok(`query($id: ID!) { run(id: $id) { status } }`, { id: lateRun })).run.status).toBe('QUEUED');
  });

  it('is usable from the keyboard', async () => {
    await page.goto(`${t.url}/#/runs`);
    await page.waitForSelector('#runs-table tbody tr');
    // Tab from the top reaches the navigation links, then the filters.
    const focused: string[] = [];
    for (let i = 0; i < 8; i++) {
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
