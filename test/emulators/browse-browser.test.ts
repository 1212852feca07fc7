/**
 * The demo's promise, in a real browser: a newcomer opens an emulated cloud's browse page and
 * finds the file Stagecoach archived there. Chromium is driven as in test/http/browser.test.ts.
 */
import { existsSync } from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { gdriveHarness } from '../conformance/gdrive-harness.js';
import { request, seededBytes } from '../conformance/sources.js';
import { tempDir } from '../helpers/fs.js';

/** Debian's chromium; .ci/run installs it when missing. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) ?? '/usr/bin/chromium';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('an emulator browse page in a real browser', () => {
  it('shows the file the Drive target archived, in its folder, with its size and md5', async () => {
    const h = await gdriveHarness();
    cleanups.push(() => h.cleanup());
    const bytes = seededBytes(9, 4321);
    await h.target.put(request('reports/2026 <Q4> & more.txt', bytes));
    const stored = (await h.emu.tree()).find((f) => f.path.endsWith('/reports/2026 <Q4> & more.txt'));
    expect(stored).toBeDefined();

    const profile = await tempDir('stagecoach-chromium-');
    let context: BrowserContext | undefined;
    cleanups.push(async () => {
      await context?.close();
      await profile.cleanup();
    });
    context = await chromium.launchPersistentContext(profile.dir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 20_000,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`${h.emu.url}/`);
    expect(await page.title()).toContain('Google Drive (emulated)');
    const row = page.locator('tr.file', { hasText: '2026 <Q4> & more.txt' });
    await row.waitFor({ timeout: 10_000 });
    const cells = await row.locator('td').allTextContents();
    expect(cells[0]).toBe('2026 <Q4> & more.txt');
    expect(cells[1]).toBe('4321');
    expect(cells[2]).toBe(stored!.hash);
    expect(await page.locator('tr.folder', { hasText: 'reports/' }).count()).toBe(1);
    // The name is text, not markup: no element was made from it.
    expect(await page.locator('Q4').count()).toBe(0);
  });
});
