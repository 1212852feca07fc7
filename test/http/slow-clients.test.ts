/**
 * Slow clients against the daemon's status server, with a low descriptor limit: they must not
 * make the page unreachable, nor starve the watcher and the uploads of descriptors (EMFILE).
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/daemon.js';
import { listFiles, tempDir, waitFor } from '../helpers/fs.js';

const SLOW_CLIENTS = 2000;
/** Low enough that 2,000 held connections would take every descriptor the daemon has. */
const FD_LIMIT = 256;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Opens one connection that sends part of a request's headers and then nothing. */
function slowClient(port: number, open: Set<net.Socket>): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    open.add(s);
    s.on('error', () => undefined);
    s.once('close', () => {
      open.delete(s);
      resolve();
    });
    s.once('connect', () => {
      s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      resolve();
    });
  });
}

describe('slow clients', () => {
  it(`${SLOW_CLIENTS} slow connections leave /healthz answering and the watcher archiving, with ${FD_LIMIT} descriptors`, async () => {
    const t = await tempDir();
    await mkdir(path.join(t.dir, 'inbox'));
    const cfg = path.join(t.dir, 'c.yaml');
    await writeFile(
      cfg,
      `stateDir: ./state
stableMs: 100
log: { level: info, format: json }
http: { listen: "127.0.0.1:0" }
roots: [{ path: ./inbox }]
targets: [{ type: local, path: ./archive }]
`,
    );
    const child = spawn('prlimit', [`--nofile=${FD_LIMIT}:${FD_LIMIT}`, '--', process.execPath, CLI, 'run', '--config', cfg], {
      cwd: t.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const open = new Set<net.Socket>();
    cleanups.push(async () => {
      for (const s of open) s.destroy();
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      await t.cleanup();
    });

    const url = (await waitFor('the server url', () => /"url":"(http:\/\/127\.0\.0\.1:\d+)\/?"/.exec(out)?.[1], 20_000, 20))!;
    await waitFor('watching', () => out.includes('"msg":"watching"'), 20_000, 20);
    const port = Number(new URL(url).port);

    // In batches, so that the test's own descriptors and the accept queue keep up.
    for (let i = 0; i < SLOW_CLIENTS; i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, SLOW_CLIENTS - i) }, () => slowClient(port, open)));
    }
    // Far more than the daemon could hold were sent; those it kept are still held by them.
    expect(open.size).toBeGreaterThan(0);

    const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(10_000) });
    expect(health.status).toBe(200);
    await writeFile(path.join(t.dir, 'inbox', 'during.txt'), 'archived while slow clients hold the server');
    await waitFor('archived while attacked', async () => (await listFiles(path.join(t.dir, 'archive'))).length === 1, 20_000, 50);

    // A second wave: still answering, still archiving.
    for (let i = 0; i < SLOW_CLIENTS / 2; i += 200) {
      await Promise.all(Array.from({ length: 200 }, () => slowClient(port, open)));
    }
    expect((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(10_000) })).status).toBe(200);
    await writeFile(path.join(t.dir, 'inbox', 'after.txt'), 'and again');
    await waitFor('archived after the second wave', async () => (await listFiles(path.join(t.dir, 'archive'))).length === 2, 20_000, 50);

    expect(out).not.toMatch(/EMFILE/);
    expect(out).toMatch(/http connections at the cap/);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 90_000);
});
