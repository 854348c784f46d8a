// The run page of a continued run, in a browser: it links to the run it continues (and that one to
// it), draws the parent's curve in grey before its own, and says what resuming saved.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAgent, REPORT_LOSS } from './helpers/agents.js';
import { launchChromium, screenshots, SIZES, withoutChromium } from './helpers/browser.js';
import { createBasics, queueRun } from './helpers/fixtures.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const points = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ step: from + i, loss: 0.5 / Math.sqrt(from + i + 1) + 0.03 * Math.abs(Math.sin(from + i)) }));

describe.skipIf(withoutChromium)('a continued run on the run page', () => {
  let t: TestServer;
  let browser: Browser;
  let page: Page;
  let parentId: string;
  let childId: string;

  beforeAll(async () => {
    [t, browser] = await Promise.all([startTestServer('pglite', { reaperIntervalSeconds: 3600 }), launchChromium()]);
    const editor = await t.as('EDITOR');
    const basics = await createBasics(editor);
    const agent = await registerAgent(t, { name: 'gpu-box-1', hourlyCostUsd: 0.69 });
    // A 300-step run trained and finished (its final checkpoint stored), then continued to 500 steps.
    parentId = (await queueRun(editor, basics, { name: 'portrait r16', hyperparameters: { steps: 300, saveEvery: 100 } })).id;
    const first = (await agent.claim())!;
    await agent.start(parentId, first.leaseToken);
    await agent.client.ok(REPORT_LOSS, { r: parentId, t: first.leaseToken, p: points(0, 300) });
    expect((await agent.complete(parentId, first.leaseToken, 'SUCCEEDED')).errors).toBeUndefined();
    const { continueRun } = await editor.ok(`mutation($r: ID!) { continueRun(runId: $r, steps: 500) { id } }`, { r: parentId });
    childId = continueRun.id;
    const second = (await agent.claim())!;
    expect(second.run.id).toBe(childId);
    await agent.start(childId, second.leaseToken);
    await agent.client.ok(REPORT_LOSS, { r: childId, t: second.leaseToken, p: points(300, 420) });

    const context = await browser.newContext({ viewport: SIZES.desktop });
    context.setDefaultTimeout(10_000);
    page = await context.newPage();
    await page.goto(t.url);
    await page.evaluate((key) => localStorage.setItem('loralab.apiKey', key), editor.key!);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('links the continued run to its parent, draws the parent curve before its own, and says what resuming saved', async () => {
    await page.goto(`${t.url}/#/runs/${childId}`);
    await page.reload(); // the key set above is read at start
    await expect.poll(() => page.locator('#run-lineage').textContent()).toContain('Continues portrait r16 from step 300');
    // 300 of the parent's points, then this run's 120.
    await expect.poll(() => page.locator('#loss-chart').getAttribute('data-points').then(Number)).toBe(420);
    expect(await page.locator('#stat-resume').textContent()).toBe('from step 300 of the parent run · resume saved 300 steps');
    await screenshots(page, 'run-continued');

    await page.locator('#run-lineage a').click();
    await expect.poll(() => page.locator('#run-lineage').textContent()).toContain('Continued as portrait r16 → 500 steps (running)');
    expect(await page.locator('#loss-chart').getAttribute('data-points')).toBe('300');
  });

  it('trains a finished run on from its final checkpoint with "Train on", and opens the new run', async () => {
    await page.goto(`${t.url}/#/runs/${parentId}`);
    await page.waitForSelector('form.train-on:not([hidden])');
    await screenshots(page, 'run-finished-train-on');
    // A number of steps not past the checkpoint is refused, naming why.
    await page.getByLabel('Train on to this many steps in all').fill('200');
    await page.evaluate(() => document.querySelector<HTMLInputElement>('#train-on-steps')!.removeAttribute('min'));
    await page.getByRole('button', { name: 'Train on' }).click();
    await expect.poll(() => page.locator('#action-message').textContent()).toContain("must exceed the checkpoint's step (300)");
    await page.getByLabel('Train on to this many steps in all').fill('600');
    await page.getByRole('button', { name: 'Train on' }).click();
    await expect.poll(() => page.locator('#crumb-run').textContent()).toBe('portrait r16 → 600 steps');
    await expect.poll(() => page.locator('#run-lineage').textContent()).toContain('Continues portrait r16 from step 300');
    expect(await page.locator('#stat-resume').textContent()).toBe('from step 300 of the parent run');
    await screenshots(page, 'run-train-on');
  });
});
