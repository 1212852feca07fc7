import { existsSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { startHttpServer } from '../../src/http/server.js';
import type { Pipeline } from '../../src/pipeline/topology.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { tempDir, waitFor } from '../helpers/fs.js';
import { harness } from '../pipeline/helpers.js';
import { createScriptedTarget } from '../pipeline/scripted-target.js';

/** Debian's chromium; .ci/run installs it when missing. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) ?? '/usr/bin/chromium';
const SCREENSHOT = path.resolve('test-output', 'status-page.png');
const log = createLogger({ level: 'silent', format: 'json' });

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('status page in a real browser', () => {
  it('shows the counts moving while files are archived, a parked target, and saves a screenshot', async () => {
    const t = await tempDir();
    const h = await harness(t.dir, '  - id: cloud\n    type: local\n    path: ./unused\nsupervisor: { coolDownMs: 60000 }\n', { stableMs: 100 });
    const cloud = createScriptedTarget('cloud');
    let refuse = true;
    cloud.script = (remotePath) =>
      remotePath.includes('bad') ? { kind: 'fatal', reason: 'token revoked' } : refuse && remotePath.includes('oops') ? { kind: 'fail-item', reason: 'name refused' } : 'ok';
    const p: Pipeline = await h.start({ targets: [cloud] });
    const server = await startHttpServer(p, { port: 0, log });
    const profile = await tempDir('stagecoach-chromium-');
    let context: BrowserContext | undefined;
    cleanups.push(async () => {
      await context?.close();
      await server.close();
      await p.stop();
      await profile.cleanup();
      await t.cleanup();
    });
    // A fresh --user-data-dir (the persistent context's folder), and no call home.
    context = await chromium.launchPersistentContext(profile.dir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1100, height: 800 },
      timeout: 20_000,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    // The server sends a strict CSP (no inline script or style): any violation is a page bug.
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    const done = async (target: string) => Number(await page.locator(`[data-target="${target}"] [data-field="done"] b`).textContent({ timeout: 5_000 }));

    await page.goto(server.url);
    await page.locator('[data-target="local"]').waitFor({ timeout: 10_000 });
    expect(await done('local')).toBe(0);

    for (let i = 0; i < 5; i++) await writeFile(path.join(h.inbox, `a${i}.txt`), `file ${i}`);
    await waitFor('page shows 5 done', async () => (await done('local')) === 5, 15_000, 200);
    for (let i = 5; i < 12; i++) await writeFile(path.join(h.inbox, `a${i}.txt`), `file ${i}`);
    await waitFor('page shows 12 done', async () => (await done('local')) === 12, 15_000, 200);
    expect(await done('cloud')).toBe(12);
    expect(await page.locator('#files tr').count()).toBeGreaterThanOrEqual(12);
    expect(await page.locator('[data-target="local"] svg rect').count()).toBeGreaterThan(0);

    const failed = async (target: string) => Number(await page.locator(`[data-target="${target}"] [data-field="failed"] b`).textContent({ timeout: 5_000 }));
    await writeFile(path.join(h.inbox, 'oops.txt'), 'x');
    await waitFor('page shows 1 failed', async () => (await failed('cloud')) === 1, 15_000, 200);
    expect(await page.locator('#failures').textContent()).toMatch(/oops\.txt.*name refused/);
    refuse = false;
    await page.locator('[data-target="cloud"] button[data-action="retry-failed"]').click();
    await waitFor('page shows the retried file done', async () => (await failed('cloud')) === 0 && (await done('cloud')) === 13, 15_000, 200);

    await writeFile(path.join(h.inbox, 'bad.txt'), 'x');
    await waitFor('page shows cloud parked', async () => (await page.locator('[data-target="cloud"] [data-field="state"]').textContent()) === 'parked', 15_000, 200);
    expect(await page.locator('#health').textContent()).toMatch(/unhealthy.*cloud/);
    expect(await page.locator('[data-target="cloud"] button[data-action="retry-failed"]').count()).toBe(1);

    expect(violations).toEqual([]);
    await mkdir(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect((await stat(SCREENSHOT)).size).toBeGreaterThan(1000);

    // Another origin (another port) that frames the page: frame-ancestors 'none' keeps it out.
    const framer = http.createServer((_req, res) => res.end(`<!doctype html><iframe id="f" src="${server.url}"></iframe>`));
    await new Promise<void>((r) => framer.listen(0, '127.0.0.1', r));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          framer.close(() => r());
          framer.closeAllConnections();
        }),
    );
    const attacker = await context.newPage();
    await attacker.goto(`http://127.0.0.1:${(framer.address() as AddressInfo).port}/`);
    const frame = await (await attacker.locator('#f').elementHandle({ timeout: 5_000 }))!.contentFrame();
    // Give the frame the time the page itself needed to draw its first card.
    await attacker.waitForTimeout(1_000);
    expect(frame === null || (await frame.locator('[data-target]').count()) === 0).toBe(true);
    expect(frame?.url() ?? '').not.toBe(server.url);
  });
});
