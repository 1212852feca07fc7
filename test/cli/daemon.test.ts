import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { bytes, listFiles, sha256File, tempDir, timeFor, waitFor, waitForWork } from '../helpers/fs.js';
import { type Daemon, runCli, startDaemon } from '../helpers/daemon.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function workspace(extra = '', opts: { stableMs?: number; maxDemand?: number; logLevel?: string } = {}) {
  const t = await tempDir();
  const daemons: Daemon[] = [];
  cleanups.push(async () => {
    for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    await Promise.all(daemons.map((d) => d.exited));
    await t.cleanup();
  });
  await mkdir(path.join(t.dir, 'inbox'), { recursive: true });
  const cfg = path.join(t.dir, 'stagecoach.yaml');
  await writeFile(
    cfg,
    `stateDir: ./state
stableMs: ${opts.stableMs ?? 200}
shutdownMs: 5000
log: { level: ${opts.logLevel ?? 'warn'}, format: json }
http: { listen: "127.0.0.1:0" }
retry: { retries: 1, minDelayMs: 10, maxDelayMs: 20 }
roots:
  - path: ./inbox
targets:
  - type: local
    path: ./archive
    maxDemand: ${opts.maxDemand ?? 4}
${extra}`,
  );
  return {
    dir: t.dir,
    inbox: path.join(t.dir, 'inbox'),
    archive: path.join(t.dir, 'archive'),
    cfg,
    start(args = ['run'], o: { permissionsApply?: boolean } = {}) {
      const d = startDaemon([...args, '--config', cfg], { cwd: t.dir, ...o });
      daemons.push(d);
      return d;
    },
    /** Deliveries by status, read straight from the journal (as another process would). */
    counts(): Record<string, number> {
      const file = path.join(t.dir, 'state', 'stagecoach.db');
      try {
        const db = new Database(file, { readonly: true, fileMustExist: true });
        try {
          db.pragma('busy_timeout = 2000');
          const rows = db.prepare('SELECT status, count(*) AS n FROM deliveries GROUP BY status').all() as Array<{ status: string; n: number }>;
          return Object.fromEntries(rows.map((r) => [r.status, r.n]));
        } finally {
          db.close();
        }
      } catch {
        return {};
      }
    },
  };
}

describe('the daemon as a process', () => {
  it('survives SIGKILL while archiving 500 files: after a restart all are archived and verified, none half-written', async () => {
    const w = await workspace('', { maxDemand: 2 });
    const names: string[] = [];
    for (let i = 0; i < 500; i++) {
      const name = `batch${i % 5}/file-${i}.bin`;
      await mkdir(path.dirname(path.join(w.inbox, name)), { recursive: true });
      await writeFile(path.join(w.inbox, name), bytes(20_000 + (i % 7) * 30_000, i + 1));
      names.push(name);
    }
    const first = w.start();
    await waitFor('some archived', () => (w.counts().done ?? 0) >= 30, 30_000, 10);
    first.child.kill('SIGKILL');
    await first.exited;
    const doneAtKill = w.counts().done ?? 0;
    expect(doneAtKill).toBeLessThan(500); // the kill really landed mid-run

    const second = w.start();
    await waitForWork('all 500 archived', timeFor(500, 100), () => {
      const c = w.counts();
      return c.done === 500 ? [] : [`${500 - (c.done ?? 0)} of 500 not done: ${JSON.stringify(c)}`];
    });
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);

    const archived = await listFiles(w.archive);
    expect(archived).toEqual(names.map((n) => `inbox/${n}`).sort());
    for (const n of names) expect(await sha256File(path.join(w.archive, 'inbox', n))).toBe(await sha256File(path.join(w.inbox, n)));
  }, timeFor(500, 150));

  it('`status` shows each target while the daemon runs, including one that is parked with its reason', async () => {
    const w = await workspace();
    await writeFile(path.join(w.dir, 'blocker'), 'a file where a folder should be');
    await writeFile(
      w.cfg,
      `${(await import('node:fs')).readFileSync(w.cfg, 'utf8')}  - id: broken
    type: local
    path: ./blocker/archive
supervisor: { coolDownMs: 600000 }
`,
    );
    for (let i = 0; i < 20; i++) await writeFile(path.join(w.inbox, `f${i}.txt`), `file ${i}`);
    const d = w.start();
    await waitFor('local done', () => runCli(['status', '--json', '--config', w.cfg], { cwd: w.dir }).stdout.includes('"done": 20'), 30_000, 100);
    const status = await waitFor(
      'broken shown parked',
      () => {
        const r = runCli(['status', '--json', '--config', w.cfg], { cwd: w.dir });
        const s = JSON.parse(r.stdout) as { targets: Array<{ target: string; state: string; done: number; pending: number; failed: number; reason: string | null }> };
        return s.targets.find((t) => t.target === 'broken')?.state === 'parked' ? s : null;
      },
      30_000,
      100,
    );
    const local = status!.targets.find((t) => t.target === 'local')!;
    const broken = status!.targets.find((t) => t.target === 'broken')!;
    expect(local).toMatchObject({ state: 'up', done: 20, pending: 0, failed: 0 });
    expect(broken.done).toBe(0);
    expect(broken.pending + broken.failed).toBe(20);
    expect(broken.reason).toBeTruthy();
    const table = runCli(['status', '--config', w.cfg], { cwd: w.dir });
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^broken\s+parked\s+/m);
    expect(table.stdout).toMatch(/broken is parked: .+/);
    d.child.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
  });

  it('backfill --once over a folder it cannot read archives the rest, says what it could not read, and exits 1', async () => {
    const w = await workspace();
    await mkdir(path.join(w.inbox, 'closed'));
    await writeFile(path.join(w.inbox, 'closed', 'inside.txt'), 'not for you');
    await chmod(path.join(w.inbox, 'closed'), 0o000);
    cleanups.push(() => chmod(path.join(w.inbox, 'closed'), 0o755));
    await writeFile(path.join(w.inbox, 'public.txt'), 'for everyone');
    // As root every folder is readable: the backfill runs without root's override of file permissions.
    const d = w.start(['backfill', '--once'], { permissionsApply: true });
    expect((await d.exited).code).toBe(1);
    expect(await listFiles(w.archive)).toEqual(['inbox/public.txt']);
    expect(d.output()).toMatch(/1 folder\(s\) or file\(s\) could not be read while scanning/);
  });

  it('an unreadable file fails its delivery with a reason and the daemon goes on', async () => {
    const w = await workspace();
    await writeFile(path.join(w.inbox, 'secret.txt'), 'not for you');
    await chmod(path.join(w.inbox, 'secret.txt'), 0o000);
    await writeFile(path.join(w.inbox, 'public.txt'), 'for everyone');
    // As root every file is readable: the daemon runs without root's override of file permissions.
    const d = w.start(['run'], { permissionsApply: true });
    await waitFor('both settled', () => (w.counts().done ?? 0) + (w.counts().failed ?? 0) === 2, 30_000, 50);
    expect(w.counts()).toMatchObject({ done: 1, failed: 1 });
    const db = new Database(path.join(w.dir, 'state', 'stagecoach.db'), { readonly: true });
    const row = db.prepare("SELECT last_error FROM deliveries WHERE status = 'failed'").get() as { last_error: string };
    db.close();
    expect(row.last_error).toMatch(/denied|EACCES|permission/i);
    expect(await listFiles(w.archive)).toEqual(['inbox/public.txt']);
    expect(d.child.exitCode).toBe(null); // still running
    d.child.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
  });
});

describe('the CLI', () => {
  it.each([
    ['an unknown key', 'stateDir: ./s\nroots: [{ path: ./inbox }]\ntargets: [{ type: local, path: ./a }]\nstabelMs: 10\n', /:4: stabelMs: unknown key/],
    ['a wrong type', 'roots: [{ path: ./inbox }]\ntargets:\n  - type: local\n    path: ./a\n    maxDemand: four\n', /:5: targets\.0\.maxDemand: .*number.*"four"/],
    ['a missing root', 'targets: [{ type: local, path: ./a }]\n', /roots: .*(required|at least one)/],
  ])('%s in the config gives one line naming the key, exit 2', async (_what, yaml, expected) => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    await writeFile(path.join(t.dir, 'bad.yaml'), yaml);
    const r = runCli(['run', '--config', 'bad.yaml'], { cwd: t.dir });
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^stagecoach: bad\.yaml/);
    expect(lines[0]).toMatch(expected);
    expect(await readdir(t.dir)).toEqual(['bad.yaml']); // nothing created
  });

  it('prints its version and help, and refuses an unknown command with exit 2', () => {
    const cwd = process.cwd();
    expect(runCli(['--version'], { cwd }).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const help = runCli(['--help'], { cwd });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/backfill --once/);
    const bad = runCli(['explode'], { cwd });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown command "explode"/);
  });

  it("keeps the uploads in flight within the open-file limit: 512 asked for under a limit of 512 open files archive every file (without it the walk's folder reads and the puts got EMFILE, and files were left unfound), and the log says how many it used", async () => {
    const w = await workspace('', { maxDemand: 512 });
    for (let i = 0; i < 3000; i++) {
      if (i % 100 === 0) await mkdir(path.join(w.inbox, `d${i / 100}`));
      await writeFile(path.join(w.inbox, `d${Math.floor(i / 100)}`, `f${i}.txt`), `file ${i}`);
    }
    const r = runCli(['backfill', '--once', '--config', w.cfg], { cwd: w.dir, timeoutMs: 120_000, fdLimit: 512 });
    expect(r.code, r.stderr).toBe(0);
    expect(w.counts()).toEqual({ done: 3000 });
    expect(await listFiles(w.archive)).toHaveLength(3000);
    expect(r.stdout + r.stderr).toMatch(/maxDemand 512 needs more open files than this process may have \(limit 512; .*\): 64 at once instead/);
  });

  it('backfill --once archives what is there and exits 0', async () => {
    const w = await workspace();
    for (let i = 0; i < 30; i++) await writeFile(path.join(w.inbox, `f${i}.txt`), `file ${i}`);
    const r = runCli(['backfill', '--once', '--config', w.cfg], { cwd: w.dir, timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(await listFiles(w.archive)).toHaveLength(30);
    expect(w.counts()).toEqual({ done: 30 });
  });
});

describe('the CLI, check and signals', () => {
  it('check reports each target and exits 3 when one cannot be used, 0 when all can', async () => {
    const w = await workspace();
    const ok = runCli(['check', '--config', w.cfg], { cwd: w.dir });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^local \(local\): ok — local folder .* is writable/m);
    await writeFile(path.join(w.dir, 'blocker'), 'x');
    await writeFile(w.cfg, `${(await import('node:fs')).readFileSync(w.cfg, 'utf8')}  - id: broken\n    type: local\n    path: ./blocker/archive\n`);
    const bad = runCli(['check', '--config', w.cfg], { cwd: w.dir });
    expect(bad.code).toBe(3);
    expect(bad.stdout).toMatch(/^local \(local\): ok/m);
    expect(bad.stdout).toMatch(/^broken \(local\): FAILED — .+/m);
  });

  it('a second signal exits at once with 130 while the first waits for uploads in flight', async () => {
    // Paced to 10 MB/s, so its upload (10 s) is surely still running when the signals come.
    const w = await workspace('    bytesPerSecond: 10 MB\n', { stableMs: 100, logLevel: 'info' });
    const big = path.join(w.inbox, 'big.bin');
    const { open } = await import('node:fs/promises');
    const fh = await open(big, 'w');
    const chunk = bytes(1 << 20, 7);
    for (let i = 0; i < 100; i++) await fh.write(chunk);
    await fh.close();
    const d = w.start();
    await waitFor('the upload in flight', () => w.counts().in_flight === 1, 20_000, 10);
    // The daemon handles signals once it says it is running (a signal before that kills it).
    await waitFor('the daemon running', () => d.output().includes('"msg":"stagecoach running"'), 20_000, 10);
    d.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 50)); // two signals sent at once would merge into one
    d.child.kill('SIGTERM');
    const r = await d.exited;
    expect([r.code, r.signal]).toEqual([130, null]);
  });
});
