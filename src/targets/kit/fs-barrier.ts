/**
 * A flush barrier for a whole file system: syncfs(2), from the native module (kit/fs-native.ts;
 * Node has no binding for it). The local target's small files pay one per batch, where an fsync
 * per file cost most of a backfill of many small files (measured: 10,000 files of 4 KiB written,
 * flushed and renamed in C, one fdatasync per file 2.7–5.6 s, one syncfs per 256 files 0.6 s, no
 * flush at all 0.4 s).
 *
 * Why syncfs keeps the promise an fsync per file made: on Linux >= 5.8 a writeback error of any
 * file is recorded on its file system as well, and syncfs reports every such error since the last
 * syncfs through the same open descriptor. So the barrier holds one descriptor of the archive's
 * root open for its life, runs one syncfs at a time on it, and a batch fails if any flush that
 * completed after it began writing reported an error (the error may be of its own pages even when
 * the flush that reported it is not the batch's own: see `errorSince`).
 *
 * Used only where it is known to be a durability barrier: Linux >= 5.8, and a file system whose
 * sync_fs flushes the journal and the disk's cache (BARRIER_FS_TYPES). Elsewhere, or without the
 * native module (no C compiler at install), the local target fsyncs each file as before.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, statfsSync } from 'node:fs';
import { release } from 'node:os';
import { loadNativeFs, nativeFsModule, type SyncfsCall } from './fs-native.js';

export type { SyncfsCall } from './fs-native.js';

/**
 * File systems (statfs f_type, Linux's include/uapi/linux/magic.h) whose sync_fs commits the
 * journal (or log, or transaction) and flushes the device's write cache, so that a syncfs that
 * returns 0 leaves every file written before it durable, with its folder entries; and tmpfs,
 * which has nothing to flush. Others (network and FUSE file systems, overlayfs, ZFS, exFAT, …)
 * keep an fsync per file.
 */
export const BARRIER_FS_TYPES: readonly number[] = [
  0xef53, // ext2/3/4
  0x58465342, // XFS
  0x9123683e, // Btrfs
  0xf2f52010, // F2FS
  0x01021994, // tmpfs
];

/** Linux >= 5.8: syncfs reports the file system's writeback errors (errseq on the superblock). */
export function kernelReportsWritebackErrors(osRelease: string = release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(osRelease);
  if (!m) return false;
  const major = Number(m[1]);
  return major > 5 || (major === 5 && Number(m[2]) >= 8);
}

/**
 * The native module's path (kit/fs-native.ts) where the barrier is used here, else null: not
 * Linux >= 5.8, the module not built (scripts/build-native.mjs says why at install), or turned off
 * with STAGECOACH_SYNCFS=off (an fsync per file: where other programs keep the same file system
 * busy, a syncfs flushes their writes too).
 */
export function fsBarrierModule(): string | null {
  if (process.env.STAGECOACH_SYNCFS === 'off' || !kernelReportsWritebackErrors()) return null;
  return nativeFsModule();
}

/** The native syncfs of this thread where the barrier is used (see fsBarrierModule), else null. */
export function loadSyncfs(): SyncfsCall | null {
  return fsBarrierModule() === null ? null : (loadNativeFs()?.syncfs ?? null);
}

/** One file system's flush barrier (see the module comment and `makeBarrier`). */
export interface Barrier {
  /** The device (st_dev) of the file system it flushes: files elsewhere are not covered. */
  readonly dev: number;
  /** Taken before a batch's first write: the flushes completed so far. */
  mark(): number;
  /**
   * A flush that begins after this call (the next one to start, shared by every caller until it
   * starts: one that is running now may have begun before the caller's writes). Never rejects.
   */
  after(): Promise<void>;
  /**
   * The error of a flush that completed after `mark`, or null. A page's writeback error is
   * reported by whichever flush checks next, which may be one that was running while the batch
   * still wrote (the page written back early, by the kernel), not the flush the batch waited for.
   */
  errorSince(mark: number): Error | null;
}

/** A descriptor of an archive root held open for its barrier, and the root's device. */
export interface BarrierFd {
  fd: number;
  dev: number;
}

/**
 * Opens `root` for a barrier: null where its file system is not one of `types` (nothing left
 * open). Throws where it cannot be opened now (a root not made yet: ask again later). The caller
 * owns the descriptor, one per thread that flushes through it (each descriptor has its own place
 * in the file system's error sequence), and closes it with closeSync once no flush runs.
 */
export function openBarrierFd(root: string, types: readonly number[] = BARRIER_FS_TYPES): BarrierFd | null {
  const fd = openSync(root, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    // statfs by path (node:fs has no fstatfs), of the folder just opened.
    if (!types.includes(statfsSync(root).type)) {
      closeSync(fd);
      return null;
    }
    return { fd, dev: fstatSync(fd).dev };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/**
 * The barrier of a descriptor from `openBarrierFd`: one syncfs at a time through it. `errName`
 * names an errno (util.getSystemErrorName of its negative). MUST reference nothing outside itself:
 * its source text runs on the local target's worker thread too.
 */
export function makeBarrier(syncfs: SyncfsCall, errName: (errno: number) => string, at: BarrierFd, root: string): Barrier {
  let completed = 0;
  let lastError: { seq: number; error: Error } | null = null;
  let running: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  const start = (): Promise<void> => {
    let resolve!: () => void;
    const run = new Promise<void>((r) => {
      resolve = r;
    });
    running = run;
    const done = (errno: number, error?: Error): void => {
      completed++;
      if (error !== undefined) lastError = { seq: completed, error };
      else if (errno !== 0) {
        const code = errName(errno);
        lastError = { seq: completed, error: Object.assign(new Error(`${code}: syncfs '${root}'`), { code, errno: -errno, syscall: 'syncfs', path: root }) };
      }
      if (running === run) running = null;
      resolve();
    };
    try {
      syncfs(at.fd, (errno) => done(errno));
    } catch (error) {
      done(0, error instanceof Error ? error : new Error(String(error)));
    }
    return run;
  };
  return {
    dev: at.dev,
    mark: () => completed,
    after: () => {
      if (next !== null) return next;
      if (running === null) return start();
      const queued = running.then(() => {
        next = null;
        return start();
      });
      next = queued;
      return queued;
    },
    errorSince: (mark) => (lastError !== null && lastError.seq > mark ? lastError.error : null),
  };
}
