/**
 * The daemon's scrub (verify.every) against config/demo.yaml's five targets: a copy deleted in
 * Drive and one replaced in Dropbox are found within one period, the running pipeline archives
 * them again, and the findings are on /api/status (the status page's data), in /metrics
 * (stagecoach_verify_*) and in a `copies.damaged` webhook. On the SQLite journal and on a
 * PostgreSQL one (journal.url).
 */
import http from 'node:http';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { startScrub } from '../../src/audit/scrub.js';
import { parseConfig } from '../../src/config/index.js';
import { startHttpServer } from '../../src/http/server.js';
import { createNotifier } from '../../src/notify/notifier.js';
import { startPipeline } from '../../src/pipeline/topology.js';
import type { AuditStore } from '../../src/state/audit.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { deleteRemote } from '../conformance/remote-delete.js';
import { request } from '../conformance/sources.js';
import { closeClouds, cloudsAndConfig, verifyClouds } from '../e2e/clouds.js';
import { bytes, tempDir, waitFor } from '../helpers/fs.js';
import { createTestDatabase } from '../helpers/postgres.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const log = createLogger({ level: 'silent', format: 'json', destination: new PassThrough() });

describe('scrub in the daemon', () => {
  it.each(['SQLite', 'PostgreSQL'])('on the %s journal: finds a deleted and an altered copy, re-archives them, and reports them on the page, /metrics and the webhook', async (journal) => {
    const t = await tempDir();
    let extra = '\nverify: { every: 4s, sample: 100% }\n';
    if (journal === 'PostgreSQL') {
      const db = await createTestDatabase(inject('pgUrl'));
      cleanups.push(db.drop);
      extra += `journal: { url: "${db.url}" }\n`;
    }
    const { clouds, yaml, inbox } = await cloudsAndConfig(t.dir, extra);
    cleanups.push(async () => {
      await closeClouds(clouds);
      await t.cleanup();
    });
    const config = parseConfig(yaml, { cwd: t.dir, env: {} });
    expect(config.verify).toEqual({ every: 4000, sample: 100 });
    const files = ['a.bin', 'd/b.bin', 'd/c.bin', 'd/e.bin'];
    const old = new Date(Date.now() - 3_600_000);
    for (const [i, f] of files.entries()) {
      await mkdir(path.dirname(path.join(inbox, f)), { recursive: true });
      await writeFile(path.join(inbox, f), bytes(20_000 + i, i + 1));
      await utimes(path.join(inbox, f), old, old);
    }
    const pipeline = await startPipeline(config, { log, mode: 'watch' });
    cleanups.push(() => pipeline.stop());
    const done = async (): Promise<boolean> => (await pipeline.store.counts()).every((c) => c.done === files.length);
    await waitFor('all archived', done, 30_000, 100);

    const hooks: Array<{ event: string; target: string; count?: number }> = [];
    const hookServer = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        hooks.push(JSON.parse(body) as { event: string; target: string });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => hookServer.close(() => r())));
    const port = (hookServer.address() as { port: number }).port;
    const notifier = createNotifier(pipeline.bus, { webhook: `http://127.0.0.1:${port}/hook`, minIntervalMs: 0, log });
    cleanups.push(() => notifier.close());
    const server = await startHttpServer(pipeline, { port: 0, log });
    cleanups.push(() => server.close());

    const gdrive = pipeline.targets.find((x) => x.id === 'gdrive')!;
    const dropbox = pipeline.targets.find((x) => x.id === 'dropbox')!;
    await deleteRemote({ kind: 'gdrive', emu: clouds.gdrive }, gdrive, 'inbox/a.bin');
    await dropbox.put(request('inbox/d/b.bin', bytes(20_001, 77)));

    const scrub = startScrub({
      everyMs: config.verify.every!,
      sample: config.verify.sample,
      targets: pipeline.targets,
      requestsPerSecond: new Map(config.targets.map((x) => [x.id, x.requestsPerSecond])),
      audit: (pipeline.store as unknown as { audit: AuditStore }).audit,
      store: pipeline.store,
      bus: pipeline.bus,
      log,
      poke: (id) => pipeline.archiver.poke(id),
    });
    cleanups.push(() => scrub.stop());
    expect(scrub.tickMs).toBe(1000);
    // Each round checks a quarter of each target's copies (tick 1 s of a 4 s period): four rounds cover all.
    for (let i = 0; i < 4; i++) await scrub.round();

    await waitFor('webhooks for both', () => hooks.filter((h) => h.event === 'copies.damaged').length >= 2, 10_000, 50);
    expect(hooks.filter((h) => h.event === 'copies.damaged').map((h) => [h.target, h.count]).sort()).toEqual([
      ['dropbox', 1],
      ['gdrive', 1],
    ]);

    const status = (await (await fetch(`${server.url}api/status`)).json()) as { verify: { findings: Array<{ target: string; relPath: string; problem: string }>; targets: Array<{ target: string; checked: number }> } };
    expect(status.verify.findings.map((f) => [f.target, f.relPath, f.problem]).sort()).toEqual([
      ['dropbox', 'd/b.bin', 'altered'],
      ['gdrive', 'a.bin', 'missing'],
    ]);
    expect(status.verify.targets.find((x) => x.target === 'box')?.checked).toBe(files.length);
    const metrics = await (await fetch(`${server.url}metrics`)).text();
    // On a shared journal every series also carries the daemon's `node` label.
    expect(metrics).toMatch(/stagecoach_verify_problems_total\{target="gdrive",problem="missing"(,node="[^"]*")?\} 1/);
    expect(metrics).toMatch(/stagecoach_verify_problems_total\{target="dropbox",problem="altered"(,node="[^"]*")?\} 1/);
    expect(metrics).toMatch(/stagecoach_verify_checked_total\{target="onedrive"(,node="[^"]*")?\} 4/);

    // The running pipeline was poked: both copies come back without a restart.
    await waitFor('re-archived', async () => (await verifyClouds(clouds, inbox, files)).length === 0 && (await done()), 30_000, 100);
  });
});
