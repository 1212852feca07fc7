/**
 * When the kernel's inotify limits are too low for a root (issue 19 item 5): the exact sysctl
 * to raise, computed from what the watcher watches under the root, and the line that keeps it
 * across reboots. Linux only (inotify); the figures come from /proc/sys/fs/inotify.
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';

/** The file the advice tells to write, so the raised limit outlives a reboot. */
export const SYSCTL_FILE = '/etc/sysctl.d/90-stagecoach.conf';
/** What the limits are rounded up to, so the advice leaves room for what comes next. */
const ROUND_TO = 8192;

/** What ran out: ENOSPC from a watch is the watches per user; EMFILE from inotify_init the instances. */
export type InotifyLimit = 'max_user_watches' | 'max_user_instances';

export interface InotifyAdvice {
  limit: InotifyLimit;
  /** The limit now (null when /proc does not say). */
  current: number | null;
  /** The value to set. */
  wanted: number;
  /** `sysctl fs.inotify.<limit>=<wanted>`: run as root, it takes effect at once. */
  sysctl: string;
  /** The line for SYSCTL_FILE that keeps it. */
  persist: string;
}

/** The limit an inotify error from the watcher means, or null when it is not one. */
export function inotifyLimitOf(code: string | undefined): InotifyLimit | null {
  if (code === 'ENOSPC') return 'max_user_watches';
  if (code === 'EMFILE') return 'max_user_instances';
  return null;
}

/**
 * The advice for `limit`, for a root holding `entries` paths the watcher watches (one inotify
 * watch on each folder: a folder's watch reports its files). The watches are per user and shared with
 * the user's other processes, so the root's count is added to the current limit, rounded up.
 * Instances: one inotify instance per process, per user; doubling leaves room.
 */
export function inotifyAdvice(limit: InotifyLimit, current: number | null, entries: number): InotifyAdvice {
  const now = current ?? (limit === 'max_user_watches' ? 8192 : 128);
  const want = limit === 'max_user_watches' ? now + entries : now * 2;
  const wanted = Math.ceil(want / ROUND_TO) * ROUND_TO;
  const setting = `fs.inotify.${limit}=${wanted}`;
  return { limit, current, wanted, sysctl: `sysctl ${setting}`, persist: setting };
}

/** The kernel's limit now, from /proc; null when it cannot be read (not Linux). */
export async function readInotifyLimit(limit: InotifyLimit): Promise<number | null> {
  try {
    const n = Number.parseInt(await readFile(`/proc/sys/fs/inotify/${limit}`, 'utf8'), 10);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null; // not Linux, or /proc not mounted: the advice uses the kernel's default
  }
}

/**
 * How many folders and files are under `root` (the root included, symbolic links not followed),
 * skipping the folders `skipsDir` says the watcher skips. Unreadable folders count as one.
 */
export async function countWatched(root: string, skipsDir: (rel: string) => boolean): Promise<{ folders: number; files: number }> {
  let folders = 0;
  let files = 0;
  const stack = [''];
  while (stack.length > 0) {
    const rel = stack.pop()!;
    folders++;
    let names: import('node:fs').Dirent[];
    try {
      names = await readdir(path.join(root, rel), { withFileTypes: true });
    } catch {
      continue; // unreadable or gone: the watcher cannot watch inside it either
    }
    for (const d of names) {
      const child = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) {
        if (!skipsDir(child)) stack.push(child);
      } else files++;
    }
  }
  return { folders, files };
}
