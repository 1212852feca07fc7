/**
 * The folders of the local target's archive: the root made on first use, every folder of a
 * path made (and fsynced) once and remembered, and the fsyncs of a folder after a rename shared
 * by the puts into it.
 */
import { chmodSync, closeSync, fsync, lstatSync, mkdirSync, openSync, statSync, type Stats } from 'node:fs';
import { chmod, mkdir, open, readdir, realpath, stat as fsStat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { Logger } from 'pino';
import { describe, errnoOf } from '../kit/classify.js';
import { syncCallsSafe } from '../kit/fs-kind.js';
import { localError } from './classify.js';
import { isTempName } from './names.js';
import type { RemoteEntry } from '../target.js';

/** Folders remembered as existing (see ensureDir); past this many the memory starts afresh. */
const MAX_KNOWN_DIRS = 10_000;
/** Mode of folders the target makes when the source's folder is not wider. */
export const DIR_MODE = 0o700;
/** Temp names start with this process's pid (hex), so leftovers of another process are known. */
export const TEMP_OWNER = process.pid.toString(16).padStart(8, '0');

/** The pid part (8 hex) of a temp name this target made, or null for another shape. */
function tempOwner(name: string): string | null {
  return /\.stagecoach-([0-9a-f]{8})[0-9a-f]{12}\.tmp$/su.exec(name)?.[1] ?? null;
}

/** fsync a folder so a rename or a new entry in it survives a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    // Some filesystems (certain FUSE and network mounts) cannot fsync a folder: not an error.
    if (errnoOf(err) !== 'EINVAL' && errnoOf(err) !== 'ENOTSUP' && errnoOf(err) !== 'EISDIR') throw err;
  } finally {
    await fh?.close();
  }
}

/**
 * `fsyncDir` with the folder opened and closed by synchronous calls, for a file system where they
 * are safe (see syncCallsSafe): one thread-pool round trip (the fsync) instead of three, each
 * queued behind the small puts' fsyncs there.
 */
async function fsyncDirSyncOpen(dir: string): Promise<void> {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    const opened = fd;
    await new Promise<void>((resolve, reject) => fsync(opened, (err) => (err ? reject(err) : resolve())));
  } catch (err) {
    if (errnoOf(err) !== 'EINVAL' && errnoOf(err) !== 'ENOTSUP' && errnoOf(err) !== 'EISDIR') throw err;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export class LocalFolders {
  #rootReady: Promise<void> | null = null;
  readonly #knownDirs = new Set<string>();
  /** The checks of known folders' paths made in this event-loop turn (see ensureDir). */
  readonly #checkedNow = new Map<string, Promise<void>>();
  /** Folders not known yet whose making (see ensureDir) runs now. */
  readonly #making = new Map<string, Promise<void>>();
  readonly #dirSyncs = new Map<string, { running: Promise<void> | null; next: Promise<void> | null }>();
  /** The root with its links resolved: a descriptor's real path must start with it. */
  realRoot: string;

  constructor(
    private readonly targetId: string,
    /** The archive root, absolute. */
    readonly root: string,
    private readonly log: Logger,
  ) {
    this.realRoot = root;
  }

  /** Forgets every folder remembered: the next put into one looks again (it may have gone). */
  forget(): void {
    this.#knownDirs.clear();
    this.#checkedNow.clear();
  }

  ensureRoot(): Promise<void> {
    const root = this.root;
    this.#rootReady ??= (async () => {
      try {
        const made = await mkdir(root, { recursive: true, mode: DIR_MODE });
        if (made !== undefined) this.log.info({ root }, 'archive root created');
        // The root itself may be a link the user configured; nothing below it may be.
        this.realRoot = await realpath(root);
      } catch (err) {
        // No put can succeed without the root: that is the target's problem, not the item's.
        throw localError(this.targetId, 'archive-root-unusable', 'fatal', `the archive root ${root} cannot be created: ${describe(err)}`, err);
      }
    })().catch((err: unknown) => {
      this.#rootReady = null;
      throw err;
    });
    return this.#rootReady;
  }

  /** The error of a put that met a symbolic link below the root. */
  linkRefused(path: string): Error {
    return localError(this.targetId, 'archive-path-link', 'fail-item', `${path} is a symbolic link: the local target follows no link below its root`);
  }

  /**
   * mkdir -p `dir` under the root, never through a link: every folder between the root and `dir`
   * is lstat'ed (a link planted there since fails the put with `archive-path-link`), once per
   * event-loop turn for a folder known to exist (the puts of one lease start in one turn and
   * mostly share their folders; a link planted later in the turn is still refused by the temp
   * file's /proc check, see openTemp in upload.ts), and the missing ones are made one by one with
   * `dirMode`, set exactly (the umask neither widens nor narrows it), fsyncing each parent that
   * gained an entry. The root's own check is
   * remembered per folder; a put that then finds the folder gone (ENOENT) forgets every folder and
   * comes back here (see upload.ts). The first put of this process into a folder removes the temp
   * files other processes left there (a put cut by SIGKILL); a folder it made itself has none.
   */
  async ensureDir(dir: string, dirMode = DIR_MODE): Promise<void> {
    await this.ensureRoot();
    if (!this.#knownDirs.has(dir)) {
      // A new folder is made (and swept) once: the puts that come while it is share that.
      let making = this.#making.get(dir);
      if (making === undefined) {
        making = this.#ensure(dir, dirMode, false).finally(() => this.#making.delete(dir));
        this.#making.set(dir, making);
      }
      return making;
    }
    // Puts that ask in the same turn share one check, and its outcome.
    let check = this.#checkedNow.get(dir);
    if (check === undefined) {
      check = this.#ensure(dir, dirMode, true);
      if (this.#checkedNow.size === 0) setImmediate(() => this.#checkedNow.clear());
      this.#checkedNow.set(dir, check);
    }
    return check;
  }

  async #ensure(dir: string, dirMode: number, known: boolean): Promise<void> {
    const root = this.root;
    // On a local file system the folder calls are synchronous (a few µs each) but the fsyncs: a
    // new folder waited for seven thread-pool round trips, each behind the small puts' fsyncs
    // queued there (16 ms a folder at the median, 57 ms at p90, in a 10,000-file backfill).
    const sync = !known && (await syncCallsSafe(root));
    if (!known) {
      try {
        const st = sync ? statSync(root) : await fsStat(root);
        if (!st.isDirectory()) throw localError(this.targetId, 'archive-root-gone', 'fatal', `the archive root ${root} is not a folder`);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') {
          throw localError(this.targetId, 'archive-root-gone', 'fatal', `the archive root ${root} has disappeared (an unmounted disk?)`, err);
        }
        throw err;
      }
    }
    // Made here (not found): a folder this call made holds no other process's leftovers.
    let made = false;
    if (dir !== root) {
      let d = root;
      for (const part of relative(root, dir).split(sep)) {
        d = join(d, part);
        let st: Stats | null = null;
        try {
          st = lstatSync(d);
        } catch (err) {
          if (errnoOf(err) !== 'ENOENT') throw err;
        }
        if (st === null) {
          try {
            if (sync) {
              mkdirSync(d, { mode: dirMode });
              chmodSync(d, dirMode);
            } else {
              await mkdir(d, { mode: dirMode });
              await chmod(d, dirMode);
            }
            made = d === dir;
            // A new folder is an entry in its parent: fsync it, so the path to the file survives
            // a power cut as well as the file.
            await (sync ? fsyncDirSyncOpen(dirname(d)) : fsyncDir(dirname(d)));
            continue;
          } catch (err) {
            if (errnoOf(err) !== 'EEXIST') throw err;
            st = lstatSync(d);
          }
        }
        if (st.isSymbolicLink()) throw this.linkRefused(d);
        if (!st.isDirectory()) throw localError(this.targetId, 'archive-path-blocked', 'fail-item', `${d} is not a folder`);
      }
    }
    if (known) return;
    if (!made) await this.#sweepLeftovers(dir);
    if (this.#knownDirs.size >= MAX_KNOWN_DIRS) this.#knownDirs.clear();
    this.#knownDirs.add(dir);
  }

  /** Removes the temp files other processes left in `dir`; this process's own belong to puts running now. */
  async #sweepLeftovers(dir: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      this.log.warn({ err, dir }, 'cannot list the folder for leftover temp files');
      return;
    }
    for (const n of names) {
      if (!isTempName(n) || tempOwner(n) === TEMP_OWNER) continue;
      await unlink(join(dir, n)).catch((e: unknown) => {
        if (errnoOf(e) !== 'ENOENT') this.log.warn({ err: e, path: join(dir, n) }, 'leftover temp file not removed');
      });
    }
  }

  /**
   * fsyncs `dir` after a rename into it. Puts into one folder share the fsyncs: a caller joins
   * the next fsync that has not started yet (it starts after the caller's rename, so it covers
   * it), and at most one runs per folder at a time.
   */
  syncAfterRename(dir: string): Promise<void> {
    const dirSyncs = this.#dirSyncs;
    let s = dirSyncs.get(dir);
    if (!s) {
      s = { running: null, next: null };
      dirSyncs.set(dir, s);
    }
    if (s.next !== null) return s.next;
    const state = s;
    const before = state.running ?? Promise.resolve();
    const p: Promise<void> = before
      .catch(() => undefined)
      .then(() => {
        state.running = p;
        state.next = null;
        return fsyncDir(dir);
      })
      .finally(() => {
        if (state.running !== p) return;
        state.running = null;
        if (state.next === null) dirSyncs.delete(dir);
      });
    state.next = p;
    return p;
  }
}

const VERSION = /^(.*)\.\d{8}-\d{6}(?:-\d+)?(\.[^.]*)?$/su;

/**
 * The local target's listing (Target.list): every regular file below the archive root, as a
 * remote path. Links are not followed (the target writes none); the target's own leftovers are
 * left out: interrupted puts' temp files, `check`'s probe files, and kept versions
 * (`<stem>.<yyyymmdd-hhmmss>[-n].<ext>` beside the file they are a version of).
 *
 * Nothing when the root does not exist yet.
 */
export async function* listArchive(root: string): AsyncGenerator<RemoteEntry> {
  const stack: string[] = [''];
  while (stack.length > 0) {
    const rel = stack.pop()!;
    let entries;
    try {
      entries = await readdir(rel === '' ? root : join(root, rel), { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && rel === '') return;
      throw err;
    }
    const files = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
    for (const e of entries) {
      const path = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) stack.push(path);
      else if (e.isFile() && !isLeftover(e.name, files, rel === '')) yield { path, size: null, hash: null };
    }
  }
}

function isLeftover(name: string, siblings: ReadonlySet<string>, atRoot: boolean): boolean {
  if (isTempName(name) || (atRoot && name.startsWith('.stagecoach-probe-'))) return true;
  const v = VERSION.exec(name);
  return v !== null && siblings.has(v[1]! + (v[2] ?? ''));
}
