import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { startHttpServer, type StatusBody } from '../../src/http/server.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { tempDir, waitFor } from '../helpers/fs.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { harness } from '../pipeline/helpers.js';
import { parsePromText } from './prom-text.js';

const log = createLogger({ level: 'silent', format: 'json' });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('the status server of a daemon on a shared journal', () => {
  it('/api/status lists the daemons, the page draws them, /metrics labels every series with the node', async () => {
    const db = await createTestDatabase(inject('pgUrl'));
    cleanups.push(() => db.drop());
    const t = await tempDir();
    cleanups.push(() => t.cleanup());
    const h = await harness(t.dir, `journal: { url: "${db.url}" }\nnode: nas-7\n`, { stableMs: 100 });
    const p = await h.start();
    cleanups.push(() => p.stop());
    const server = await startHttpServer(p, { port: 0, log, token: null });
    cleanups.push(() => server.close());

    await writeFile(path.join(h.inbox, 'a.txt'), 'a');
    await waitFor('archived', async () => (await p.store.counts()).find((c) => c.target === 'local')?.done === 1, 20_000);

    const status = (await (await fetch(new URL('/api/status', server.url))).json()) as StatusBody;
    expect(status.node).toBe('nas-7');
    expect(status.nodes).toEqual([
      { name: 'nas-7', roots: ['inbox'], watches: ['inbox'], startedAt: expect.any(Number), lastSeen: expect.any(Number), leases: 0, alive: true },
    ]);
    const page = await (await fetch(new URL('/', server.url))).text();
    expect(page).toContain('id="fleet"');
    const script = await (await fetch(new URL('/app.js', server.url))).text();
    expect(script).toContain('Daemons on this journal');

    const metrics = parsePromText(await (await fetch(new URL('/metrics', server.url))).text());
    const archived = metrics.samples.filter((s) => s.name === 'stagecoach_files_archived_total');
    expect(archived.length).toBeGreaterThan(0);
    expect(archived.every((s) => s.labels.node === 'nas-7')).toBe(true);
  });
});
