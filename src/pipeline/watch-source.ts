import { lstat, stat } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { type Dirent, lstatSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import chokidar, { type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import type { PathFilter } from '../archive/filters.js';
import { type FileItem, type FileStat, sameFileStat } from '../archive/item.js';
import { countWatched, inotifyAdvice, inotifyLimitOf, readInotifyLimit, SYSCTL_FILE, type InotifyLimit } from './inotify-limits.js';
import type { PrewalkRun, PrewalkSource, WalkBatch } from './prewalk.js';
import { ROOT_CHECK_MS, rootIdentity, waitingReason } from './roots.js';
import { rawJoin, relativePosix, walkTree, type WalkOptions } from './walk.js';

export interface RootSpec {
  name: string;
  /** Absolute path. */
  path: string;
  filter: PathFilter;
  polling: boolean;
  pollIntervalMs: number;
  /**
   * false (default): symbolic links are not archived; each is logged once and counted in the
   * root's status. true: a link to a file inside a watched root is archived under the link's
   * path, with the file's content; links to folders, to outside the roots, or dangling, are
   * skipped as with false.
   */
  followSymlinks?: boolean;
}

export interface WatchSourceOptions {
  roots: RootSpec[];
  stableMs: number;
  /**
   * Period of the full rescan of every root in watch mode, a safety net for events the watcher
   * missed (0: never). A root whose inotify watches ran out is rescanned at this period, or every
   * minute when it is 0.
   */
  rescanMs: number;
  /** The recorded stat of every file of a root (the store's), for reconciliation. */
  index(root: string): Promise<Map<string, FileStat>>;
  log: Logger;
  /** A file became stable: it may be archived. */
  onReady(item: FileItem): void;
  /** A file that was ready changed again or vanished before it was taken: take it back. */
  onUnready(root: string, relPath: string): void;
  /**
   * A root went missing (`present: false`: removed, unmounted, or not there at start) or came
   * back. Called once per change of state.
   */
  onRootState?(root: RootSpec, present: boolean): void;
  /** Something `roots()` reports changed (a root's presence, links skipped). Called at most every 500 ms. */
  onStatusChange?(): void;
  /** How often each root's presence is checked (ms). Default 1000. */
  rootCheckMs?: number;
  /**
   * The journal's index could not be read for a scan: nothing can be reconciled, and the scan
   * is given up. Default: logged.
   */
  onError?(error: unknown): void;
  /**
   * The roots' first walks, on a worker thread started with the pipeline (prewalk.ts): a root
   * watched by folders takes its first walk from there. Closed once every root is live.
   */
  prewalk?: PrewalkSource;
}

/** Whether a root is there, as the watcher last saw it. */
export interface RootStatus {
  name: string;
  path: string;
  present: boolean;
  /** Epoch ms of the last change (or of the start). */
  since: number;
  /** Set while missing: `waiting for <path> to appear`. */
  reason?: string;
  /** Symbolic links found and not archived (see RootSpec.followSymlinks). */
  skippedLinks: number;
  /** Set when the kernel's inotify limit ran out under it: why it is walked periodically, and the sysctl to raise. */
  polled?: string;
}

interface RootState {
  present: boolean;
  since: number;
  /** `dev:ino` of the folder while present. */
  id: string | null;
  watcher: FSWatcher | null;
  /** See RootStatus.polled. */
  polled?: string;
}

interface Candidate {
  item: FileItem;
  /** When its stat was last seen to change (epoch ms). */
  changedAt: number;
}

/** How often a root whose inotify limit ran out is walked, at most (a rescan more frequent covers it). */
const LIMIT_POLL_MS = 60_000;
/** How long a taken file's stat is kept against scans with a journal index older than its record. */
const TAKEN_KEEP_MS = 30_000;
/**
 * How far before the start of a root's first walk the walk after its watches are set up looks
 * for ctimes (see catchUpRoot): the kernel stamps a ctime from a clock that may lag a tick.
 */
const CTIME_SLACK_MS = 1000;
/** The walk of a root a little after it is watched live (see watchingNow). */
const SETTLE_WALK_MS = 2000;
/**
 * Folders handed to chokidar at a time while a root's watches are set up (see addFolders): each
 * reads its folder and stats every child, and more at once only raise the peak of requests in
 * flight, whose memory the process keeps once they are freed (~1.6 KB a file when chokidar
 * walked the whole tree itself).
 */
const ADD_WINDOW = 8;
/** The second walk of a new folder, after its first (see catchUpDir). */
const NEW_DIR_SECOND_WALK_MS = 1000;
const keyOf = (root: string, relPath: string) => `${root}\u0000${relPath}`;
const sameStat = sameFileStat;

/**
 * chokidar's own record of the folders whose watch is attached (`_closers`, keyed by the path
 * it watches) and of each folder's entries (`getWatched()`). Neither attach nor read has an event
 * of its own; when the internals are not there (another chokidar), a short wait stands in.
 */
interface ChokidarInternals {
  _closers?: Map<string, unknown>;
}

async function waitForWatch(watcher: FSWatcher, abs: string, closed: () => boolean): Promise<void> {
  const closers = (watcher as unknown as ChokidarInternals)._closers;
  if (!(closers instanceof Map)) {
    await sleep(100);
    return;
  }
  // Bounded: a folder chokidar gives up on (removed, unreadable) is walked after 2 s anyway.
  const deadline = Date.now() + 2000;
  while (!closers.has(abs) && !closed() && Date.now() < deadline) await sleep(5);
}

/**
 * Whether chokidar knows the folder: its watch attached, or listed under its parent. With
 * `depth: 0` (see newWatcher) a folder listed under its parent is not watched: only its watch counts.
 */
function isTracked(watcher: FSWatcher, abs: string, depth0 = false): boolean {
  const closers = (watcher as unknown as ChokidarInternals)._closers;
  if (closers instanceof Map) {
    if (closers.has(abs)) return true;
    if (depth0) return false;
  }
  const siblings = watcher.getWatched()[path.dirname(abs)];
  return siblings?.includes(path.basename(abs)) ?? false;
}

/**
 * Folders only: chokidar reads a watched folder (when it is added, and after each event in it,
 * at most once a second) through its `_readdirp`, with readdirp's `alwaysStat`: an lstat of every
 * child, only for `ignored` to drop the files (~30 s of a million-file tree's set-up). Asked for
 * directories only and without stats instead, readdirp classifies each child by the type
 * readdir gives (its dirent), and chokidar's filters and `ignored` get that dirent as the child's
 * stats (it has the same isFile / isDirectory / isSymbolicLink). Another chokidar, without
 * `_readdirp`, keeps its own reads.
 */
type ReaddirpEntry = { stats?: unknown; dirent?: unknown };
type EntryFilter = (entry: ReaddirpEntry) => boolean;
function readFoldersByType(watcher: FSWatcher): void {
  const w = watcher as unknown as { _readdirp?: (dir: string, opts: { fileFilter?: EntryFilter; directoryFilter?: EntryFilter }) => unknown };
  const read = w._readdirp;
  if (typeof read !== 'function') return;
  const typed = (filter: EntryFilter | undefined): EntryFilter => (entry) => {
    entry.stats ??= entry.dirent;
    return filter ? filter(entry) : true;
  };
  w._readdirp = (dir, opts) =>
    read.call(watcher, dir, { ...opts, alwaysStat: false, type: 'directories', fileFilter: typed(opts.fileFilter), directoryFilter: typed(opts.directoryFilter) } as typeof opts);
}

/**
 * chokidar's own steps for a folder it watches (its NodeFsHandler's `_handleDir`, but for the
 * read that comes first there): the folder's entry, its fs.watch, whose events make chokidar
 * read the folder again (for its subfolders: a new one is reported as `addDir`, one gone as
 * `unlinkDir`), and the closer `close()` calls.
 */
interface ChokidarFolderSteps {
  closed: boolean;
  _closers: Map<string, unknown>;
  _getWatchedDir(dir: string): unknown;
  _getWatchHelpers(p: string): unknown;
  _addPathCloser(p: string, closer: unknown): void;
  _nodeFsHandler: {
    _watchWithNodeFs(p: string, listener: (dir: string, stats?: Stats) => void): unknown;
    _handleRead(dir: string, initialAdd: boolean, wh: unknown, target: undefined, watched: string, depth: number, throttler: undefined): Promise<unknown> | undefined;
  };
}

/**
 * Issue 19 item 5: how the first walk has chokidar watch each folder, so that the walk and the
 * set-up of the watches are one pass. The function returned watches a folder at once, without
 * reading it (fs.watch is synchronous: the folder's inotify watch is in place when it returns);
 * the caller reads the folder after that, so a file made in it before the read is in the read
 * and one made after raises an event: no walk afterwards. chokidar's entry of a folder lists its
 * subfolders as each is watched (`_watchWithNodeFs` tells the parent's entry), as chokidar's own
 * read would have listed them, so its reads after an event report only folders made since.
 * The steps are chokidar's, not its API: with another chokidar that lacks them, null (the
 * watches are then added through `add`, after the walk: see watchRoot).
 */
function folderWatchOf(watcher: FSWatcher, onReadError: (err: unknown) => void): ((abs: string) => void) | null {
  const w = watcher as unknown as Partial<ChokidarFolderSteps>;
  const h = w._nodeFsHandler as Partial<ChokidarFolderSteps['_nodeFsHandler']> | undefined;
  if (
    !(w._closers instanceof Map) ||
    typeof w._getWatchedDir !== 'function' ||
    typeof w._getWatchHelpers !== 'function' ||
    typeof w._addPathCloser !== 'function' ||
    typeof h?._watchWithNodeFs !== 'function' ||
    typeof h._handleRead !== 'function'
  )
    return null;
  const fsw = w as ChokidarFolderSteps;
  const handler = fsw._nodeFsHandler;
  return (abs) => {
    // Closed (the root vanished, or the daemon stops): a watch made now would never be closed.
    if (fsw.closed || fsw._closers.has(abs)) return;
    fsw._getWatchedDir(abs);
    const wh = fsw._getWatchHelpers(abs);
    const closer = handler._watchWithNodeFs(abs, (dir, stats) => {
      if (stats && stats.mtimeMs === 0) return; // chokidar's own test: the folder is gone
      handler._handleRead(dir, false, wh, undefined, abs, 0, undefined)?.catch(onReadError);
    });
    // None: fs.watch failed, and chokidar reported why ('error': an inotify limit, see newWatcher).
    if (closer) fsw._addPathCloser(abs, closer);
  };
}

/** What a scan keeps of a file's Stats (see fileStatOf). */
type ObservedStat = FileStat & { dev: number };

/** The files of a batch of the walk's worker (prewalk.ts) that the root's filter keeps, with their stat. */
function replayFiles(root: RootSpec, b: WalkBatch, onFile: (relPath: string, st: ObservedStat) => void): void {
  const s = b.stats;
  for (let i = 0, k = 0; i < b.files.length; i++, k += 5) {
    const relPath = b.files[i]!;
    if (root.filter.byChild(relPath, relPath.slice(relPath.lastIndexOf('/') + 1)) !== null) continue;
    onFile(relPath, { size: s[k]!, mtimeMs: s[k + 1]!, ino: s[k + 2]!, ctimeMs: s[k + 3]!, dev: s[k + 4]! });
  }
}

/** The symbolic links of a batch of the walk's worker that the root's filter keeps by path. */
function keptLinks(root: RootSpec, b: WalkBatch): string[] {
  return b.links.filter((relPath) => root.filter.byChild(relPath, relPath.slice(relPath.lastIndexOf('/') + 1)) === null);
}

/** An error the walk's worker sent, as the fs call made it. */
function errorOf(e: WalkBatch['errors'][number]): NodeJS.ErrnoException {
  return Object.assign(new Error(e.message), e.code === undefined ? {} : { code: e.code });
}

/** File stat as the journal compares it: whole milliseconds, so every store keeps it exactly. */
export function fileStatOf(stats: Stats): ObservedStat {
  return { size: stats.size, mtimeMs: Math.floor(stats.mtimeMs), ino: stats.ino, ctimeMs: Math.floor(stats.ctimeMs), dev: stats.dev };
}

/** `sameFileStat(known, fileStatOf(stats))` without making the stat object. */
function journaled(known: FileStat, stats: Stats): boolean {
  return (
    known.size === stats.size &&
    known.mtimeMs === Math.floor(stats.mtimeMs) &&
    known.ino === stats.ino &&
    (known.ctimeMs === undefined || known.ctimeMs === Math.floor(stats.ctimeMs))
  );
}

/**
 * Finds files that are new or changed under the roots and tells when each is stable: its size
 * and mtime unchanged for `stableMs`. Events are coalesced per path while they wait. At start
 * each root is reconciled with the store: files whose size, mtime and inode match the journal
 * produce nothing. A file found by a scan whose mtime is already older than `stableMs` is stable
 * at once (nothing has written it for that long); every other file waits out `stableMs` and is
 * stat'ed again before it is declared ready. Deletes are only forgotten: nothing is ever removed
 * from an archive.
 */
export class WatchSource {
  private readonly candidates = new Map<string, Candidate>();
  /** Files taken lately, with the stat they were taken with (see `taken`); insertion order is time order. */
  private readonly recentlyTaken = new Map<string, { stat: FileStat; at: number }>();
  /** Files declared ready and not yet taken, with the stat they were declared with. */
  private readonly ready = new Map<string, FileStat>();
  private readonly watchers: FSWatcher[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly rescanning = new Set<string>();
  /** Children of watched folders being stat'ed after an event (absolute paths; see childEvent). */
  private readonly childStats = new Set<string>();
  /** Of those, the ones with more events since their stat began, and whether one was a rename. */
  private readonly childAgain = new Map<string, boolean>();
  /** New folders being walked once their watch is attached (absolute paths). */
  private readonly catchingUp = new Set<string>();
  private readonly rootStates = new Map<string, RootState>();
  /** Per root, the links found and not archived (relPath). */
  private readonly skippedLinks = new Map<string, Set<string>>();
  private statusTimer: NodeJS.Timeout | null = null;
  private checkingRoots = false;
  private sweeping = false;
  private closed = false;
  /** Resolves once every root is watched live (see `watch`); rejects if setting up failed. */
  live: Promise<void> = Promise.resolve();
  private readonly sweepMs: number;

  constructor(private readonly opts: WatchSourceOptions) {
    this.sweepMs = Math.max(20, Math.min(1000, Math.floor(opts.stableMs / 4)));
  }

  /** @internal The chokidar watchers (tests inject watcher errors through them). */
  get chokidarWatchers(): readonly FSWatcher[] {
    return this.watchers;
  }

  /**
   * Folders and files the full scans could not read (but for ones gone since their folder's
   * read): what is in them was not archived by that scan. `backfill --once` fails on it.
   */
  unreadable = 0;

  /** Files waiting to become stable. */
  get waiting(): number {
    return this.candidates.size;
  }

  /**
   * Watch mode. Each root is first reconciled with the journal by a plain stat walk (new and
   * changed files become candidates); the returned promise resolves when every root's walk is
   * done. Live watching is chokidar's, with no initial events of its own. A root watched by
   * folders (not polled) is watched by that walk: each folder just before the walk reads it (see
   * folderWatchOf), so it is live when its walk ends (`watching` is logged after `scanned`).
   * Else it is set up after that, in the background (chokidar's own read of each folder), and
   * once a root's watches are ready it is walked once more, so a file made between its walk and
   * its watch is not missed (by ctime, without the journal's index: see catchUpRoot); then
   * `watching` is logged. `live` resolves once every root is watched live.
   */
  async watch(): Promise<void> {
    this.startSweeper();
    const present: RootSpec[] = [];
    /** What is left to set up once every root is walked (see firstWalk). */
    const setUps: Array<() => Promise<void>> = [];
    for (const r of this.opts.roots) {
      const id = await rootIdentity(r.path);
      this.rootStates.set(r.name, { present: id !== null, since: Date.now(), id, watcher: null });
      if (id === null) {
        this.rootMissing(r, 'the watched folder is not there: waiting for it to appear (it is never created; set createRoot: true to have it made)');
        continue;
      }
      this.opts.onRootState?.(r, true);
      present.push(r);
      const setUp = await this.firstWalk(r);
      this.opts.log.info({ root: r.name, waiting: this.candidates.size }, 'scanned');
      if (setUp) setUps.push(setUp);
      else this.watchingNow(r);
    }
    // Every root's state as of this start (a missing root was told already): `status` must not
    // show what an earlier run saw.
    if (present.length === this.opts.roots.length) this.statusChanged(true);
    this.live = Promise.all(setUps.map((setUp) => setUp())).then(() => undefined);
    // What the walk's worker holds (a root that was missing at start) goes with it.
    void this.live.finally(() => this.opts.prewalk?.close()).catch(() => undefined);
    this.live.catch((e: unknown) => this.opts.log.error({ err: e }, 'cannot set up watching; changes are found by the periodic rescan only'));
    // A root that vanishes (removed, unmounted) or comes back is a state, looked for each second.
    const check = setInterval(() => void this.checkRoots(), this.opts.rootCheckMs ?? ROOT_CHECK_MS);
    check.unref();
    this.timers.push(check);
    if (this.opts.rescanMs > 0) {
      const t = setInterval(() => {
        for (const r of this.opts.roots) void this.rescan(r);
      }, this.opts.rescanMs);
      t.unref();
      this.timers.push(t);
    }
  }

  /**
   * Once mode: one scan of every root (no watching); resolves when every file found is ready. A
   * root the walk's worker walked (prewalk.ts) is scanned from what it found.
   */
  async scanOnce(): Promise<void> {
    this.startSweeper();
    for (const r of this.opts.roots) {
      const id = await rootIdentity(r.path);
      this.rootStates.set(r.name, { present: id !== null, since: Date.now(), id, watcher: null });
      // Once mode does not wait: a missing root is said, and `roots()` reports it.
      if (id === null) this.opts.log.error({ root: r.name, path: r.path }, 'the watched folder is not there: nothing archived from it');
      else await this.rescan(r, undefined, this.opts.prewalk?.take(r.name) ?? undefined);
    }
    await this.opts.prewalk?.close();
    while (this.candidates.size > 0 && !this.closed) {
      await new Promise((res) => setTimeout(res, this.sweepMs));
    }
  }

  /** Each root, present or missing, in config order (before `watch` or `scanOnce`, all present). */
  roots(): RootStatus[] {
    return this.opts.roots.map((r) => {
      const st = this.rootStates.get(r.name);
      const present = st?.present ?? true;
      return {
        name: r.name,
        path: r.path,
        present,
        since: st?.since ?? 0,
        ...(present ? {} : { reason: waitingReason(r.path) }),
        skippedLinks: this.skippedLinks.get(r.name)?.size ?? 0,
        ...(st?.polled ? { polled: st.polled } : {}),
      };
    });
  }

  /**
   * Compares each root with what was last seen: a root that vanished (or was replaced by another
   * folder) stops being watched and waits; one that appeared is scanned against the journal
   * (what it held unchanged is not archived again) and watched.
   */
  private async checkRoots(): Promise<void> {
    if (this.checkingRoots || this.closed) return;
    this.checkingRoots = true;
    try {
      for (const r of this.opts.roots) {
        const st = this.rootStates.get(r.name);
        if (!st) continue;
        const id = await rootIdentity(r.path);
        if (this.closed) return;
        if (st.present && id !== st.id) {
          await this.stopWatching(r, st);
          this.rootMissing(r, 'the watched folder has disappeared (removed or unmounted): waiting for it to come back; nothing it held is forgotten');
        }
        if (!st.present && id !== null) {
          st.present = true;
          st.since = Date.now();
          st.id = id;
          this.opts.log.warn({ root: r.name, path: r.path }, 'the watched folder is there: archiving it');
          this.opts.onRootState?.(r, true);
          this.statusChanged(true);
          const setUp = await this.firstWalk(r);
          if (!setUp) this.watchingNow(r);
          else
            void setUp().catch((e: unknown) =>
              this.opts.log.error({ err: e, root: r.name }, 'cannot set up watching; changes are found by the periodic rescan only'),
            );
        }
      }
    } finally {
      this.checkingRoots = false;
    }
  }

  private rootMissing(r: RootSpec, message: string): void {
    const st = this.rootStates.get(r.name)!;
    st.present = false;
    st.since = Date.now();
    st.id = null;
    // What was found under it and not yet taken waits for the folder's return instead.
    this.forget(r.name, () => true);
    this.opts.log.warn({ root: r.name, path: r.path, reason: waitingReason(r.path) }, message);
    this.opts.onRootState?.(r, false);
    this.statusChanged(true);
  }

  /**
   * Tells `onStatusChange`: at once when `now` (a root's presence, which `status` must show
   * as it happens), else once for the changes of the next 500 ms (links found in a walk).
   */
  private statusChanged(now = false): void {
    if (!this.opts.onStatusChange) return;
    if (now) {
      if (this.statusTimer) clearTimeout(this.statusTimer);
      this.statusTimer = null;
      this.opts.onStatusChange();
      return;
    }
    if (this.statusTimer) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = null;
      if (!this.closed) this.opts.onStatusChange?.();
    }, 500);
    this.statusTimer.unref();
  }

  /**
   * A symbolic link found by a walk or a live event. Not followed (the default), or pointing
   * anywhere but at a file inside a watched root: skipped, logged once, counted. Else the file
   * it points at is observed under the link's path.
   */
  private link(root: RootSpec, relPath: string, index: Map<string, FileStat> | null, rawRelPath?: Buffer): void {
    if (this.closed) return;
    const abs = rawRelPath ? rawJoin(root.path, rawRelPath) : path.join(root.path, ...relPath.split('/'));
    let reason: string | null = root.followSymlinks ? null : 'a symbolic link: not archived (followSymlinks: false)';
    let stats: Stats | null = null;
    if (reason === null) {
      try {
        const real = realpathSync(abs);
        stats = statSync(abs);
        if (!this.insideARoot(real)) reason = 'a symbolic link to outside the watched roots: not archived';
        else if (!stats.isFile()) reason = 'a symbolic link to a folder or special file: not archived (links are followed to files only)';
      } catch {
        reason = 'a dangling symbolic link: not archived';
      }
    }
    if (reason === null && stats) {
      this.observe(root, relPath, stats, index, rawRelPath);
      return;
    }
    let seen = this.skippedLinks.get(root.name);
    if (!seen) this.skippedLinks.set(root.name, (seen = new Set()));
    if (seen.has(relPath)) return;
    seen.add(relPath);
    this.opts.log.info({ root: root.name, relPath, reason }, 'symbolic link skipped');
    this.statusChanged();
  }

  private insideARoot(real: string): boolean {
    for (const r of this.opts.roots) {
      if (this.rootStates.get(r.name)?.present === false) continue;
      let rp: string;
      try {
        rp = realpathSync(r.path);
      } catch {
        continue;
      }
      if (real === rp || real.startsWith(rp.endsWith(path.sep) ? rp : rp + path.sep)) return true;
    }
    return false;
  }

  private async stopWatching(r: RootSpec, st: RootState): Promise<void> {
    const w = st.watcher;
    st.watcher = null;
    if (!w) return;
    const i = this.watchers.indexOf(w);
    if (i >= 0) this.watchers.splice(i, 1);
    await w.close().catch((e: unknown) => this.opts.log.warn({ err: e, root: r.name }, 'cannot close the watcher of a vanished folder'));
  }

  /**
   * Marks a ready item as taken. Its stat is kept a while: a scan whose journal index was read
   * before the archiver recorded it must not find it "changed" and declare it ready again.
   */
  taken(root: string, relPath: string): void {
    const key = keyOf(root, relPath);
    const st = this.ready.get(key);
    this.ready.delete(key);
    if (st) this.recentlyTaken.set(key, { stat: st, at: Date.now() });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    if (this.statusTimer) clearTimeout(this.statusTimer);
    await Promise.all([...this.watchers.map((w) => w.close()), this.opts.prewalk?.close()]);
  }

  private startSweeper(): void {
    const t = setInterval(() => void this.sweep(), this.sweepMs);
    t.unref();
    this.timers.push(t);
  }

  /**
   * The kernel's inotify limit ran out under `root` (ENOSPC: watches; EMFILE: instances): says
   * the exact sysctl to raise, computed from what is under the root, and the line that keeps it;
   * the root is walked every `every` ms meanwhile, and `status` shows it.
   */
  private async adviseLimit(root: RootSpec, limit: InotifyLimit, every: number, err: NodeJS.ErrnoException): Promise<void> {
    const [current, { folders, files }] = await Promise.all([readInotifyLimit(limit), countWatched(root.path, (rel) => root.filter.skipsDir(rel))]);
    // Folders only need a watch of their own, except on a polled root (see newWatcher).
    const advice = inotifyAdvice(limit, current, root.polling ? folders + files : folders);
    const what = limit === 'max_user_watches' ? 'inotify watches ran out' : 'inotify instances ran out';
    const polled = `${what} (fs.inotify.${limit} is ${current ?? 'unknown'}); walked every ${Math.round(every / 1000)} s until \`${advice.sysctl}\` and a restart`;
    const st = this.rootStates.get(root.name);
    if (st) st.polled = polled;
    this.opts.log.error(
      { err, root: root.name, folders, files, limit: `fs.inotify.${limit}`, current, sysctl: advice.sysctl, persist: `${advice.persist} in ${SYSCTL_FILE}`, rescanMs: every },
      `${what} (fs.inotify.${limit} is ${current ?? 'unknown'}; this root has ${folders} folders, a watch each, and ${files} files): changes under it may go unseen, so it is walked every ${Math.round(every / 1000)} s instead. Raise the limit as root with \`${advice.sysctl}\`, keep it with the line \`${advice.persist}\` in ${SYSCTL_FILE}, and restart; or set polling: true for this root`,
    );
    this.statusChanged(true);
  }

  /**
   * A root's first walk in watch mode, and how it is watched live. Folders only (not polled), with
   * a chokidar that has the steps of folderWatchOf: the walk has each folder watched just before
   * it reads it, so the walk and the set-up are one pass and the root is watched live when the walk
   * ends (null). Else the walk comes first, and the function returned sets watching up in the
   * background (watchRoot). Resolves when the walk is done.
   */
  private async firstWalk(root: RootSpec): Promise<(() => Promise<void>) | null> {
    const since = Date.now();
    const watcher = this.newWatcher(root);
    const watchFolder = root.polling
      ? null
      : folderWatchOf(watcher, (err) => this.opts.log.warn({ root: root.name, err }, 'cannot read a changed folder: the next scan looks again'));
    // Walked by the walk's worker (prewalk.ts) while the pipeline started: each folder is watched
    // here after the worker read it, so one more walk, once all are watched, catches what came
    // in between. Should the worker fail, this thread walks, each folder watched before its read.
    const run = watchFolder ? (this.opts.prewalk?.take(root.name) ?? null) : null;
    if (run) return (await this.rescan(root, watchFolder!, run)) ? () => this.catchUpPrewalked(root, watcher, run) : null;
    await this.rescan(root, watchFolder ?? undefined);
    return watchFolder ? null : () => this.watchRoot(root, watcher, since);
  }

  /**
   * After a first walk that came from the walk's worker (see firstWalk): that worker walks the
   * root once more and sends what was stamped since its first walk began (see prewalk.ts); a
   * folder made since and not yet watched is watched and walked (catchUpDir). Then `watching`.
   * Should the worker fail, the same walk runs here (catchUpRoot).
   */
  private async catchUpPrewalked(root: RootSpec, watcher: FSWatcher, run: PrewalkRun): Promise<void> {
    if (this.closed) return;
    try {
      for await (const b of run.catchUp(run.startedAt - CTIME_SLACK_MS)) {
        if (this.closed) return;
        for (const relDir of b.dirs) {
          const abs = path.join(root.path, ...relDir.split('/'));
          if (!isTracked(watcher, abs, true)) void this.catchUpDir(root, watcher, abs);
        }
        // A name that is not valid UTF-8 is not the worker's: its folder was walked here (see replay), and the rescans find later ones.
        replayFiles(root, b, (relPath, st) => this.observe(root, relPath, st, null));
        for (const relPath of keptLinks(root, b)) this.link(root, relPath, null);
        for (const e of b.errors) {
          if (e.code !== 'ENOENT') this.opts.log.warn({ root: root.name, relPath: e.relPath, err: errorOf(e) }, 'cannot read while scanning');
        }
        await yieldToLoop();
      }
    } catch (e) {
      if (this.closed) return;
      this.opts.log.warn({ root: root.name, err: e }, 'the walk on a worker thread failed: walking here');
      await this.catchUpRoot(root, run.startedAt);
    }
    this.watchingNow(root);
  }

  /**
   * Watching set up after the first walk, through chokidar's `add` (a polled root, or a chokidar
   * without the steps of folderWatchOf). `since`: when the root's first walk began (see catchUpRoot).
   */
  private async watchRoot(root: RootSpec, watcher: FSWatcher, since: number): Promise<void> {
    if (this.closed) return;
    const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    watcher.add(root.path);
    await ready;
    if (!root.polling) await this.addFolders(root, watcher);
    // A file created after the first walk read its folder and before chokidar watched that
    // folder is seen by neither; one walk right after 'ready' closes that window.
    await this.catchUpRoot(root, since);
    this.watchingNow(root);
  }

  /** A root is watched live: said, and walked once more a little later. */
  private watchingNow(root: RootSpec): void {
    const log = this.opts.log.child({ root: root.name });
    if (!this.closed) log.info({ waiting: this.candidates.size }, 'watching');
    // And one more a little later: a folder made in the first moments after 'ready' has been
    // seen to raise no event at all (its files then waited for the next change beside it, or
    // the periodic rescan). Found by the end-to-end cloud test; see docs/reliability.md.
    sleep(SETTLE_WALK_MS, undefined, { ref: false })
      .then(() => (this.closed ? undefined : this.rescan(root)))
      .catch((e: unknown) => log.error({ err: e }, 'scan failed'));
  }

  /**
   * The root's chokidar watcher, with its listeners, watching nothing yet: the folders are added
   * by the first walk (folderWatchOf) or by watchRoot.
   */
  private newWatcher(root: RootSpec): FSWatcher {
    const log = this.opts.log.child({ root: root.name });
    let warnedLimit = false;
    // Issue 19 item 5: a file watched by chokidar costs ~7 KB (its entry, its own fs.watch and
    // stat), a million files ~7 GB. A folder's inotify watch reports every change of its
    // children, so chokidar is given the folders only and each child event is stat'ed here
    // (see childEvent). Polling watches a path's own stat, so a polled root keeps per-file watches.
    const foldersOnly = !root.polling;
    const watcher = chokidar.watch([], {
      // The walk in `watch` found what is there; chokidar reports changes from now on.
      ignoreInitial: true,
      alwaysStat: true,
      followSymlinks: false,
      usePolling: root.polling,
      interval: root.pollIntervalMs,
      binaryInterval: root.pollIntervalMs,
      ignorePermissionErrors: true,
      // Folders only: each folder is added by the first walk (or addFolders; a new one by
      // catchUpDir), instead of chokidar walking the tree with every folder's read in flight at once.
      ...(foldersOnly ? { depth: 0 } : {}),
      ignored: (p: string, stats?: Stats) => {
        // Folders only: a file or link then costs chokidar nothing (no entry, no watch of its
        // own), and its folder's watch still reports it (see the 'raw' listener).
        if (foldersOnly && stats && !stats.isDirectory()) return true;
        const rel = relativePosix(root.path, p);
        if (rel === null) return false;
        if (stats?.isDirectory()) return root.filter.skipsDir(rel);
        if (stats?.isFile()) return root.filter.byPath(rel) !== null;
        const r = root.filter.byPath(rel);
        return r === 'hidden' || r === 'temp' || root.filter.skipsDir(rel);
      },
    });
    if (foldersOnly) readFoldersByType(watcher);
    this.watchers.push(watcher);
    const state = this.rootStates.get(root.name);
    if (state) {
      state.watcher = watcher;
      delete state.polled; // a new watcher: polled again only if the limit runs out again
    }
    const onFile = (p: string, stats?: Stats) => {
      const rel = relativePosix(root.path, p);
      if (rel !== null && stats?.isSymbolicLink()) return this.link(root, rel, null);
      if (rel === null || !stats?.isFile()) return;
      // A live event: the archiver compares it with the journal.
      this.observe(root, rel, stats, null);
    };
    // A new folder: chokidar reads it before it attaches its watch, so a file written in between
    // is reported by nobody. Walk it again once the watch is attached.
    watcher.on('addDir', (p: string) => {
      if (relativePosix(root.path, p) !== null) void this.catchUpDir(root, watcher, p);
    });
    // A folder chokidar has not reported (made in the same window, one level up): the same.
    // With folders only, the files' own events too: a folder's watch names the child that was
    // made, written, chmod'ed, renamed or deleted ('rename' or 'change'), and childEvent stats it.
    watcher.on('raw', (event: string, evPath: string, details: unknown) => {
      const watched = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
      if (!evPath || typeof watched !== 'string') return;
      if (event !== 'rename' && !(foldersOnly && event === 'change')) return;
      const abs = path.resolve(watched, evPath);
      const rel = relativePosix(root.path, abs);
      if (rel === null || this.catchingUp.has(abs)) return;
      // A name that is not valid UTF-8 arrives mangled (U+FFFD) and names no file: walk its
      // folder, which reads names as bytes.
      if (evPath.includes('\uFFFD')) {
        const dir = path.dirname(abs);
        if (relativePosix(root.path, dir) === null) void this.rescan(root);
        else void this.catchUpDir(root, watcher, dir);
        return;
      }
      this.childEvent(root, watcher, abs, rel, event === 'rename', foldersOnly);
    });
    watcher.on('add', onFile);
    watcher.on('change', onFile);
    watcher.on('unlink', (p: string) => {
      const rel = relativePosix(root.path, p);
      if (rel !== null) this.forget(root.name, (k) => k === rel);
    });
    watcher.on('unlinkDir', (p: string) => {
      const rel = relativePosix(root.path, p);
      if (rel !== null) this.forget(root.name, (k) => k.startsWith(`${rel}/`));
      // The root itself: a missing root is a state of its own (see checkRoots).
      else if (path.resolve(p) === path.resolve(root.path)) void this.checkRoots();
    });
    watcher.on('error', (e: unknown) => {
      const err = e as NodeJS.ErrnoException;
      const limit = inotifyLimitOf(err.code);
      if (limit === null) {
        log.warn({ err }, 'watcher error');
        return;
      }
      if (warnedLimit) return;
      warnedLimit = true;
      // Walked at least once a minute; a periodic rescan of every root as frequent covers it.
      const every = this.opts.rescanMs > 0 ? Math.min(this.opts.rescanMs, LIMIT_POLL_MS) : LIMIT_POLL_MS;
      if (this.opts.rescanMs <= 0 || this.opts.rescanMs > every) {
        const t = setInterval(() => void this.rescan(root), every);
        t.unref();
        this.timers.push(t);
      }
      void this.adviseLimit(root, limit, every, err);
    });
    return watcher;
  }

  /**
   * The walk of a root once its watches are set up: what changed after its first walk (which
   * began at `since`) read a folder and before that folder's watch was attached raised no event.
   * Only what the kernel stamped since can have changed: a file made, written, truncated,
   * chmod'ed or renamed in has its ctime set then, and so has a folder made or moved in, or whose
   * entries changed: every file under such a folder is taken, whatever its ctime (a folder moved
   * in keeps its files' old ctimes). The rest is not looked at again, so
   * this walk needs no journal index (reading it is most of a first walk's cost at a million
   * files): what it finds is a live event, which the archiver compares with the journal. A
   * ctime from a clock far behind (a network share's) is missed here and found by the walk
   * SETTLE_WALK_MS later, which compares every file with the journal.
   */
  private async catchUpRoot(root: RootSpec, since: number): Promise<void> {
    const after = since - CTIME_SLACK_MS;
    const parentOf = (rel: string) => rel.slice(0, Math.max(0, rel.lastIndexOf('/')));
    /** Folders made or moved in since (relative paths), and every folder under one. */
    const fresh = new Set<string>();
    await walkTree(
      root.path,
      root.filter,
      (relPath, stats, rawRelPath) => {
        if (stats.ctimeMs >= after || fresh.has(parentOf(relPath))) this.observe(root, relPath, stats, null, rawRelPath);
      },
      (relPath, err) => {
        if (err.code !== 'ENOENT') this.opts.log.warn({ root: root.name, relPath, err }, 'cannot read while scanning');
      },
      {
        onLink: ({ relPath, rawRelPath }) => this.link(root, relPath, null, rawRelPath),
        onDir: (relDir) => {
          if (fresh.has(parentOf(relDir))) return void fresh.add(relDir);
          let ctimeMs = Infinity; // a folder that cannot be stat'ed here (a name not valid UTF-8): all of it
          try {
            ctimeMs = lstatSync(path.join(root.path, ...relDir.split('/'))).ctimeMs;
          } catch {
            // gone: nothing under it to take; else taken whole
          }
          if (ctimeMs >= after) fresh.add(relDir);
        },
      },
    );
  }

  /**
   * Folders only: hands every folder under the root (but the root, which chokidar watches
   * already) to chokidar, at most ADD_WINDOW waiting for their watch at a time. A folder is read
   * for its subfolders only once its own watch is attached: one made before is in the read, one
   * made after raises an event (see catchUpDir). A folder that cannot be read is skipped
   * (chokidar could not watch it either).
   */
  private async addFolders(root: RootSpec, watcher: FSWatcher): Promise<void> {
    const closers = (watcher as unknown as ChokidarInternals)._closers;
    const pending = new Set<Promise<void>>();
    const toRead = [root.path];
    while ((toRead.length > 0 || pending.size > 0) && !this.closed) {
      const dir = toRead.pop();
      if (dir === undefined) {
        await Promise.race(pending);
        continue;
      }
      let entries: Dirent[];
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        continue; // gone or unreadable: nothing to watch under it
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        const abs = path.join(dir, e.name);
        const rel = relativePosix(root.path, abs);
        if (rel === null || root.filter.skipsDir(rel)) continue;
        if (this.catchingUp.has(abs)) continue; // a new folder: catchUpDir adds it and what is under it
        if (!isTracked(watcher, abs, true)) watcher.add(abs);
        if (!(closers instanceof Map)) {
          toRead.push(abs);
          continue;
        }
        const p: Promise<void> = waitForWatch(watcher, abs, () => this.closed).then(() => {
          pending.delete(p);
          toRead.push(abs);
        });
        pending.add(p);
        if (pending.size >= ADD_WINDOW) await Promise.race(pending);
      }
    }
  }

  /**
   * One event of a watched folder's child (`abs`), from the folder's own watch. Stat'ed once per
   * burst: events that come while its stat is in flight make one more stat after it, so a file
   * written in many chunks costs a stat per round trip, not per write. A folder made or moved in
   * is caught up (see catchUpDir); a file or link is observed as a live event. With `foldersOnly`
   * (chokidar keeps no entry of its own for files) a child that is gone is forgotten here, as
   * chokidar's `unlink` does otherwise.
   */
  private childEvent(root: RootSpec, watcher: FSWatcher, abs: string, rel: string, rename: boolean, foldersOnly: boolean): void {
    if (this.closed) return;
    if (this.childStats.has(abs)) {
      this.childAgain.set(abs, rename || (this.childAgain.get(abs) ?? false));
      return;
    }
    this.childStats.add(abs);
    lstat(abs)
      .then(
        (s) => {
          if (this.closed) return;
          if (s.isDirectory()) {
            if (rename && !root.filter.skipsDir(rel)) void this.catchUpDir(root, watcher, abs);
          } else if (s.isFile()) {
            // A file renamed over another with the same size and mtime: chokidar reports no change
            // (it compares mtimes), but it is another file (inode, ctime).
            if (root.filter.byPath(rel) === null) this.observe(root, rel, s, null);
          } else if (s.isSymbolicLink() && foldersOnly) {
            if (root.filter.byPath(rel) === null) this.link(root, rel, null);
          }
        },
        (e: NodeJS.ErrnoException) => {
          if (!foldersOnly || this.closed) return;
          // Gone (deleted, moved away; a folder's own event names the folder): what waited for it goes.
          if (e.code === 'ENOENT' || e.code === 'ENOTDIR') this.forget(root.name, (k) => k === rel || k.startsWith(`${rel}/`));
          else this.opts.log.warn({ root: root.name, relPath: rel, err: e }, 'cannot stat a changed file: the next scan looks again');
        },
      )
      .finally(() => {
        this.childStats.delete(abs);
        const again = this.childAgain.get(abs);
        if (again === undefined) return;
        this.childAgain.delete(abs);
        this.childEvent(root, watcher, abs, rel, again, foldersOnly);
      });
  }

  /**
   * Walks a folder chokidar has just found, once its watch is attached (chokidar's read of a new
   * folder comes before its watch: a file written in between would wait for the rescan). A
   * folder the walk finds that chokidar does not track is added to the watcher and caught up the
   * same way. Files found are live events (the archiver compares them with the journal).
   */
  private async catchUpDir(root: RootSpec, watcher: FSWatcher, abs: string): Promise<void> {
    if (this.catchingUp.has(abs) || this.closed) return;
    this.catchingUp.add(abs);
    try {
      // Folders only (depth 0): chokidar reports a new folder but does not watch it by itself.
      if (!root.polling && !isTracked(watcher, abs, true)) watcher.add(abs);
      await waitForWatch(watcher, abs, () => this.closed);
      const rel = relativePosix(root.path, abs);
      if (rel === null || this.closed) return;
      await this.walkNewDir(root, watcher, rel);
      // Once more after a pause: chokidar's record of an attached watch is internal, and on a
      // busy machine the first walk may still come before the watch sees anything. A new folder
      // is walked twice; a file written into it is never left for the rescan.
      await sleep(NEW_DIR_SECOND_WALK_MS, undefined, { ref: false });
      if (!this.closed) await this.walkNewDir(root, watcher, rel);
    } finally {
      this.catchingUp.delete(abs);
    }
  }

  /** One walk of a new folder (see catchUpDir); folders chokidar does not track are added to it. */
  private async walkNewDir(root: RootSpec, watcher: FSWatcher, rel: string): Promise<void> {
    const untracked: string[] = [];
    await walkTree(
      root.path,
      root.filter,
      (relPath, stats, rawRelPath) => this.observe(root, relPath, stats, null, rawRelPath),
      (relPath, err) => {
        if (err.code !== 'ENOENT') this.opts.log.warn({ root: root.name, relPath, err }, 'cannot read a new folder');
      },
      {
        from: rel,
        onLink: ({ relPath, rawRelPath }) => this.link(root, relPath, null, rawRelPath),
        onDir: (relDir) => {
          const dir = path.join(root.path, ...relDir.split('/'));
          if (!isTracked(watcher, dir, !root.polling)) untracked.push(dir);
        },
      },
    );
    for (const dir of untracked) {
      if (this.closed) return;
      if (root.polling) watcher.add(dir); // else catchUpDir adds it
      void this.catchUpDir(root, watcher, dir);
    }
  }

  /**
   * A full scan of a root: new and changed files (against the store) become candidates. With
   * `watchFolder` (a root's first walk, see firstWalk), each folder is watched before it is read:
   * the root first, each other one as soon as its parent's read finds it. With `prewalked`, what
   * the walk's worker found stands for the walk (each folder watched as it comes, after its read
   * there); should the worker fail, the walk runs here after all. Resolves to whether the
   * worker's walk was the whole of it.
   */
  async rescan(root: RootSpec, watchFolder?: (abs: string) => void, prewalked?: PrewalkRun): Promise<boolean> {
    // The walk that sets up the watches must walk itself: it waits out one already walking
    // (a periodic rescan of a root that vanished and came back while it ran).
    while (watchFolder && this.rescanning.has(root.name) && !this.closed) await sleep(20);
    if (this.rescanning.has(root.name) || this.closed) return false;
    // A missing root is looked for by checkRoots; a walk of it would only fail.
    if (this.rootStates.get(root.name)?.present === false) return false;
    this.rescanning.add(root.name);
    let replayed = false;
    try {
      // The journal's index is read while the walk runs (the SQLite journal reads a large one on
      // a worker thread): what the walk finds before the index is there waits in `early`, as a
      // stat (not the whole Stats), and is compared once it is.
      let index: Map<string, FileStat> | null = null;
      let failed: { error: unknown } | null = null;
      const reading = this.opts.index(root.name).then(
        (i) => void (index = i),
        (e: unknown) => void (failed = { error: e }),
      );
      const early: Array<{ relPath: string; st: ObservedStat | null; rawRelPath: Buffer | undefined }> = [];
      watchFolder?.(root.path);
      const onFile = (relPath: string, stats: Stats | ObservedStat, rawRelPath: Buffer | undefined): void => {
        if (index) this.observe(root, relPath, stats, index, rawRelPath);
        else if (!failed) early.push({ relPath, st: 'isFile' in stats ? fileStatOf(stats) : stats, rawRelPath });
      };
      const onError = (relPath: string, err: NodeJS.ErrnoException): void => {
        // Gone since its parent's read: nothing there to archive.
        if (err.code !== 'ENOENT') this.unreadable++;
        this.opts.log.warn({ root: root.name, relPath, err }, 'cannot read while scanning');
      };
      const walkOpts: WalkOptions = {
        onLink: ({ relPath, rawRelPath }) => {
          if (index) this.link(root, relPath, index, rawRelPath);
          else if (!failed) early.push({ relPath, st: null, rawRelPath });
        },
        ...(watchFolder && {
          onDir: (relDir: string, rawRelDir: Buffer | undefined) => {
            // A name that is not valid UTF-8 names no folder to chokidar (its files are found
            // by the rescans). A new folder being caught up is watched by catchUpDir.
            if (rawRelDir) return;
            const abs = path.join(root.path, ...relDir.split('/'));
            if (!this.catchingUp.has(abs)) watchFolder(abs);
          },
        }),
      };
      if (prewalked) {
        try {
          await this.replay(root, prewalked, onFile, onError, walkOpts);
          replayed = true;
        } catch (e) {
          if (this.closed) return false;
          if ((e as { rootUnread?: boolean }).rootUnread) this.opts.log.debug({ root: root.name, err: e }, 'the walk on a worker thread could not read the root: walking here');
          else this.opts.log.warn({ root: root.name, err: e }, 'the walk on a worker thread failed: walking here');
        }
      }
      if (!replayed) await walkTree(root.path, root.filter, onFile, onError, walkOpts);
      await reading;
      if (failed !== null || index === null) {
        if (this.closed) return replayed;
        const e = (failed as { error: unknown } | null)?.error;
        if (this.opts.onError) this.opts.onError(e);
        else this.opts.log.error({ err: e, root: root.name }, 'cannot read the journal for a scan');
        return replayed;
      }
      for (const { relPath, st, rawRelPath } of early) {
        if (st) this.observe(root, relPath, st, index, rawRelPath);
        else this.link(root, relPath, index, rawRelPath);
      }
    } finally {
      this.rescanning.delete(root.name);
    }
    return replayed;
  }

  /**
   * Hands what the walk's worker found to a walk's callbacks, as walkTree would have called them
   * (the filter's globs applied here); a folder with a name that is not valid UTF-8 is walked
   * here, by walkTree. Throws when the worker failed.
   */
  private async replay(
    root: RootSpec,
    run: PrewalkRun,
    onFile: (relPath: string, stats: Stats | ObservedStat, rawRelPath: Buffer | undefined) => void,
    onError: (relPath: string, err: NodeJS.ErrnoException) => void,
    opts: WalkOptions,
  ): Promise<void> {
    // The root is watched (rescan): from now on the worker reads a folder once it is watched here.
    let watched = 0;
    run.watched(watched);
    for await (const b of run.batches) {
      if (this.closed) return;
      if (opts.onDir) for (const relDir of b.dirs) opts.onDir(relDir, undefined);
      watched += b.dirs.length;
      run.watched(watched);
      replayFiles(root, b, (relPath, st) => onFile(relPath, st, undefined));
      if (opts.onLink) for (const relPath of keptLinks(root, b)) opts.onLink({ relPath });
      for (const e of b.errors) {
        // The root itself (made, or mounted, after the worker looked): walked here instead,
        // which says what is wrong with it, if anything still is.
        if (e.relPath === '') throw Object.assign(errorOf(e), { rootUnread: true });
        onError(e.relPath, errorOf(e));
      }
      for (const relDir of b.raw) await walkTree(root.path, root.filter, onFile, onError, { ...opts, from: relDir });
      await yieldToLoop();
    }
  }

  private observe(root: RootSpec, relPath: string, stats: Stats | ObservedStat, index: Map<string, FileStat> | null, rawRelPath?: Buffer): void {
    if (this.closed) return;
    const known = index?.get(relPath);
    // A file as the journal has it, the common case of a restart, is let go before anything is
    // made for it (no stat object, no key unless a candidate might be there); also one the walk
    // kept until the index came (`early` in rescan: a million at a million files when the index
    // comes after the walk).
    if (known && ('isFile' in stats ? journaled(known, stats) : sameStat(known, stats)) && (this.candidates.size === 0 || !this.candidates.has(keyOf(root.name, relPath)))) return;
    const st = 'isFile' in stats ? fileStatOf(stats) : stats;
    const key = keyOf(root.name, relPath);
    if (known && sameStat(known, st) && !this.candidates.has(key)) return;
    const existing = this.candidates.get(key);
    if (existing && sameStat(existing.item, st)) return;
    const readyStat = this.ready.get(key);
    if (readyStat && sameStat(readyStat, st)) return;
    const takenStat = index !== null ? this.recentlyTaken.get(key) : undefined;
    if (takenStat && sameStat(takenStat.stat, st)) return;
    if (this.ready.delete(key)) this.opts.onUnready(root.name, relPath);
    const item: FileItem = { root: root.name, rootPath: root.path, relPath, ...(rawRelPath ? { rawRelPath } : {}), ...st };
    const now = Date.now();
    this.candidates.delete(key);
    if (index !== null && now - st.mtimeMs >= this.opts.stableMs) {
      this.markReady(key, item);
      return;
    }
    this.candidates.set(key, { item, changedAt: now });
  }

  private forget(root: string, match: (relPath: string) => boolean): void {
    const prefix = `${root}\u0000`;
    for (const key of [...this.candidates.keys(), ...this.ready.keys()]) {
      if (!key.startsWith(prefix) || !match(key.slice(prefix.length))) continue;
      this.candidates.delete(key);
      if (this.ready.delete(key)) this.opts.onUnready(root, key.slice(prefix.length));
    }
  }

  private markReady(key: string, item: FileItem): void {
    this.ready.set(key, item);
    this.opts.onReady(item);
  }

  /** Re-stats every candidate whose stat has been unchanged for stableMs; same stat → ready. */
  private async sweep(): Promise<void> {
    if (this.sweeping || this.closed) return;
    this.sweeping = true;
    try {
      const now = Date.now();
      for (const [key, t] of this.recentlyTaken) {
        if (now - t.at < TAKEN_KEEP_MS) break;
        this.recentlyTaken.delete(key);
      }
      const due: Array<[string, Candidate]> = [];
      // Insertion order is changedAt order: every update re-inserts at the end.
      for (const entry of this.candidates) {
        if (entry[1].changedAt + this.opts.stableMs > now) break;
        due.push(entry);
        if (due.length >= 512) break;
      }
      await Promise.all(
        due.map(async ([key, c]) => {
          let st: FileStat | null = null;
          try {
            const s = await stat(c.item.rawRelPath ? rawJoin(c.item.rootPath, c.item.rawRelPath) : `${c.item.rootPath}/${c.item.relPath}`);
            st = s.isFile() ? fileStatOf(s) : null;
          } catch {
            st = null;
          }
          if (this.candidates.get(key) !== c) return; // an event replaced it meanwhile
          this.candidates.delete(key);
          if (st === null) return;
          if (!sameStat(st, c.item)) {
            this.candidates.set(key, { item: { ...c.item, ...st }, changedAt: Date.now() });
            return;
          }
          this.markReady(key, c.item);
        }),
      );
    } finally {
      this.sweeping = false;
    }
  }
}
