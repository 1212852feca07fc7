import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The identity of a watched root folder (`dev:ino`), or null when there is no folder at `path`
 * (removed, unmounted, never made, or a file). A root whose identity changes was replaced: its
 * old watches see nothing more.
 */
export async function rootIdentity(path: string): Promise<string | null> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? `${s.dev}:${s.ino}` : null;
  } catch {
    return null;
  }
}

/** How often a missing root is looked for, and a present one checked (ms). */
export const ROOT_CHECK_MS = 1000;

/**
 * Resolves once a folder is at `path`; rejects with the signal's reason when it aborts first.
 * Checks every `everyMs`.
 */
export async function waitForRoot(path: string, signal: AbortSignal, everyMs = ROOT_CHECK_MS): Promise<void> {
  while ((await rootIdentity(path)) === null) {
    signal.throwIfAborted();
    await sleep(everyMs, undefined, { signal });
  }
}

/** A root's presence as the daemon last saw it, for `status` (another process). */
export interface RootPresence {
  name: string;
  path: string;
  present: boolean;
  since: number;
  reason?: string;
  skippedLinks?: number;
  /** Why the root is walked periodically instead of watched (an inotify limit), with the sysctl. */
  polled?: string;
}

let writes = 0;
const presenceFile = (stateDir: string) => path.join(stateDir, 'roots.json');

/** Writes every root's presence to `<stateDir>/roots.json` (whole: a temp file renamed over it). */
export async function writeRootPresence(stateDir: string, roots: RootPresence[]): Promise<void> {
  const file = presenceFile(stateDir);
  const tmp = `${file}.${process.pid}.${++writes}.tmp`;
  // Private like everything in the state folder: it names the roots being watched.
  await writeFile(tmp, `${JSON.stringify({ at: Date.now(), roots }, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

/** The presence the daemon last wrote, or [] when there is none (never run, or unreadable). */
export async function readRootPresence(stateDir: string): Promise<RootPresence[]> {
  try {
    const body = JSON.parse(await readFile(presenceFile(stateDir), 'utf8')) as { roots?: RootPresence[] };
    return Array.isArray(body.roots) ? body.roots : [];
  } catch {
    return [];
  }
}

/** The reason shown while a root is missing. */
export const waitingReason = (path: string) => `waiting for ${path} to appear`;
