// Chromium for the page's browser tests (Debian's, through playwright-core), and the screenshots
// every view leaves at a desktop's and a phone's size for a person to look at.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'];
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/web', import.meta.url));
export const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

/** Without Chromium (apt-get install -y chromium) a developer's run skips the browser tests; CI's must not. */
export const withoutChromium = !existsSync(CHROMIUM) && !process.env.CI;

export async function launchChromium() {
  await mkdir(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** The page at each size, saved as test-artifacts/web/<name>-<size>.png; nothing but the tables' own scrollers may be wider than the screen. */
export async function screenshots(page: Page, name: string) {
  for (const [size, viewport] of Object.entries(SIZES)) {
    await page.setViewportSize(viewport);
    await page.waitForTimeout(150); // the chart follows its container's new width
    expect(await page.evaluate(() => document.documentElement.scrollWidth), `${name} at ${size}`).toBeLessThanOrEqual(viewport.width);
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${size}.png`), fullPage: true });
  }
  await page.setViewportSize(SIZES.desktop);
}
