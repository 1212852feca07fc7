import { stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import chokidar, { type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import type { PathFilter } from '../archive/filters.js';
import type { FileItem, FileStat } from '../archive/item.js';
import { relativePosix, walkTree } from './walk.js';

export interface RootSpec {
  name: string;
  /** Absolute path. */
  path: string;
  filter: PathFilter;
  polling: boolean;
  pollIntervalMs: number;
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
   * The journal's index could not be read for a scan: nothing can be reconciled, and the scan
   * is given up. Default: logged.
   */
  onError?(error: unknown): void;
}

interface Candidate {
  item: FileItem;
  /** When its stat was last seen to change (epoch ms). */
  changedAt: number;
}

const keyOf = (root: string, relPath: string) => `${root}\u0000${relPath}`;
const sameStat = (a: FileStat, b: FileStat) => a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;

/** File stat as the journal compares it: whole milliseconds, so every store keeps it exactly. */
export function fileStatOf(stats: Stats): FileStat & { dev: number } {
  return { size: stats.size, mtimeMs: Math.floor(stats.mtimeMs), ino: stats.ino, dev: stats.dev };
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
  /** Files declared ready and not yet taken, with the stat they were declared with. */
  private readonly ready = new Map<string, FileStat>();
  private readonly watchers: FSWatcher[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly rescanning = new Set<string>();
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

  /** Files waiting to become stable. */
  get waiting(): number {
    return this.candidates.size;
  }

  /**
   * Watch mode. Each root is first reconciled with the journal by a plain stat walk (new and
   * changed files become candidates); the returned promise resolves when every root's walk is
   * done. Live watching (chokidar, with no initial events of its own) is set up after that, in
   * the background: on a large tree it takes many times the walk, and the daemon need not wait
   * for it to archive what the walk found. Once a root's watches are ready it is walked once
   * more, so a file made between its walk and its watch is not missed; then `watching` is
   * logged and `live` resolves.
   */
  async watch(): Promise<void> {
    this.startSweeper();
    for (const r of this.opts.roots) {
      await this.rescan(r);
      this.opts.log.info({ root: r.name, waiting: this.candidates.size }, 'scanned');
    }
    this.live = Promise.all(this.opts.roots.map((r) => this.watchRoot(r))).then(() => undefined);
    this.live.catch((e: unknown) => this.opts.log.error({ err: e }, 'cannot set up watching; changes are found by the periodic rescan only'));
    if (this.opts.rescanMs > 0) {
      const t = setInterval(() => {
        for (const r of this.opts.roots) void this.rescan(r);
      }, this.opts.rescanMs);
      t.unref();
      this.timers.push(t);
    }
  }

  /**
   * Once mode: one scan of every root (no watching); resolves when every file found is ready.
   */
  async scanOnce(): Promise<void> {
    this.startSweeper();
    for (const r of this.opts.roots) await this.rescan(r);
    while (this.candidates.size > 0 && !this.closed) {
      await new Promise((res) => setTimeout(res, this.sweepMs));
    }
  }

  /** Marks a ready item as taken (it is no longer tracked here). */
  taken(root: string, relPath: string): void {
    this.ready.delete(keyOf(root, relPath));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await Promise.all(this.watchers.map((w) => w.close()));
  }

  private startSweeper(): void {
    const t = setInterval(() => void this.sweep(), this.sweepMs);
    t.unref();
    this.timers.push(t);
  }

  private async watchRoot(root: RootSpec): Promise<void> {
    const log = this.opts.log.child({ root: root.name });
    let warnedEnospc = false;
    if (this.closed) return;
    const watcher = chokidar.watch(root.path, {
      // The walk in `watch` found what is there; chokidar reports changes from now on.
      ignoreInitial: true,
      alwaysStat: true,
      followSymlinks: false,
      usePolling: root.polling,
      interval: root.pollIntervalMs,
      binaryInterval: root.pollIntervalMs,
      ignorePermissionErrors: true,
      ignored: (p: string, stats?: Stats) => {
        const rel = relativePosix(root.path, p);
        if (rel === null) return false;
        if (stats?.isDirectory()) return root.filter.skipsDir(rel);
        if (stats?.isFile()) return root.filter.byPath(rel) !== null;
        const r = root.filter.byPath(rel);
        return r === 'hidden' || r === 'temp' || root.filter.skipsDir(rel);
      },
    });
    this.watchers.push(watcher);
    const onFile = (p: string, stats?: Stats) => {
      const rel = relativePosix(root.path, p);
      if (rel === null || !stats?.isFile()) return;
      // A live event: the archiver compares it with the journal.
      this.observe(root, rel, stats, null);
    };
    watcher.on('add', onFile);
    watcher.on('change', onFile);
    watcher.on('unlink', (p: string) => {
      const rel = relativePosix(root.path, p);
      if (rel !== null) this.forget(root.name, (k) => k === rel);
    });
    watcher.on('unlinkDir', (p: string) => {
      const rel = relativePosix(root.path, p);
      if (rel !== null) this.forget(root.name, (k) => k.startsWith(`${rel}/`));
    });
    watcher.on('error', (e: unknown) => {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOSPC') {
        if (!warnedEnospc) {
          warnedEnospc = true;
          const every = this.opts.rescanMs > 0 ? this.opts.rescanMs : 60_000;
          log.error(
            { err, rescanMs: every },
            'inotify watches ran out (fs.inotify.max_user_watches): changes under this root may go unseen; rescanning it periodically instead. Raise the limit, or set polling: true for this root',
          );
          // With a periodic rescan of every root already running, this root is covered by it.
          if (this.opts.rescanMs <= 0) {
            const t = setInterval(() => void this.rescan(root), every);
            t.unref();
            this.timers.push(t);
          }
        }
        return;
      }
      log.warn({ err }, 'watcher error');
    });
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    // A file created after the first walk read its folder and before chokidar watched that
    // folder is seen by neither; one walk right after 'ready' closes that window.
    await this.rescan(root);
    if (!this.closed) log.info({ waiting: this.candidates.size }, 'watching');
  }

  /** A full scan of a root: new and changed files (against the store) become candidates. */
  async rescan(root: RootSpec): Promise<void> {
    if (this.rescanning.has(root.name) || this.closed) return;
    this.rescanning.add(root.name);
    try {
      let index: Map<string, FileStat>;
      try {
        index = await this.opts.index(root.name);
      } catch (e) {
        if (this.closed) return;
        if (this.opts.onError) this.opts.onError(e);
        else this.opts.log.error({ err: e, root: root.name }, 'cannot read the journal for a scan');
        return;
      }
      await walkTree(
        root.path,
        root.filter,
        ({ relPath, stats }) => this.observe(root, relPath, stats, index),
        (relPath, err) => this.opts.log.warn({ root: root.name, relPath, err }, 'cannot read while scanning'),
      );
    } finally {
      this.rescanning.delete(root.name);
    }
  }

  private observe(root: RootSpec, relPath: string, stats: Stats, index: Map<string, FileStat> | null): void {
    if (this.closed) return;
    const st = fileStatOf(stats);
    const known = index?.get(relPath);
    const key = keyOf(root.name, relPath);
    if (known && sameStat(known, st) && !this.candidates.has(key)) return;
    const existing = this.candidates.get(key);
    if (existing && sameStat(existing.item, st)) return;
    const readyStat = this.ready.get(key);
    if (readyStat && sameStat(readyStat, st)) return;
    if (this.ready.delete(key)) this.opts.onUnready(root.name, relPath);
    const item: FileItem = { root: root.name, rootPath: root.path, relPath, ...st };
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
            const s = await stat(`${c.item.rootPath}/${c.item.relPath}`);
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
