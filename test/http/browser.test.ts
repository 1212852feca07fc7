import { existsSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { startHttpServer } from '../../src/http/server.js';
import { startPipeline, type Pipeline } from '../../src/pipeline/topology.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { tempDir, waitFor } from '../helpers/fs.js';
import { createTestDatabase, startTestPostgres } from '../helpers/postgres.js';
import { harness } from '../pipeline/helpers.js';
import { createScriptedTarget } from '../pipeline/scripted-target.js';
import { CLOUDS, closeClouds, cloudsAndConfig } from '../e2e/clouds.js';
import { createSignIn } from '../../src/cli/auth.js';
import { startBoxEmulator } from '../emulators/box/index.js';
import { startOneDriveEmulator } from '../emulators/onedrive/index.js';
import { ONEDRIVE_CLIENT_ID } from '../conformance/onedrive-harness.js';

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
    // The chart has axes with units; the card says the pace and when the backlog is empty.
    expect(await page.locator('[data-target="local"] svg [data-axis="y-unit"]').textContent()).toBe('files/min');
    expect(await page.locator('[data-target="local"] svg [data-axis="x"]').allTextContents()).toEqual(['-60 min', '-30 min', 'now']);
    expect(await page.locator('[data-target="local"] [data-field="rate"]').textContent()).toMatch(/^[\d.]+ files\/s · [\d.]+ MiB\/s$/);
    expect(await page.locator('[data-target="local"] [data-field="eta"]').textContent()).toBe('backlog empty');
    expect(await page.locator('#files').textContent()).toMatch(/\d+ B/);
    // Nothing failed: nothing to retry.
    expect(await page.locator('[data-target="local"] button[data-action="retry-failed"]').isDisabled()).toBe(true);

    const failed = async (target: string) => Number(await page.locator(`[data-target="${target}"] [data-field="failed"] b`).textContent({ timeout: 5_000 }));
    await writeFile(path.join(h.inbox, 'oops.txt'), 'x');
    await waitFor('page shows 1 failed', async () => (await failed('cloud')) === 1, 15_000, 200);
    expect(await page.locator('#failures').textContent()).toMatch(/oops\.txt.*name refused/);
    refuse = false;
    expect(await page.locator('[data-target="cloud"] button[data-action="retry-failed"]').isDisabled()).toBe(false);
    await page.locator('[data-target="cloud"] button[data-action="retry-failed"]').click();
    await waitFor('page shows the retried file done', async () => (await failed('cloud')) === 0 && (await done('cloud')) === 13, 15_000, 200);

    await writeFile(path.join(h.inbox, 'bad.txt'), 'x');
    await waitFor('page shows cloud parked', async () => (await page.locator('[data-target="cloud"] [data-field="state"]').textContent()) === 'parked', 15_000, 200);
    expect(await page.locator('#health').textContent()).toMatch(/unhealthy.*cloud/);
    // A parked target says when it is tried next.
    expect(await page.locator('[data-target="cloud"] [data-field="reason"]').textContent()).toMatch(/token revoked · tried again at \d/);
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

  it('asks for the token in its own form (never prompt()), and keeps one given as #token=', async () => {
    const t = await tempDir();
    const h = await harness(t.dir, '', { stableMs: 100 });
    const p: Pipeline = await h.start();
    const token = 'page-token-0123456789abcdef';
    const server = await startHttpServer(p, { port: 0, log, token });
    const { close, page, violations } = await browser();
    cleanups.push(async () => {
      await close();
      await server.close();
      await p.stop();
      await t.cleanup();
    });
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(server.url);
    await page.locator('#token-form').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.locator('[data-target]').count()).toBe(0);
    await page.locator('#token-input').fill('not-the-token');
    await page.locator('#token-form button[type="submit"]').click();
    await waitFor('refused', async () => (await page.locator('#token-note').textContent()) === 'that token was refused', 10_000, 100);
    await page.locator('#token-input').fill(token);
    await page.locator('#token-form button[type="submit"]').click();
    await page.locator('[data-target="local"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('#token-form').isHidden()).toBe(true);

    // A fresh browser profile opened with #token=: no form, and the token leaves the address bar.
    const second = await browser();
    cleanups.push(() => second.close());
    await second.page.goto(`${server.url}#token=${token}`);
    await second.page.locator('[data-target="local"]').waitFor({ timeout: 10_000 });
    expect(new URL(second.page.url()).hash).toBe('');
    expect(await second.page.locator('#token-form').isHidden()).toBe(true);
    expect(dialogs).toEqual([]);
    expect([...violations, ...second.violations]).toEqual([]);
  });

  it('says so in a banner while the PostgreSQL journal is unreachable (its server restarting), and not before or after', async () => {
    const pgServer = await startTestPostgres();
    const db = await createTestDatabase(pgServer.url);
    const t = await tempDir();
    // Heartbeats every leaseMs/3: the daemon finds the server gone within a second.
    const h = await harness(t.dir, `journal: { url: "${db.url}", leaseMs: 1000 }\nnode: nas-1\n`, { stableMs: 100 });
    const p: Pipeline = await h.start();
    const server = await startHttpServer(p, { port: 0, log, token: null });
    const { close, page, violations } = await browser();
    cleanups.push(async () => {
      await close();
      await server.close();
      await p.stop();
      await db.drop();
      await pgServer.stop();
      await t.cleanup();
    });
    const banner = page.locator('#journal');
    await page.goto(server.url);
    await page.locator('[data-target="local"]').waitFor({ timeout: 10_000 });
    expect(await banner.isHidden()).toBe(true);

    // The server is down for 8 s: the page's next polls show the banner, then lose it once it answers.
    const restarting = pgServer.restart(8_000);
    try {
      await banner.waitFor({ state: 'visible', timeout: 8_000 });
      expect(await banner.textContent()).toMatch(/^The journal \(PostgreSQL\) is unreachable since \d.*: .+; deliveries wait and resume when it answers\.$/);
      expect(await banner.getAttribute('role')).toBe('alert');
    } finally {
      await restarting;
    }
    await banner.waitFor({ state: 'hidden', timeout: 15_000 });
    // Archiving goes on: a file written now is archived and shown.
    await writeFile(path.join(h.inbox, 'after.txt'), 'x');
    await waitFor('page shows 1 done', async () => Number(await page.locator('[data-target="local"] [data-field="done"] b').textContent()) === 1, 15_000, 200);
    expect(await banner.isHidden()).toBe(true);
    expect(violations).toEqual([]);
  }, 90_000);

  it('finds a file by name in the search box and shows its five copies, verified, with their hashes', async () => {
    const t = await tempDir();
    const { clouds, yaml, inbox } = await cloudsAndConfig(t.dir, 'http: { listen: null }\n');
    // Written before the start: the start-up walk finds them (new folders made while live
    // watching is still being set up are issue 14's, not this test's).
    await mkdir(path.join(inbox, 'trips'), { recursive: true });
    await writeFile(path.join(inbox, 'trips', 'Lisbon 2026.jpg'), 'a photo of Lisbon');
    await writeFile(path.join(inbox, 'trips', 'Porto.jpg'), 'a photo of Porto');
    const config = parseConfig(yaml, { cwd: t.dir, env: {} });
    const p = await startPipeline(config, { log, mode: 'watch' });
    const server = await startHttpServer(p, { port: 0, log });
    const { close, page, violations } = await browser();
    cleanups.push(async () => {
      await close();
      await server.close();
      await p.stop();
      await closeClouds(clouds);
      await t.cleanup();
    });
    await waitFor(
      'archived everywhere',
      async () => {
        const c = await p.store.counts();
        return c.length === 5 && c.every((x) => x.done === 2);
      },
      30_000,
      100,
    );

    await page.goto(server.url);
    await page.locator('#search-input').fill('lisbon');
    await page.locator('#search-form button[type="submit"]').click();
    const result = page.locator('#search-results .result');
    await result.first().waitFor({ timeout: 10_000 });
    expect(await result.count()).toBe(1);
    expect(await result.getAttribute('data-file')).toBe('trips/Lisbon 2026.jpg');
    const rows = result.locator('tr[data-target]');
    expect((await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-target')))).sort()).toEqual(['local', ...CLOUDS].sort());
    for (let i = 0; i < 5; i++) {
      const cells = await rows.nth(i).locator('td').allTextContents();
      // Target, state, remote path, size, hash, verified, reason.
      expect(cells[1]).toBe('done');
      expect(cells[2]).toMatch(/inbox\/trips\/Lisbon 2026\.jpg$/);
      expect(cells[3]).toBe('17 B');
      expect(cells[4]!.length).toBeGreaterThan(8);
      expect(cells[5]).not.toBe('');
      expect(cells[6]).toBe('');
    }
    await page.locator('#search-input').fill('no such file');
    await page.locator('#search-form button[type="submit"]').click();
    await page.locator('[data-field="no-match"]').waitFor({ timeout: 10_000 });
    expect(violations).toEqual([]);
  }, 60_000);
  it('signs Box (pasted code) and OneDrive (device code) in with Connect; both start archiving without a restart', async () => {
    const box = await startBoxEmulator();
    const od = await startOneDriveEmulator({ deviceCodeIntervalS: 0 });
    const t = await tempDir();
    await mkdir(path.join(t.dir, 'inbox'), { recursive: true });
    await writeFile(path.join(t.dir, 'inbox', 'waiting.txt'), 'archived once signed in');
    // A minute of cool-down: the targets can only start this soon because Connect started them.
    const config = parseConfig(
      `stateDir: ./state
stableMs: 100
supervisor: { coolDownMs: 60000, coolDownMaxMs: 60000 }
roots: [{ path: ./inbox }]
targets:
  - type: box
    remoteRoot: Stagecoach
    auth: { kind: oauth, clientId: ${box.clientId}, clientSecret: ${box.clientSecret} }
    endpoints: { baseUrl: "${box.url}", uploadUrl: "${box.url}/api", oauth2Url: "${box.url}/api/oauth2" }
  - type: onedrive
    remoteRoot: Stagecoach
    auth: { kind: delegated, clientId: ${ONEDRIVE_CLIENT_ID}, tenant: consumers }
    endpoints: { graph: "${od.url}", login: "${od.url}" }
`,
      { cwd: t.dir, env: {} },
    );
    const p = await startPipeline(config, { log, mode: 'watch' });
    const server = await startHttpServer(p, { port: 0, log, signIn: createSignIn(config, p) });
    const { close, page, violations } = await browser();
    cleanups.push(async () => {
      await close();
      await server.close();
      await p.stop();
      await box.close();
      await od.close();
      await t.cleanup();
    });
    const state = (id: string) => page.locator(`[data-target="${id}"] [data-field="state"]`).textContent();
    await page.goto(server.url);
    await waitFor('both parked', async () => (await state('box')) === 'parked' && (await state('onedrive')) === 'parked', 20_000, 200);
    expect(await page.locator('[data-target="box"] [data-field="reason"]').textContent()).toMatch(/sign|auth/i);

    // Box: the page shows Box's address; the user signs in there and pastes the code back.
    await page.locator('[data-target="box"] button[data-action="connect"]').click();
    await page.locator('#connect-form').waitFor({ state: 'visible', timeout: 20_000 });
    const link = await page.locator('#connect-lines a').first().getAttribute('href');
    expect(link).toMatch(new RegExp(`^${box.url}/api/oauth2/authorize\\?`));
    expect(new URL(link!).searchParams.get('client_id')).toBe(box.clientId);
    await page.locator('#connect-input').fill(box.issueAuthCode());
    await page.locator('#connect-form button[type="submit"]').click();
    await waitFor('box signed in', async () => (await page.locator('#connect-message').textContent()) === 'box is signed in; it starts now', 20_000, 100);
    await waitFor('box archived', async () => (await box.tree()).some((f) => f.path.endsWith('Stagecoach/inbox/waiting.txt')), 20_000, 100);
    await page.locator('#connect-close').click();

    // OneDrive: the page shows the device-login address and the code; approving it is enough.
    await page.locator('[data-target="onedrive"] button[data-action="connect"]').click();
    const code = await waitFor('the device code', async () => /Enter the code ([A-Z0-9]+)/.exec((await page.locator('#connect-lines').textContent()) ?? '')?.[1], 20_000, 100);
    expect(await page.locator('#connect-lines').textContent()).toMatch(/devicelogin/);
    expect(await page.locator('#connect-form').isHidden()).toBe(true);
    od.approveDeviceCode(code!);
    await waitFor('onedrive signed in', async () => (await page.locator('#connect-message').textContent()) === 'onedrive is signed in; it starts now', 20_000, 100);
    await waitFor('onedrive archived', async () => (await od.tree()).some((f) => f.path.endsWith('Stagecoach/inbox/waiting.txt')), 20_000, 100);
    await waitFor('cards running', async () => (await state('box')) === 'running' && (await state('onedrive')) === 'running', 10_000, 200);
    expect(await page.locator('button[data-action="connect"]').count()).toBe(0);
    // The tokens are where `stagecoach auth` puts them.
    expect((await stat(path.join(t.dir, 'state', 'targets', 'box', 'box-tokens.json'))).mode & 0o777).toBe(0o600);
    expect(violations).toEqual([]);
  }, 90_000);
});

/** A headless Debian chromium with a fresh profile; CSP violations collected. */
async function browser(): Promise<{ close(): Promise<void>; page: import('playwright-core').Page; violations: string[] }> {
  const profile = await tempDir('stagecoach-chromium-');
  const context = await chromium.launchPersistentContext(profile.dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1100, height: 800 },
    timeout: 20_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const violations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  return {
    page,
    violations,
    close: async () => {
      await context.close();
      await profile.cleanup();
    },
  };
}
