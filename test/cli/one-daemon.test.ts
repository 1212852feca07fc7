/**
 * Issue 13, item 4: one daemon per journal. A second `run` or `backfill --once` on the same
 * stateDir exits 2 at once with one line naming the running process and the journal; the first
 * goes on unharmed; `status` still reads; a SIGKILLed daemon leaves no stale lock.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Daemon, runCli, startDaemon } from '../helpers/daemon.js';
import { listFiles, tempDir, waitFor } from '../helpers/fs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function workspace() {
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
stableMs: 200
log: { level: info, format: json }
http: { listen: null }
roots:
  - path: ./inbox
targets:
  - type: local
    path: ./archive
`,
  );
  return {
    dir: t.dir,
    inbox: path.join(t.dir, 'inbox'),
    archive: path.join(t.dir, 'archive'),
    cfg,
    start(args: string[]) {
      const d = startDaemon([...args, '--config', cfg], { cwd: t.dir });
      daemons.push(d);
      return d;
    },
  };
}

describe('one daemon per journal', () => {
  it('a second run and a backfill exit 2 at once naming the running pid and the journal; the first is unharmed; status reads', async () => {
    const w = await workspace();
    const first = w.start(['run']);
    await waitFor('first daemon running', () => first.output().includes('stagecoach running'), 20_000);

    const journal = path.join(w.dir, 'state', 'stagecoach.db');
    for (const args of [['run'], ['backfill', '--once']]) {
      const started = Date.now();
      const second = runCli([...args, '--config', w.cfg], { cwd: w.dir, timeoutMs: 20_000 });
      expect(second.code).toBe(2);
      const lines = second.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`pid ${first.child.pid}`);
      expect(lines[0]).toContain(journal);
      // At once: no waiting on the lock (the CLI's own start-up is most of this).
      expect(Date.now() - started).toBeLessThan(15_000);
    }

    const status = runCli(['status', '--json', '--config', w.cfg], { cwd: w.dir });
    expect(status.code).toBe(0);

    // The first still archives.
    await writeFile(path.join(w.inbox, 'after.txt'), 'still working');
    await waitFor('first daemon archived after.txt', async () => (await listFiles(w.archive)).includes('inbox/after.txt'), 20_000);
    expect(first.child.exitCode).toBeNull();
  });

  it('a daemon killed with SIGKILL leaves no stale lock: the next run starts', async () => {
    const w = await workspace();
    const first = w.start(['run']);
    await waitFor('first daemon running', () => first.output().includes('stagecoach running'), 20_000);
    first.child.kill('SIGKILL');
    await first.exited;
    const next = w.start(['run']);
    await waitFor('next daemon running', () => next.output().includes('stagecoach running'), 20_000);
    next.child.kill('SIGTERM');
    expect((await next.exited).code).toBe(0);
  });
});
