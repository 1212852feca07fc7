import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startDaemon, type Daemon } from '../helpers/daemon.js';
import { listFiles, tempDir, waitFor } from '../helpers/fs.js';

// Issue 14.6: a config edit makes the running daemon try a parked target at once, with the
// target's new options, without a restart; an invalid edit changes nothing.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const configText = (archive: string, stableMs: string) => `stateDir: ./state
stableMs: ${stableMs}
log: { level: info, format: json }
http: { listen: "127.0.0.1:0" }
supervisor: { coolDownMs: 600000 }
roots: [{ path: ./inbox }]
targets: [{ id: archive, type: local, path: ${archive} }]
`;

describe('config edits', () => {
  it('a parked target fixed in the config file archives at once, without a restart; an invalid edit is logged and changes nothing', async () => {
    const t = await tempDir();
    await mkdir(path.join(t.dir, 'inbox'));
    // The archive's parent is a file: every upload fails, and the target parks (for 10 minutes).
    await writeFile(path.join(t.dir, 'not-a-folder'), 'x');
    const cfg = path.join(t.dir, 'c.yaml');
    await writeFile(cfg, configText('./not-a-folder/archive', '100'));
    const d: Daemon = startDaemon(['run', '--config', cfg], { cwd: t.dir });
    cleanups.push(async () => {
      if (d.child.exitCode === null) d.child.kill('SIGKILL');
      await d.exited;
      await t.cleanup();
    });
    const state = () => (JSON.parse(runCli(['status', '--json', '--config', cfg], { cwd: t.dir }).stdout) as { targets: Array<{ state: string }> }).targets[0]!.state;
    await waitFor('the daemon running', () => d.output().includes('stagecoach running'), 20_000, 20);
    await writeFile(path.join(t.dir, 'inbox', 'a.txt'), 'a');
    await waitFor('parked', () => d.output().includes('target parked'), 20_000, 20);
    expect(state()).toBe('parked');

    // An invalid edit (written in place): one warning with the config error's line; still parked.
    await writeFile(cfg, configText('./archive', 'four'));
    await waitFor('the invalid edit logged', () => d.output().includes('the edited config is not valid, nothing changed'), 10_000, 50);
    const warning = d.output().split('\n').find((l) => l.includes('the edited config is not valid'))!;
    expect(JSON.parse(warning)).toMatchObject({ level: 40, msg: expect.stringMatching(/c\.yaml:2: stableMs: /) });
    // (`status` reads the same file: it refuses it now.)
    expect(d.child.exitCode).toBeNull();
    expect(d.output()).not.toContain('trying it now');
    expect(await listFiles(path.join(t.dir, 'archive'))).toEqual([]);

    // The fix, saved the way many editors do: a new file renamed over the old one. The target's
    // cool-down has ten minutes to go: it archives within seconds, from the config edit alone.
    const tmp = path.join(t.dir, '.c.yaml.swp');
    await writeFile(tmp, configText('./archive', '200'));
    await rename(tmp, cfg);
    await waitFor('a.txt archived', async () => (await listFiles(path.join(t.dir, 'archive'))).some((f) => f.endsWith('a.txt')), 10_000, 50);
    expect(d.output()).toContain('the parked target’s options changed in the config: trying it now');
    // stableMs changed too: said once, as needing a restart.
    const restart = d.output().split('\n').filter((l) => l.includes('these changes need a restart'));
    expect(restart).toHaveLength(1);
    expect(JSON.parse(restart[0]!)).toMatchObject({ level: 30, keys: ['stableMs'] });
    await waitFor('up', () => state() === 'up', 10_000, 100);
    d.child.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
  }, 60_000);

  it('a target that is working keeps its options until a restart, and says so once per edit', async () => {
    const t = await tempDir();
    await mkdir(path.join(t.dir, 'inbox'));
    const cfg = path.join(t.dir, 'c.yaml');
    await writeFile(cfg, configText('./first', '100'));
    const d: Daemon = startDaemon(['run', '--config', cfg], { cwd: t.dir });
    cleanups.push(async () => {
      if (d.child.exitCode === null) d.child.kill('SIGKILL');
      await d.exited;
      await t.cleanup();
    });
    await waitFor('the daemon running', () => d.output().includes('stagecoach running'), 20_000, 20);
    await writeFile(path.join(t.dir, 'inbox', 'a.txt'), 'a');
    await waitFor('a.txt archived', async () => (await listFiles(path.join(t.dir, 'first'))).some((f) => f.endsWith('a.txt')), 10_000, 50);
    await writeFile(cfg, configText('./second', '100'));
    await waitFor('the edit seen', () => d.output().includes('these changes need a restart'), 10_000, 50);
    const restart = d.output().split('\n').filter((l) => l.includes('these changes need a restart'));
    expect(restart).toHaveLength(1);
    expect(JSON.parse(restart[0]!)).toMatchObject({ level: 30, keys: ['targets.archive (not parked)'] });
    expect(d.output()).not.toContain('target made again');
    // Still archiving where it was started to.
    await writeFile(path.join(t.dir, 'inbox', 'b.txt'), 'b');
    await waitFor('b.txt archived', async () => (await listFiles(path.join(t.dir, 'first'))).some((f) => f.endsWith('b.txt')), 10_000, 50);
    expect(await listFiles(path.join(t.dir, 'second'))).toEqual([]);
    d.child.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
  }, 60_000);
});
