/**
 * A SIGTERM that comes before the daemon has loaded its modules and read its config (a container
 * stopped just after it started) stops it in order, exit 0, as one that comes later does; a
 * second one exits at once (130). src/cli/early-signals.ts.
 *
 * To send the signal at that moment, the config names the local target's folder through a secret
 * file (`${file:...}`) that is a FIFO: reading the config blocks until the test writes to it, and
 * the test's open for writing returns once the daemon has opened it for reading.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../helpers/daemon.js';
import { tempDir } from '../helpers/fs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A daemon blocked reading its config; `release` writes the secret and lets it go on. */
async function blockedDaemon(args: string[]): Promise<{ d: Daemon; release(): Promise<void> }> {
  const t = await tempDir();
  await mkdir(path.join(t.dir, 'inbox'));
  const fifo = path.join(t.dir, 'archive-path');
  expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
  const cfg = path.join(t.dir, 'stagecoach.yaml');
  await writeFile(
    cfg,
    `stateDir: ./state
log: { level: info, format: json }
http: { listen: null }
roots:
  - path: ./inbox
targets:
  - type: local
    path: \${file:./archive-path}
`,
  );
  const d = startDaemon([...args, '--config', cfg], { cwd: t.dir });
  cleanups.push(async () => {
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    await d.exited;
    await t.cleanup();
  });
  // Returns once the daemon has opened the FIFO to read its config.
  const writer = await open(fifo, 'w');
  return {
    d,
    async release() {
      await writer.write('./archive\n');
      await writer.close();
    },
  };
}

describe('a signal before the daemon listens for it', () => {
  // As after a later signal: `run` stops (0); a backfill stopped before its end says so (1).
  for (const [args, code, last] of [
    [['run'], 0, 'stopped'],
    [['backfill', '--once'], 1, 'backfill done'],
  ] as const) {
    it(`${args[0]}: a SIGTERM while the config is read stops the daemon in order once started (exit ${code})`, async () => {
      const { d, release } = await blockedDaemon([...args]);
      d.child.kill('SIGTERM');
      // Time for a signal to end the process, if it were to.
      await new Promise((r) => setTimeout(r, 200));
      expect(d.child.signalCode).toBeNull();
      await release();
      const exit = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('still running'), 20_000))]);
      expect(exit, d.output()).toEqual({ code, signal: null });
      expect(d.output()).toContain('shutting down');
      expect(d.output()).toContain(`"msg":"${last}"`);
    });
  }

  it('a second signal before it listens exits (130) without starting', async () => {
    const { d, release } = await blockedDaemon(['run']);
    d.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    d.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 100));
    expect(d.child.signalCode).toBeNull();
    // Blocked in the config's read, it takes the signals once the read returns.
    await release();
    const exit = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
    expect(exit, d.output()).toEqual({ code: 130, signal: null });
    expect(d.output()).not.toContain('stagecoach running');
  });
});
