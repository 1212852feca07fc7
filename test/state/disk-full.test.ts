/**
 * diskFullError: which failed writes it takes for a full state disk, and the line it words. The
 * last block fills a real tmpfs under a real journal (mount needs root or CAP_SYS_ADMIN: without
 * it those tests fail and say so).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StagecoachError } from '../../src/errors.js';
import { DISK_FULL_CODE, diskFullError } from '../../src/state/disk-full.js';
import { openSqliteStore } from '../../src/state/index.js';
import { newItem, tempDir } from './helpers.js';

const { SqliteError } = Database;

function errno(code: string, extra: Record<string, unknown> = {}): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: something`), { code, ...extra });
}

describe('diskFullError on a disk with room', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir();
  });
  afterAll(() => tmp.cleanup());

  it('SQLITE_FULL: one line naming the state folder and the journal, "no space left", what to do; the cause kept', () => {
    const cause = new SqliteError('database or disk is full', 'SQLITE_FULL');
    const e = diskFullError(cause, tmp.dir);
    expect(e).toBeInstanceOf(StagecoachError);
    expect(e!.code).toBe(DISK_FULL_CODE);
    expect(e!.cause).toBe(cause);
    expect(e!.message).not.toContain('\n');
    expect(e!.message).toMatch(/^\[stagecoach\] \[state\] no space left on the disk of the state folder /);
    expect(e!.message).toContain(`state folder ${tmp.dir} (`);
    expect(e!.message).toContain(`journal ${path.join(tmp.dir, 'stagecoach.db')} cannot be written`);
    expect(e!.message).toMatch(/Free some space there .* then start stagecoach again/);
  });

  it('a relative state folder is named absolute', () => {
    const e = diskFullError(new SqliteError('database or disk is full', 'SQLITE_FULL'), 'rel/state');
    expect(e!.message).toContain(`state folder ${path.resolve('rel/state')}`);
  });

  it('found anywhere in the cause chain (state.open-failed wrapping SQLITE_FULL)', () => {
    const inner = new SqliteError('database or disk is full', 'SQLITE_FULL');
    const outer = new StagecoachError('state.open-failed', 'cannot use x as a journal', { cause: new Error('wrap', { cause: inner }) });
    expect(diskFullError(outer, tmp.dir)?.cause).toBe(outer);
  });

  it('ENOSPC or EDQUOT on a file in the state folder is a full disk even when statfs shows room', () => {
    for (const code of ['ENOSPC', 'EDQUOT']) {
      expect(diskFullError(errno(code, { syscall: 'open', path: path.join(tmp.dir, 'stagecoach.db') }), tmp.dir)?.code, code).toBe(DISK_FULL_CODE);
    }
  });

  it('not a full state disk: inotify\'s ENOSPC (watch limit), ENOSPC elsewhere or an I/O error while the disk has room, other errors', () => {
    const not = [
      errno('ENOSPC', { syscall: 'watch', path: path.join(tmp.dir, 'x') }),
      errno('ENOSPC', { syscall: 'inotify_add_watch' }),
      errno('ENOSPC', { syscall: 'write', path: '/srv/archive/big.bin' }),
      new SqliteError('disk I/O error', 'SQLITE_IOERR_SHMSIZE'),
      new SqliteError('database is locked', 'SQLITE_BUSY'),
      new StagecoachError('state.too-new', 'newer'),
      new Error('a bug'),
      'a string',
      null,
      undefined,
      42,
    ];
    for (const e of not) expect(diskFullError(e, tmp.dir), String(e)).toBe(null);
  });

  it('a cause cycle ends; an error that already is state.disk-full comes back as is', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    a.cause = new Error('b', { cause: a });
    expect(diskFullError(a, tmp.dir)).toBe(null);
    const full = diskFullError(new SqliteError('database or disk is full', 'SQLITE_FULL'), tmp.dir)!;
    expect(diskFullError(new Error('wrap', { cause: full }), tmp.dir)).toBe(full);
  });
});

describe('diskFullError on a real full tmpfs', () => {
  let tmp: ReturnType<typeof tempDir>;
  let state: string;
  let mounted = false;
  beforeAll(() => {
    tmp = tempDir();
    state = path.join(tmp.dir, 'state');
    mkdirSync(state);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', state], { stdio: 'pipe' });
      mounted = true;
    } catch (e) {
      throw new Error(
        `these tests mount a 1 MiB tmpfs at ${state} to fill it, which takes root or CAP_SYS_ADMIN (uid ${process.getuid?.()}): ${(e as { stderr?: Buffer }).stderr?.toString().trim() ?? String(e)}`,
      );
    }
  });
  afterAll(() => {
    if (mounted) {
      try {
        execFileSync('umount', [state], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', state], { stdio: 'pipe' });
      }
    }
    tmp.cleanup();
  });

  /** Fills the tmpfs to its last byte with `name`; bounded by its 1 MiB. */
  function fill(name: string): void {
    const fd = openSync(path.join(state, name), 'w');
    try {
      for (const size of [64 * 1024, 1024, 1]) {
        for (let i = 0; i < 2048; i++) writeSync(fd, Buffer.alloc(size, 1));
      }
      throw new Error('the 1 MiB tmpfs never filled');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    } finally {
      closeSync(fd);
    }
  }

  it('a journal write on the full disk fails with SQLITE_FULL, is recognised, and the journal works again once space returns', async () => {
    const store = await openSqliteStore({ dir: state });
    try {
      await store.recordItems([newItem('a.txt')], ['local']);
      fill('filler');
      const batch = Array.from({ length: 200 }, (_, i) => newItem(`full/${i}-${'x'.repeat(200)}.txt`));
      const err = await store.recordItems(batch, ['local']).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, 'the write must fail on the full disk').not.toBe(null);
      const e = diskFullError(err, state);
      expect(e?.code, String(err)).toBe(DISK_FULL_CODE);
      expect(e!.message).toContain(`state folder ${state} (0 bytes free)`);
      // An I/O error is taken for a full disk only while the disk is full.
      expect(diskFullError(new SqliteError('disk I/O error', 'SQLITE_IOERR_SHMSIZE'), state)?.code).toBe(DISK_FULL_CODE);
      rmSync(path.join(state, 'filler'));
      expect(diskFullError(new SqliteError('disk I/O error', 'SQLITE_IOERR_SHMSIZE'), state)).toBe(null);
      await store.recordItems(batch.slice(0, 10), ['local']);
      expect((await store.counts()).find((c) => c.target === 'local')?.pending).toBe(11);
    } finally {
      await store.close().catch(() => undefined);
    }
  });

  it('opening a new journal on a full disk fails, and the error is recognised', async () => {
    fill('filler2');
    try {
      const err = await openSqliteStore({ dir: state, file: 'new.db' }).then(
        async (s) => {
          await s.close();
          return null;
        },
        (e: unknown) => e,
      );
      expect(err, 'opening must fail on the full disk').not.toBe(null);
      expect(diskFullError(err, state)?.code, String(err)).toBe(DISK_FULL_CODE);
    } finally {
      rmSync(path.join(state, 'filler2'));
    }
  });
});
