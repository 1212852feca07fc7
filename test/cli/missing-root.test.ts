import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { type Daemon, runCli, startDaemon } from '../helpers/daemon.js';
import { listFiles, tempDir, waitFor } from '../helpers/fs.js';

// Issue 18 item 5 and issue 14 item 2: a root that is not there (a typo, an unmounted share) is
// never created; the daemon waits for it, says so in status and /healthz, archives it once it
// appears, and a root that vanishes while running is the same state.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function workspace(opts: { http: boolean; createRoot?: boolean }) {
  const t = await tempDir();
  const daemons: Daemon[] = [];
  cleanups.push(async () => {
    for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    await Promise.all(daemons.map((d) => d.exited));
    await t.cleanup();
  });
  const cfg = path.join(t.dir, 'stagecoach.yaml');
  await writeFile(
    cfg,
    `stateDir: ./state
stableMs: 100
shutdownMs: 3000
log: { level: info, format: json }
${opts.http ? 'http: { listen: "127.0.0.1:0" }' : 'http: { listen: null }'}
watcher: { rescanMs: 0 }
roots:
  - path: ./photos
    createRoot: ${opts.createRoot ?? false}
targets:
  - type: local
    path: ./archive
`,
  );
  const photos = path.join(t.dir, 'photos');
  return {
    dir: t.dir,
    cfg,
    photos,
    archive: path.join(t.dir, 'archive'),
    start() {
      const d = startDaemon(['run', '--config', cfg], { cwd: t.dir });
      daemons.push(d);
      return d;
    },
    deliveries(): Array<{ rel_path: string; status: string; generation: number }> {
      const db = new Database(path.join(t.dir, 'state', 'stagecoach.db'), { readonly: true, fileMustExist: true });
      try {
        db.pragma('busy_timeout = 2000');
        return db
          .prepare('SELECT f.rel_path, d.status, d.generation FROM deliveries d JOIN files f ON f.id = d.file_id ORDER BY f.rel_path')
          .all() as Array<{ rel_path: string; status: string; generation: number }>;
      } finally {
        db.close();
      }
    },
  };
}

describe('a watched root that is not there', () => {
  it('is not created: status and /healthz say why, and archiving starts within seconds of it appearing; vanishing and coming back is the same state', async () => {
    const w = await workspace({ http: true });
    const d = w.start();
    const url = await waitFor('the server url', () => /"url":"(http:\/\/127\.0\.0\.1:\d+)\/?"/.exec(d.output())?.[1], 20_000, 20);
    await waitFor('the warning', () => d.output().includes(`waiting for ${w.photos} to appear`), 20_000, 20);
    expect(existsSync(w.photos)).toBe(false);

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(503);
    const body = (await health.json()) as { ok: boolean; reasons: Array<{ check: string; root?: string; reason: string }> };
    expect(body.reasons).toContainEqual({ check: 'root', root: 'photos', reason: `root photos: waiting for ${w.photos} to appear` });
    const api = (await (await fetch(`${url}/api/status`)).json()) as { roots: Array<{ name: string; present: boolean; reason?: string }> };
    expect(api.roots).toEqual([expect.objectContaining({ name: 'photos', present: false, reason: `waiting for ${w.photos} to appear` })]);
    const st = runCli(['status', '--config', w.cfg], { cwd: w.dir });
    expect(st.stdout).toContain(`root photos: waiting for ${w.photos} to appear`);
    expect(existsSync(w.photos)).toBe(false);

    // It appears (the share is mounted): archived within seconds, health back to ok.
    await mkdir(w.photos);
    await writeFile(path.join(w.photos, 'a.jpg'), 'first');
    await waitFor('a.jpg archived', async () => (await listFiles(w.archive)).some((f) => f.endsWith('a.jpg')), 10_000, 50);
    await waitFor('healthy', async () => (await fetch(`${url}/healthz`)).status === 200, 5_000, 50);

    // It vanishes (unmounted): degraded, still running; back with its files: nothing re-archived.
    const away = `${w.photos}.unmounted`;
    await rename(w.photos, away);
    await waitFor('degraded', async () => (await fetch(`${url}/healthz`)).status === 503, 5_000, 50);
    expect(d.child.exitCode).toBeNull();
    expect(existsSync(w.photos)).toBe(false);
    await rename(away, w.photos);
    await writeFile(path.join(w.photos, 'b.jpg'), 'second');
    await waitFor('b.jpg archived', async () => (await listFiles(w.archive)).some((f) => f.endsWith('b.jpg')), 10_000, 50);
    await waitFor('healthy again', async () => (await fetch(`${url}/healthz`)).status === 200, 5_000, 50);
    expect(w.deliveries()).toEqual([
      { rel_path: 'a.jpg', status: 'done', generation: 1 },
      { rel_path: 'b.jpg', status: 'done', generation: 1 },
    ]);
    expect(d.output()).not.toMatch(/created it/);
    d.child.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
  }, 60_000);

  it('removed while the daemon runs without a status server: it does not exit, and archives the re-created root', async () => {
    const w = await workspace({ http: false });
    await mkdir(w.photos);
    const d = w.start();
    await waitFor('watching', () => d.output().includes('"msg":"watching"'), 20_000, 20);
    await rm(w.photos, { recursive: true });
    await waitFor('the warning', () => d.output().includes('has disappeared'), 10_000, 20);
    // It used to end here with exit 0 within 3 s, so that Restart=on-failure never restarted it.
    await new Promise((r) => setTimeout(r, 4_000));
    expect(d.child.exitCode).toBeNull();
    await mkdir(w.photos);
    await writeFile(path.join(w.photos, 'c.jpg'), 'third');
    await waitFor('c.jpg archived', async () => (await listFiles(w.archive)).some((f) => f.endsWith('c.jpg')), 10_000, 50);
    d.child.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
  }, 60_000);

  it('check names each missing root and exits 3, creating nothing; with createRoot: true it is made as before', async () => {
    const w = await workspace({ http: false });
    const r = runCli(['check', '--config', w.cfg], { cwd: w.dir });
    expect(r.code).toBe(3);
    expect(r.stdout).toContain(`root photos: MISSING — ${w.photos} is not there`);
    expect(existsSync(w.photos)).toBe(false);

    // backfill --once cannot wait: it says so and exits 1, still creating nothing.
    const once = runCli(['backfill', '--once', '--config', w.cfg], { cwd: w.dir });
    expect(once.code).toBe(1);
    expect(once.stdout + once.stderr).toContain('the watched folder is not there');
    expect(existsSync(w.photos)).toBe(false);

    const made = await workspace({ http: false, createRoot: true });
    expect(runCli(['check', '--config', made.cfg], { cwd: made.dir }).code).toBe(0);
    const d = made.start();
    await waitFor('watching', () => d.output().includes('"msg":"watching"'), 20_000, 20);
    expect(existsSync(made.photos)).toBe(true);
    d.child.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
  }, 60_000);
});
