import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createNotifier, type NotifyPayload } from '../../src/notify/notifier.js';
import type { Pipeline } from '../../src/pipeline/topology.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { tempDir, waitFor } from '../helpers/fs.js';
import { harness } from '../pipeline/helpers.js';
import { createScriptedTarget } from '../pipeline/scripted-target.js';

const log = createLogger({ level: 'silent', format: 'json' });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A webhook receiver on 127.0.0.1 that records every JSON POST. */
async function receiver() {
  const got: NotifyPayload[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      if (req.method === 'POST' && req.headers['content-type'] === 'application/json') got.push(JSON.parse(body) as NotifyPayload);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  cleanups.push(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  return { got, url };
}

describe('notifier on a real pipeline', () => {
  it('20 deliveries hitting a fatal error send one "parked" webhook, and one "recovered" when the target comes back', async () => {
    const hook = await receiver();
    const t = await tempDir();
    const h = await harness(
      t.dir,
      `  - id: cloud
    type: local
    path: ./unused
    maxDemand: 4
supervisor: { coolDownMs: 100, coolDownMaxMs: 200 }
`,
      { stableMs: 100 },
    );
    for (let i = 0; i < 20; i++) await writeFile(path.join(h.inbox, `f ${i} é.txt`), `file ${i}`);
    const cloud = createScriptedTarget('cloud');
    let revoked = true;
    cloud.script = () => (revoked ? { kind: 'fatal', reason: 'token revoked' } : 'ok');
    // minIntervalMs 0: only the one-per-state-change rule may keep this to one webhook.
    const notifier = createNotifier(h.bus, { webhook: hook.url, minIntervalMs: 0, batchMs: 50, recoverAfterMs: 60_000, log });
    let p: Pipeline | null = null;
    cleanups.push(async () => {
      await notifier.close();
      await p?.stop();
      await t.cleanup();
    });
    let parks = 0;
    h.bus.on('target.down', (e) => {
      if (e.target === 'cloud') parks++;
    });
    p = await h.start({ targets: [cloud] });
    const pipeline = p;
    const counts = async () => (await pipeline.store.counts()).find((c) => c.target === 'cloud');

    await waitFor('local done', async () => (await pipeline.store.counts()).find((c) => c.target === 'local')?.done === 20);
    // Parked, retried after the cool-down, parked again: the supervisor tries it several times.
    await waitFor('parked three times', () => parks >= 3, 10_000);
    await notifier.settled();
    expect(await counts()).toMatchObject({ pending: 20, done: 0 });
    expect(hook.got.map((g) => g.event)).toEqual(['target.parked']);
    expect(hook.got[0]).toMatchObject({ target: 'cloud', reason: expect.stringMatching(/token revoked/) as unknown, type: 'failure' });

    revoked = false;
    await waitFor('cloud caught up', async () => (await counts())?.done === 20, 10_000);
    await notifier.settled();
    expect(hook.got.map((g) => g.event)).toEqual(['target.parked', 'target.recovered']);
    expect(hook.got[1]).toMatchObject({ target: 'cloud', type: 'success' });
  });

  it('deliveries that fail are reported in one batched webhook', async () => {
    const hook = await receiver();
    const t = await tempDir();
    const h = await harness(t.dir, '  - id: cloud\n    type: local\n    path: ./unused\n', { stableMs: 100 });
    for (let i = 0; i < 6; i++) await writeFile(path.join(h.inbox, `g${i}.txt`), `file ${i}`);
    const cloud = createScriptedTarget('cloud');
    cloud.script = (remotePath) => (/g[024]\.txt$/.test(remotePath) ? { kind: 'fail-item', reason: 'name refused' } : 'ok');
    const notifier = createNotifier(h.bus, { webhook: hook.url, minIntervalMs: 0, batchMs: 300, log });
    const p = await h.start({ targets: [cloud] });
    cleanups.push(async () => {
      await notifier.close();
      await p.stop();
      await t.cleanup();
    });
    await waitFor('cloud settled', async () => {
      const c = (await p.store.counts()).find((x) => x.target === 'cloud');
      return c?.failed === 3 && c.done === 3;
    });
    await waitFor('webhook', () => hook.got.length > 0, 5_000);
    await notifier.settled();
    expect(hook.got).toHaveLength(1);
    expect(hook.got[0]).toMatchObject({ event: 'deliveries.failed', target: 'cloud', count: 3, reason: 'name refused' });
    expect(hook.got[0]!.failures!.map((f) => f.remotePath).sort()).toEqual(['inbox/g0.txt', 'inbox/g2.txt', 'inbox/g4.txt']);
  });
});
