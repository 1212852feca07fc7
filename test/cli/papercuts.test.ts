import { spawn, spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, ROOT } from '../helpers/daemon.js';
import { tempDir, waitFor } from '../helpers/fs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function workspace(): Promise<{ dir: string; cfg: string }> {
  const t = await tempDir();
  cleanups.push(() => t.cleanup());
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
  return { dir: t.dir, cfg };
}

/** The ids of processes whose command line names `needle` (a path unique to this test). */
function pidsNaming(needle: string): number[] {
  const ps = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).stdout;
  return ps
    .split('\n')
    .filter((l) => l.includes(needle) && l.includes('main.js'))
    .map((l) => Number.parseInt(l.trim(), 10))
    .filter((n) => Number.isInteger(n) && n !== process.pid);
}

describe('papercuts (issue 18)', () => {
  it('`run --once` is refused with exit 2, naming backfill --once', async () => {
    const { dir, cfg } = await workspace();
    const r = spawnSync(process.execPath, [CLI, 'run', '--once', '--config', cfg], { cwd: dir, encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--once belongs to backfill/);
  });

  it('the http line says whether a token is required, never `token: "[redacted]"` when none is set', async () => {
    const { dir, cfg } = await workspace();
    const child = spawn(process.execPath, [CLI, 'run', '--config', cfg], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => child.once('exit', r));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    const line = await waitFor('http line', () => out.split('\n').find((l) => l.includes('"msg":"http server listening"')), 20_000, 20);
    expect(JSON.parse(line!)).toMatchObject({ tokenRequired: false });
    expect(line).not.toContain('[redacted]');
    child.kill('SIGTERM');
    await exited;
  });

  it('stopping `npm start` by its PID stops the daemon too (the start script execs node)', async () => {
    const { dir, cfg } = await workspace();
    const npm = spawn('npm', ['start', '--silent'], { cwd: ROOT, env: { ...process.env, STAGECOACH_CONFIG: cfg }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    npm.stdout.on('data', (d: Buffer) => (out += d.toString()));
    npm.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const npmExited = new Promise((r) => npm.once('exit', r));
    cleanups.push(async () => {
      if (npm.exitCode === null) npm.kill('SIGKILL');
      await npmExited;
      // A daemon left behind by a failing run: found by its config path, unique to this test.
      for (const pid of pidsNaming(cfg)) process.kill(pid, 'SIGKILL');
    });
    void dir;
    await waitFor('the daemon running', () => out.includes('"msg":"stagecoach running"'), 60_000, 50);
    npm.kill('SIGTERM');
    await waitFor('the daemon stopped', () => out.includes('"msg":"stopped"'), 20_000, 50);
    await npmExited;
    await waitFor('no daemon left', () => pidsNaming(cfg).length === 0, 10_000, 50);
  }, 90_000);
});
