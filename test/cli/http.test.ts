import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { listFiles, tempDir, waitFor } from '../helpers/fs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function daemonWith(listen: string) {
  const t = await tempDir();
  await mkdir(path.join(t.dir, 'inbox'));
  const cfg = path.join(t.dir, 'c.yaml');
  await writeFile(
    cfg,
    `stateDir: ./state
stableMs: 100
log: { level: info, format: json }
http: { listen: "${listen}" }
roots: [{ path: ./inbox }]
targets: [{ type: local, path: ./archive }]
`,
  );
  const d: Daemon = startDaemon(['run', '--config', cfg], { cwd: t.dir });
  cleanups.push(async () => {
    if (d.child.exitCode === null) d.child.kill('SIGKILL');
    await d.exited;
    await t.cleanup();
  });
  return { d, dir: t.dir };
}

describe('the daemon’s HTTP server', () => {
  it('serves /healthz, /metrics and the status page at the configured address', async () => {
    const { d, dir } = await daemonWith('127.0.0.1:0');
    const url = await waitFor('the server url', () => /"url":"(http:\/\/127\.0\.0\.1:\d+)\/?"/.exec(d.output())?.[1], 20_000, 20);
    await waitFor('watching', () => d.output().includes('"msg":"watching"'), 20_000, 20);
    await writeFile(path.join(dir, 'inbox', 'a.txt'), 'hello');
    await waitFor('archived', async () => (await listFiles(path.join(dir, 'archive'))).length === 1, 20_000, 50);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    // The copy lands before the journal records it done: wait for the counter, bounded.
    const archived = /^stagecoach_files_archived_total\{target="local"\} 1$/m;
    const metrics = await waitFor('the counter at 1', async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return archived.test(text) ? text : undefined;
    }, 10_000, 50);
    expect(metrics).toMatch(archived);
    expect(await (await fetch(`${url}/`)).text()).toMatch(/<html/i);
    d.child.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
  });

  it('a port already taken costs the status page, never the archiving', async () => {
    const squatter = http.createServer(() => undefined);
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => squatter.close(() => r())));
    const port = (squatter.address() as AddressInfo).port;
    const { d, dir } = await daemonWith(`127.0.0.1:${port}`);
    await writeFile(path.join(dir, 'inbox', 'b.txt'), 'still archived');
    await waitFor('archived', async () => (await listFiles(path.join(dir, 'archive'))).length === 1, 20_000, 50);
    expect(d.output()).toMatch(/the HTTP server could not start; archiving goes on without it/);
    expect(d.child.exitCode).toBe(null);
  });
});
