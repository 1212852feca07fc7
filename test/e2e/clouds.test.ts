import { rename, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { startPipeline, type AllEvents, type Pipeline } from '../../src/pipeline/topology.js';
import { EventBus } from '../../src/telemetry/bus.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { faultMix } from '../emulators/run.js';
import { bytes, tempDir, waitFor } from '../helpers/fs.js';
import { CLOUDS, closeClouds, cloudsAndConfig, verifyClouds } from './clouds.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(extra = '') {
  const t = await tempDir();
  const { clouds, yaml, inbox, archive } = await cloudsAndConfig(t.dir, extra);
  let pipeline: Pipeline | null = null;
  const lines: string[] = [];
  cleanups.push(async () => {
    await pipeline?.stop();
    await closeClouds(clouds);
    await t.cleanup();
  });
  const config = parseConfig(yaml, { cwd: t.dir, env: {} });
  const bus = new EventBus<AllEvents>();
  const { PassThrough } = await import('node:stream');
  const dest = new PassThrough();
  dest.on('data', (d: Buffer) => lines.push(d.toString()));
  const { collectSecrets } = await import('../../src/telemetry/redact.js');
  const log = createLogger({ level: 'info', format: 'json', destination: dest, secrets: collectSecrets(config) });
  return {
    clouds,
    inbox,
    archive,
    bus,
    lines,
    config,
    async start() {
      pipeline = await startPipeline(config, { log, mode: 'watch', bus });
      return pipeline;
    },
  };
}

const old = new Date(Date.now() - 3_600_000);
async function drop(inbox: string, name: string, data: Buffer): Promise<void> {
  const tmp = path.join(inbox, '..', `.${path.basename(name)}.staging`);
  await writeFile(tmp, data);
  await utimes(tmp, old, old);
  const dest = path.join(inbox, name);
  await (await import('node:fs/promises')).mkdir(path.dirname(dest), { recursive: true });
  await rename(tmp, dest);
}

const allDone = async (p: Pipeline, n: number, targets: readonly string[]) => {
  const counts = await p.store.counts();
  return targets.every((t) => counts.find((c) => c.target === t)?.done === n);
};

describe('the four clouds and the local folder, through the official SDKs against the emulators', () => {
  it('archives files of mixed sizes, above and below every chunk threshold, to all five targets, verified, no duplicates', async () => {
    const s = await setup();
    const p = await s.start();
    const sizes = [0, 1, 1000, 300_000, 4 * 1024 * 1024 + 1, 6_000_000, 9 * 1024 * 1024, 21_000_000];
    const files = sizes.map((n, i) => `mixed/f${i}-${n}.bin`);
    for (const [i, n] of sizes.entries()) await drop(s.inbox, files[i]!, bytes(n, i + 1));
    await waitFor('all delivered', () => allDone(p, files.length, ['local', ...CLOUDS]), 60_000, 100);
    expect(await verifyClouds(s.clouds, s.inbox, files)).toEqual([]);
    // Each upload sent its bytes once: nothing was sent twice.
    const counts = await p.store.counts();
    expect(counts.every((c) => c.failed === 0 && c.pending === 0)).toBe(true);
  }, 90_000); // 40 MB to each of five targets, with the wait above at 60 s

  it('with 20% of requests failing (429 with Retry-After, 500, 503, resets), 300 files reach all four clouds, verified, and the waits honour Retry-After', async () => {
    const s = await setup('retry: { retries: 12, minDelayMs: 50, maxDelayMs: 400 }\n');
    const retries: AllEvents['upload.retry'][] = [];
    s.bus.on('upload.retry', (e) => retries.push(e));
    const mix = faultMix(0.2);
    mix.mix = mix.mix!.filter((m) => m.kind !== 'hang');
    for (const c of CLOUDS) s.clouds[c].server.setFaults(mix);
    const p = await s.start();
    const files = Array.from({ length: 300 }, (_, i) => `storm/d${i % 6}/f${i}.txt`);
    for (const [i, f] of files.entries()) await drop(s.inbox, f, bytes(200 + (i % 50) * 37, 1000 + i));
    await waitFor('all delivered through the storm', () => allDone(p, files.length, CLOUDS), 150_000, 250);
    for (const c of CLOUDS) s.clouds[c].server.clearFaults();
    expect(await verifyClouds(s.clouds, s.inbox, files)).toEqual([]);
    const faulted = CLOUDS.reduce((a, c) => a + s.clouds[c].server.requests().filter((r) => r.fault).length, 0);
    expect(faulted).toBeGreaterThan(100);
    // Throttling answers carried Retry-After: 1 s; every retry after one waited at least that.
    const throttled = retries.filter((r) => /429|503|rate|too_many|throttl|activityLimit|Retry/i.test(r.reason));
    expect(throttled.length).toBeGreaterThan(0);
    const after = retries.filter((r) => r.delayMs >= 1000);
    expect(after.length).toBeGreaterThan(0);
    const with429 = retries.filter((r) => /\b429\b/.test(r.reason));
    if (process.env.SHOW_RETRIES) console.log(retries.slice(0, 40).map((r) => `${r.target} ${r.delayMs} ${r.reason}`).join('\n'));
    expect(new Set(with429.map((r) => r.target)).size).toBe(4);
    for (const r of with429) expect(r.delayMs).toBeGreaterThanOrEqual(1000);
  }, 200_000);

  it('a revoked token parks that target with a clear reason while the others finish', async () => {
    const s = await setup('supervisor: { coolDownMs: 600000 }\n');
    s.clouds.dropbox.revoke();
    s.clouds.dropbox.expireTokens();
    const p = await s.start();
    const files = Array.from({ length: 20 }, (_, i) => `r/f${i}.txt`);
    for (const [i, f] of files.entries()) await drop(s.inbox, f, bytes(500, i));
    await waitFor('others done', () => allDone(p, files.length, ['local', 'gdrive', 'box', 'onedrive']), 60_000, 100);
    const health = await waitFor('dropbox parked', async () => (await p.store.health()).find((h) => h.target === 'dropbox' && h.status === 'down'), 30_000, 100);
    expect(health!.reason).toMatch(/stagecoach auth dropbox/);
    const dbx = (await p.store.counts()).find((c) => c.target === 'dropbox')!;
    expect(dbx.done).toBe(0);
    expect(dbx.pending).toBe(20);
    // No token or secret in any log line of the run.
    const secrets = [s.clouds.dropbox.credentials.refreshToken, s.clouds.dropbox.credentials.clientSecret, 'demo-gdrive-secret', 'demo-box-refresh', 'demo-onedrive-secret'];
    for (const line of s.lines) for (const secret of secrets) expect(line).not.toContain(secret);
  });
});
