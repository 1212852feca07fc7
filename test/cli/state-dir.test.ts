/**
 * A state folder every user may write to (the journal, the cloud tokens) is refused at start with
 * the chmod that fixes it, before the journal is opened.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/daemon.js';
import { tempDir } from '../helpers/fs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function workspace(mode: number) {
  const t = await tempDir();
  cleanups.push(t.cleanup);
  const state = path.join(t.dir, 'state dir');
  mkdirSync(path.join(t.dir, 'inbox'));
  mkdirSync(state);
  chmodSync(state, mode);
  const cfg = path.join(t.dir, 'c.yaml');
  writeFileSync(cfg, 'stateDir: "./state dir"\nhttp: { listen: null }\nroots: [{ path: ./inbox }]\ntargets: [{ type: local, path: ./archive }]\n');
  return { dir: t.dir, state, cfg };
}

describe('a world-writable stateDir', () => {
  it.each([0o777, 0o1777, 0o707])('mode %s (decimal) is refused by run, backfill and status, with the fix, and no journal is opened', async (mode) => {
    const w = await workspace(mode);
    for (const args of [['run'], ['backfill', '--once'], ['status']]) {
      const r = runCli([...args, '--config', w.cfg], { cwd: w.dir, timeoutMs: 20_000 });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(`the state folder ${w.state} is writable by every user (mode ${mode.toString(8).padStart(4, '0')})`);
      expect(r.stderr).toContain(`fix it with: chmod o-w "${w.state}"`);
    }
    expect(existsSync(path.join(w.state, 'stagecoach.db'))).toBe(false);
  });

  it('once fixed as the message says, the same config runs', async () => {
    const w = await workspace(0o777);
    chmodSync(w.state, 0o777 & ~0o002);
    const r = runCli(['backfill', '--once', '--config', w.cfg], { cwd: w.dir, timeoutMs: 20_000 });
    expect(r.stderr).not.toContain('writable by every user');
    expect(r.code).toBe(0);
    expect(existsSync(path.join(w.state, 'stagecoach.db'))).toBe(true);
  });
});
