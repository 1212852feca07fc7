import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { utimes, writeFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { startHttpServer } from '../../src/http/server.js';
import { createNotifier } from '../../src/notify/notifier.js';
import { startPipeline, type AllEvents } from '../../src/pipeline/topology.js';
import { EventBus } from '../../src/telemetry/bus.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { tempDir, waitFor } from '../helpers/fs.js';
import { closeClouds, cloudsAndConfig } from './clouds.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('operations, with a revoked token in an emulated cloud', () => {
  it('parking the target turns /healthz to 503 naming it and sends one webhook, not one per file', async () => {
    const hooks: Array<{ event: string; target: string }> = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        hooks.push(JSON.parse(body) as { event: string; target: string });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => receiver.close(() => r())));
    const webhook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

    const t = await tempDir();
    const { clouds, yaml, inbox } = await cloudsAndConfig(t.dir, 'supervisor: { coolDownMs: 200, coolDownMaxMs: 400 }\nhttp: { listen: null }\n');
    const config = parseConfig(yaml, { cwd: t.dir, env: {} });
    const log = createLogger({ level: 'error', format: 'json' });
    const bus = new EventBus<AllEvents>();
    const pipeline = await startPipeline(config, { log, mode: 'watch', bus });
    const server = await startHttpServer(pipeline, { host: '127.0.0.1', port: 0, log });
    const notifier = createNotifier(bus, { webhook, minIntervalMs: 60_000, batchMs: 60_000, log });
    cleanups.push(async () => {
      await server.close();
      await pipeline.stop();
      await notifier.close();
      await closeClouds(clouds);
      await t.cleanup();
    });

    clouds.box.revoke();
    clouds.box.expireTokens();
    const old = new Date(Date.now() - 3_600_000);
    for (let i = 0; i < 20; i++) {
      const f = path.join(inbox, `f${i}.txt`);
      await writeFile(f, `file ${i}`);
      await utimes(f, old, old);
    }
    const health = await waitFor(
      '/healthz 503',
      async () => {
        const r = await fetch(`${server.url.replace(/\/$/, '')}/healthz`);
        return r.status === 503 ? ((await r.json()) as { reasons: string[] }) : null;
      },
      30_000,
      100,
    );
    expect(JSON.stringify(health!.reasons)).toMatch(/box/);
    // It parks again and again while the token stays revoked: still one webhook.
    await waitFor('others done', async () => (await pipeline.store.counts()).filter((c) => c.target !== 'box').every((c) => c.done === 20), 30_000, 100);
    await new Promise((r) => setTimeout(r, 1500));
    expect(hooks.filter((h) => h.event === 'target.parked')).toEqual([expect.objectContaining({ target: 'box' })]);
    expect(hooks.filter((h) => h.event === 'target.parked' && h.target !== 'box')).toEqual([]);
  }, 60_000);
});
