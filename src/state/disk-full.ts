/**
 * A journal that cannot be written because the state folder's disk is full: recognised from the
 * error SQLite or Node gave, and worded so that the one line the daemon stops with says where,
 * why, and what to do.
 */
import { statfsSync } from 'node:fs';
import path from 'node:path';
import { StagecoachError } from '../errors.js';

/** The stable code of the error {@link diskFullError} returns. */
export const DISK_FULL_CODE = 'state.disk-full';

/** The journal's file name in the state folder (openSqliteStore's default). */
const JOURNAL_FILE = 'stagecoach.db';

/**
 * Below this many free bytes, an I/O error on the state folder is taken for a full disk: SQLite
 * reports some failed writes for want of space as SQLITE_IOERR_* (growing the -shm file by its
 * 32 KiB steps, say), so a disk with less than two such steps left is full for the journal.
 */
const NEARLY_FULL_BYTES = 64 * 1024;

/** Free space of the file system holding `dir`, for this user; null when it cannot be read. */
function freeSpace(dir: string): { bytes: number; inodes: number } | null {
  try {
    const s = statfsSync(dir);
    return { bytes: Number(s.bavail) * Number(s.bsize), inodes: Number(s.ffree) };
  } catch {
    return null;
  }
}

function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, path.resolve(file));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * What one error of a cause chain says about space: `full` (certainly), `maybe` (an I/O error or
 * an ENOSPC from elsewhere, full only if the disk is), or null (nothing to do with space).
 */
function verdict(e: unknown, dir: string): 'full' | 'maybe' | null {
  if (typeof e !== 'object' || e === null) return null;
  const { code, syscall, path: file } = e as { code?: unknown; syscall?: unknown; path?: unknown };
  if (typeof code !== 'string') return null;
  // Only the journal speaks SQLite, so its "full" is always the state folder's disk.
  if (code === 'SQLITE_FULL') return 'full';
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    // inotify's "no space" is its watch limit, not a disk.
    if (typeof syscall === 'string' && syscall.includes('watch')) return null;
    return typeof file === 'string' && isInside(dir, file) ? 'full' : 'maybe';
  }
  if (code.startsWith('SQLITE_IOERR')) return 'maybe';
  return null;
}

/**
 * If `err`, or an error in its `cause` chain, is a write to the journal that failed because the
 * disk of the state folder `stateDir` has no space left (SQLITE_FULL; ENOSPC or EDQUOT on a file
 * in the folder; an SQLITE_IOERR or ENOSPC from elsewhere while that disk has less than 64 KiB or
 * no inode free), returns a StagecoachError with code `state.disk-full` and `err` as its cause;
 * otherwise null (an error that already is `state.disk-full` comes back as is). Its message is
 * one line naming the state folder and the journal, saying "no space left", and telling what to do.
 *
 * SQLite rolls back a transaction whose write fails, so what the journal held before stays
 * intact: the caller SHOULD stop (every later write fails the same way) and report this error; a
 * start after space is freed resumes where the daemon stopped.
 *
 * Example: a tmpfs state folder `/srv/sc/state` filled to its last byte, the archiver's
 * recordItems fails with SQLITE_FULL → `[stagecoach] [state] no space left on the disk of the
 * state folder /srv/sc/state (0 bytes free): the journal /srv/sc/state/stagecoach.db cannot be
 * written. …`.
 */
export function diskFullError(err: unknown, stateDir: string): StagecoachError | null {
  const dir = path.resolve(stateDir);
  let worst: 'full' | 'maybe' | null = null;
  const seen = new Set<unknown>();
  for (let e: unknown = err; e !== undefined && e !== null && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    if (e instanceof StagecoachError && e.code === DISK_FULL_CODE) return e;
    const v = verdict(e, dir);
    if (v === 'full') {
      worst = v;
      break;
    }
    worst ??= v;
    if (typeof e !== 'object') break;
  }
  if (worst === null) return null;
  const free = freeSpace(dir);
  if (worst === 'maybe' && (free === null || (free.bytes >= NEARLY_FULL_BYTES && free.inodes > 0))) return null;
  const left = free === null ? '' : free.inodes === 0 ? ' (no inode free)' : ` (${free.bytes} bytes free)`;
  return new StagecoachError(
    DISK_FULL_CODE,
    `[stagecoach] [state] no space left on the disk of the state folder ${dir}${left}: ` +
      `the journal ${path.join(dir, JOURNAL_FILE)} cannot be written. ` +
      'Free some space there (or move stateDir to a larger disk), then start stagecoach again: ' +
      'the journal is intact and archiving resumes where it stopped.',
    { cause: err },
  );
}
