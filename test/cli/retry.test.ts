import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startDaemon, type Daemon } from '../helpers/daemon.js';
import { tempDir, waitFor } from '../helpers/fs.js';

// Issue 14.6: `stagecoach retry <target>` makes a running daemon try a parked target at once.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('stagecoach retry', () => {
  it('tries a parked target of the running daemon at once; an unknown target is refused with exit 2', async () => {
    const t = await tempDir();
    await mkdir(path.join(t.dir, 'inbox'));
    await writeFile(path.join(t.dir, 'not-a-folder'), 'x');
    const cfg = path.join(t.dir, 'c.yaml');
    await writeFile(
      cfg,
      `stateDir: ./state
stableMs: 100
log: { level: info, format: json }
http: { listen: null }
supervisor: { coolDownMs: 600000 }
roots: [{ path: ./inbox }]
targets: [{ id: broken, type: local, path: ./not-a-folder/archive }]
`,
    );
    const d: Daemon = startDaemon(['run', '--config', cfg], { cwd: t.dir });
    cleanups.push(async () => {
      if (d.child.exitCode === null) d.child.kill('SIGKILL');
      await d.exited;
      await t.cleanup();
    });
    await writeFile(path.join(t.dir, 'inbox', 'a.txt'), 'a');
    await waitFor('parked', () => d.output().includes('target parked'), 20_000, 20);
    const firstRetryAt = (JSON.parse(runCli(['status', '--json', '--config', cfg], { cwd: t.dir }).stdout) as { targets: Array<{ retryAt: string | null }> }).targets[0]!.retryAt;
    expect(runCli(['retry', 'nope', '--config', cfg], { cwd: t.dir }).code).toBe(2);
    const r = runCli(['retry', 'broken', '--config', cfg], { cwd: t.dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('asked the daemon to try broken now');
    // Parked for 10 minutes, tried within seconds.
    await waitFor('tried now', () => d.output().includes('trying the parked target now, as asked'), 10_000, 50);
    // It parks again for the same reason (a new retryAt, later than the first): no second warning.
    const retryAt = () => (JSON.parse(runCli(['status', '--json', '--config', cfg], { cwd: t.dir }).stdout) as { targets: Array<{ retryAt: string | null }> }).targets[0]!.retryAt;
    const first = firstRetryAt ?? '';
    await waitFor('parked again', () => {
      const again = retryAt();
      return again !== null && again > first;
    }, 10_000, 100);
    d.child.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
    expect(d.output().split('\n').filter((l) => l.includes('"msg":"target parked')).length).toBe(1);
  }, 60_000);
});
