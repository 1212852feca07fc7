import { rename, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { bytes, tempDir, waitFor } from '../helpers/fs.js';
import { CLOUDS, closeClouds, cloudsAndConfig, verifyClouds } from './clouds.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Chunk uploads of each protocol, as the emulator logged them. */
const CHUNK = {
  gdrive: (url: string, method: string) => method === 'PUT' && url.includes('upload_id='),
  dropbox: (url: string) => /\/upload_session\/(append_v2|finish)/.test(url),
  box: (url: string, method: string) => method === 'PUT' && url.includes('/upload_sessions/'),
  onedrive: (url: string, method: string) => method === 'PUT' && !url.includes('/v1.0/'),
} as const;

describe('a 50 MB upload cut by killing the daemon', () => {
  it('resumes after restart from the saved session on every cloud: earlier chunks are not sent again', async () => {
    const t = await tempDir();
    const { clouds, yaml, inbox } = await cloudsAndConfig(t.dir);
    const daemons: Daemon[] = [];
    cleanups.push(async () => {
      for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
      await Promise.all(daemons.map((d) => d.exited));
      await closeClouds(clouds);
      await t.cleanup();
    });
    // Slow enough that every upload is half way when the daemon dies.
    // Per-request latency, tuned to each protocol's request count (metadata calls before the
    // first chunk, chunks of 8 MiB or fragments of 3.2 MB) so all four are part way at once.
    const latency = { gdrive: 375, dropbox: 750, box: 600, onedrive: 225 } as const;
    for (const c of CLOUDS) clouds[c].server.setFaults({ latencyMs: latency[c] });
    const cfg = path.join(t.dir, 'c.yaml');
    await writeFile(cfg, yaml);
    const size = 50 * 1024 * 1024;
    const staging = path.join(t.dir, 'big.bin');
    await writeFile(staging, bytes(size, 42));
    const old = new Date(Date.now() - 3_600_000);
    await utimes(staging, old, old);
    await rename(staging, path.join(inbox, 'big.bin'));

    const chunks = (c: (typeof CLOUDS)[number]) => clouds[c].server.requests().filter((r) => CHUNK[c](r.url, r.method));
    const first = startDaemon(['run', '--config', cfg], { cwd: t.dir });
    daemons.push(first);
    // Chunks each cloud has taken, and whether it has the whole file yet.
    const accepted = (c: (typeof CLOUDS)[number]) => chunks(c).filter((r) => r.status >= 200 && r.status < 400).length;
    const finished = () =>
      clouds.gdrive.server.requests().some((r) => CHUNK.gdrive(r.url, r.method) && (r.status === 200 || r.status === 201)) ||
      clouds.dropbox.server.requests().some((r) => r.url.includes('/upload_session/finish')) ||
      clouds.box.server.requests().some((r) => r.method === 'POST' && /\/upload_sessions\/[^/]+\/commit/.test(r.url)) ||
      clouds.onedrive.server.requests().some((r) => CHUNK.onedrive(r.url, r.method) && (r.status === 200 || r.status === 201));
    await waitFor('every cloud part way', () => CLOUDS.every((c) => accepted(c) >= (c === 'onedrive' ? 3 : 1)), 60_000, 5);
    expect(finished()).toBe(false); // the kill lands mid-upload everywhere
    first.child.kill('SIGKILL');
    await first.exited;

    const seqAtKill = Object.fromEntries(CLOUDS.map((c) => [c, Math.max(...clouds[c].server.requests().map((r) => r.seq))]));
    const keptAtKill = Object.fromEntries(
      CLOUDS.map((c) => [c, chunks(c).filter((r) => r.status >= 200 && r.status < 400).reduce((a, r) => a + r.bodyBytes, 0)]),
    );
    for (const c of CLOUDS) clouds[c].server.setFaults({ latencyMs: 0 });

    const second = startDaemon(['run', '--config', cfg], { cwd: t.dir });
    daemons.push(second);
    const db = () => {
      const d = new Database(path.join(t.dir, 'state', 'stagecoach.db'), { readonly: true });
      try {
        return d.prepare("SELECT target, status FROM deliveries").all() as Array<{ target: string; status: string }>;
      } finally {
        d.close();
      }
    };
    await waitFor('all done after restart', () => db().every((r) => r.status === 'done') && db().length === 5, 60_000, 100);
    second.child.kill('SIGTERM');
    await second.exited;

    expect(await verifyClouds(clouds, inbox, ['big.bin'])).toEqual([]);
    for (const c of CLOUDS) {
      const after = chunks(c).filter((r) => r.seq > seqAtKill[c]!);
      expect(after.length, `${c} sent chunks after the restart`).toBeGreaterThan(0);
      // Nothing from the start of the file again: the upload went on from where it was.
      expect(after.filter((r) => r.contentRange?.startsWith('bytes 0-')), `${c} re-sent the first chunk`).toEqual([]);
      const sentAfter = after.reduce((a, r) => a + r.bodyBytes, 0);
      // Exactly what the cloud did not have yet: nothing it had acknowledged goes again.
      expect(keptAtKill[c], `${c} had chunks before the kill`).toBeGreaterThan(0);
      expect(sentAfter, `${c} re-sent acknowledged bytes`).toBeLessThanOrEqual(size - keptAtKill[c]!);
    }
    expect(clouds.dropbox.server.requests().filter((r) => r.url.includes('/upload_session/start'))).toHaveLength(1);
  }, 120_000);
});
