/**
 * Issue 19, item 1: the flush barrier (src/targets/kit/fs-barrier.ts). The native syncfs is the
 * real one (native/fs-native.c, built by `npm ci`); the barrier's sharing and error rules are
 * driven with a syncfs whose answers the test gives (`scripted`).
 *
 * syncfs(2) (man7.org/linux/man-pages/man2/syncfs.2.html): "syncfs() is like sync(), but
 * synchronizes just the filesystem containing file referred to by the open file descriptor fd",
 * and since Linux 5.8 it "reports writeback errors for the filesystem" that occurred since the
 * descriptor's last report. EBADF: "fd is not a valid file descriptor".
 */
import { closeSync, openSync, readdirSync, statSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import { afterEach, describe, expect, test } from 'vitest';
import {
  fsBarrierModule,
  kernelReportsWritebackErrors,
  loadSyncfs,
  makeBarrier,
  openBarrierFd,
  type SyncfsCall,
} from '../../../src/targets/kit/fs-barrier.js';
import { tempDir } from '../../helpers/fs.js';

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

const errName = (errno: number): string => getSystemErrorName(-errno);

/** A syncfs whose calls wait for the test: `calls[k](errno)` answers the k-th. */
function scripted(): { syncfs: SyncfsCall; calls: Array<(errno: number) => void> } {
  const calls: Array<(errno: number) => void> = [];
  return { syncfs: (_fd, done) => calls.push(done), calls };
}

/** A few turns of the event loop: what was going to happen has happened. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('the native syncfs', () => {
  test.each([
    ['5.7.19', false],
    ['5.8.0', true],
    ['5.15.0-91-generic', true],
    ['6.18.0', true],
    ['4.19.0-26-amd64', false],
    ['not a release', false],
  ])('Linux %s reports writeback errors through syncfs: %s', (release, expected) => {
    expect(kernelReportsWritebackErrors(release)).toBe(expected);
  });

  test('is built here, and flushes through a descriptor of the archive root; a closed one is EBADF', async () => {
    // This machine is Linux >= 5.8 with a C compiler: `npm ci` built native/build/fs-native.node.
    expect(fsBarrierModule()).toMatch(/native[/\\]build[/\\]fs-native\.node$/);
    const syncfs = loadSyncfs();
    expect(syncfs).not.toBeNull();
    const t = await tempDir();
    cleanup = t.cleanup;
    const fd = openSync(t.dir, 'r');
    const ok = await new Promise<number>((resolve) => syncfs!(fd, resolve));
    expect(ok).toBe(0);
    closeSync(fd);
    const bad = await new Promise<number>((resolve) => syncfs!(fd, resolve));
    expect(errName(bad)).toBe('EBADF');
    expect(() => (syncfs as unknown as (fd: string) => void)('x')).toThrow(TypeError);
  });

  test('STAGECOACH_SYNCFS=off turns it off', () => {
    const before = process.env.STAGECOACH_SYNCFS;
    process.env.STAGECOACH_SYNCFS = 'off';
    try {
      expect(fsBarrierModule()).toBeNull();
      expect(loadSyncfs()).toBeNull();
    } finally {
      if (before === undefined) delete process.env.STAGECOACH_SYNCFS;
      else process.env.STAGECOACH_SYNCFS = before;
    }
    expect(fsBarrierModule()).not.toBeNull();
  });
});

describe('openBarrierFd', () => {
  test('holds the root open, with its device; a file system not listed leaves nothing open; a missing root throws', async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    const open = (): number => readdirSync('/proc/self/fd').length;
    const before = open();
    const at = openBarrierFd(t.dir);
    expect(at).not.toBeNull();
    expect(at!.dev).toBe(statSync(t.dir).dev);
    expect(open()).toBe(before + 1);
    closeSync(at!.fd);
    expect(openBarrierFd(t.dir, [])).toBeNull();
    expect(open()).toBe(before);
    expect(() => openBarrierFd(`${t.dir}/not-made-yet`)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});

describe('makeBarrier', () => {
  const AT = { fd: 7, dev: 42 };

  test('a flush asked for while one runs is the next to start, shared by every caller until it starts', async () => {
    const { syncfs, calls } = scripted();
    const barrier = makeBarrier(syncfs, errName, AT, '/archive');
    expect(barrier.dev).toBe(42);
    let firstDone = false;
    const first = barrier.after().then(() => (firstDone = true));
    expect(calls).toHaveLength(1);
    // Asked while the first runs: it may have begun before these callers' writes, so they wait for the next.
    let secondDone = 0;
    const second = barrier.after().then(() => secondDone++);
    const third = barrier.after().then(() => secondDone++);
    await settle();
    expect(calls).toHaveLength(1);
    calls[0]!(0);
    await first;
    expect(firstDone).toBe(true);
    await settle();
    expect(calls).toHaveLength(2);
    expect(secondDone).toBe(0);
    calls[1]!(0);
    await Promise.all([second, third]);
    expect(secondDone).toBe(2);
    // Nothing runs: the next caller starts one at once.
    void barrier.after();
    expect(calls).toHaveLength(3);
    calls[2]!(0);
  });

  test('an error fails every batch that began writing before the flush that reported it completed, and no later one', async () => {
    const { syncfs, calls } = scripted();
    const barrier = makeBarrier(syncfs, errName, AT, '/archive');
    // Batch A began writing; a flush someone else asked for is running.
    const markA = barrier.mark();
    const running = barrier.after();
    // A's own flush, begun after its writes, is the next one.
    const own = barrier.after();
    // The running flush reports EIO: the failed page may be A's, written back early by the kernel.
    calls[0]!(5);
    await running;
    const markB = barrier.mark();
    await settle();
    calls[1]!(0);
    await own;
    expect(barrier.errorSince(markA)).toMatchObject({ code: 'EIO', errno: -5, syscall: 'syncfs', path: '/archive' });
    // B began writing after that report: its pages' errors would be reported later.
    expect(barrier.errorSince(markB)).toBeNull();
  });

  test('a syncfs that throws counts as a failed flush, and the barrier goes on', async () => {
    let n = 0;
    const syncfs: SyncfsCall = (_fd, done) => {
      if (n++ === 0) throw new TypeError('no such call');
      done(0);
    };
    const barrier = makeBarrier(syncfs, errName, AT, '/archive');
    const mark = barrier.mark();
    await barrier.after();
    expect(barrier.errorSince(mark)).toBeInstanceOf(TypeError);
    const later = barrier.mark();
    await barrier.after();
    expect(barrier.errorSince(later)).toBeNull();
  });
});
