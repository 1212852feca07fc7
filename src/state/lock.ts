import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type Sqlite from 'better-sqlite3';
import { StagecoachError } from '../errors.js';

/** The lock file and the file naming its holder, inside the state directory. */
export const LOCK_FILE = 'daemon.lock';
export const HOLDER_FILE = 'daemon.pid';

/** Held by {@link lockStateDir}; `release()` is idempotent. */
export interface StateDirLock {
  readonly file: string;
  release(): void;
}

/**
 * Takes the one-daemon-per-journal lock of a state directory: an exclusive lock on
 * `<dir>/daemon.lock`, taken by SQLite (an fcntl lock on POSIX), so the kernel releases it when
 * the process ends in any way, SIGKILL included — no stale lock to clean up by hand. The holder's
 * pid and start time are written to `<dir>/daemon.pid` for the message another process prints.
 *
 * Never waits: when another process holds the lock it throws StagecoachError `state.locked`
 * whose one-line message names that process (its pid, when it wrote it) and the journal.
 * Readers of the journal (`stagecoach status`) take no lock and are never refused.
 */
export function lockStateDir(dir: string, journal: string): StateDirLock {
  const abs = path.resolve(dir);
  const created = mkdirSync(abs, { recursive: true, mode: 0o700 });
  void created;
  const file = path.join(abs, LOCK_FILE);
  const holder = path.join(abs, HOLDER_FILE);
  try {
    closeSync(openSync(file, 'a', 0o600));
  } catch (cause) {
    throw new StagecoachError('state.lock-failed', `[stagecoach] [state] cannot create the lock file ${file}`, { cause });
  }
  let db: Sqlite.Database;
  try {
    db = new Database(file, { timeout: 0 });
    db.pragma('busy_timeout = 0');
    // Kept open, never committed: the EXCLUSIVE lock lasts as long as this connection.
    db.exec('BEGIN EXCLUSIVE');
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
      throw new StagecoachError('state.locked', lockedMessage(holder, journal), { cause });
    }
    throw new StagecoachError('state.lock-failed', `[stagecoach] [state] cannot lock ${file}`, { cause });
  }
  try {
    writeFileSync(holder, `${process.pid} ${new Date().toISOString()}\n`, { mode: 0o600 });
  } catch {
    // Only the message of a second daemon loses the pid; the lock itself holds.
  }
  let released = false;
  return {
    file,
    release() {
      if (released) return;
      released = true;
      rmSync(holder, { force: true });
      db.close();
    },
  };
}

function lockedMessage(holder: string, journal: string): string {
  let who = 'another stagecoach process';
  try {
    const [pid, since] = readFileSync(holder, 'utf8').trim().split(' ');
    if (pid && /^\d+$/.test(pid)) who = `another stagecoach (pid ${pid}${since ? `, running since ${since}` : ''})`;
  } catch {
    // The holder has not written its pid yet: the message says less, nothing else changes.
  }
  return `${who} is already using the journal ${journal}; stop it first, or give this one another stateDir`;
}
