/**
 * The folders of the local target's archive: the root made on first use, every folder of a
 * path made (and fsynced) once and remembered, and the fsyncs of a folder after a rename shared
 * by the puts into it.
 */
import { mkdir, open, stat as fsStat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { describe, errnoOf } from '../kit/classify.js';
import { localError } from './classify.js';

/** Folders remembered as existing (see ensureDir); past this many the memory starts afresh. */
const MAX_KNOWN_DIRS = 10_000;

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

export class LocalFolders {
  #rootReady: Promise<void> | null = null;
  readonly #knownDirs = new Set<string>();
  readonly #dirSyncs = new Map<string, { running: Promise<void> | null; next: Promise<void> | null }>();

  constructor(
    private readonly targetId: string,
    /** The archive root, absolute. */
    readonly root: string,
    private readonly log: Logger,
  ) {}

  /** Forgets every folder remembered: the next put into one looks again (it may have gone). */
  forget(): void {
    this.#knownDirs.clear();
  }

  ensureRoot(): Promise<void> {
    const root = this.root;
    this.#rootReady ??= (async () => {
      try {
        const made = await mkdir(root, { recursive: true });
        if (made !== undefined) this.log.info({ root }, 'archive root created');
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

  /**
   * mkdir -p `dir` under the root, fsyncing each folder that gained an entry. A folder made or
   * found here is remembered, so the next put into it costs no stat and no mkdir; a put that
   * then finds it gone (ENOENT) forgets every folder and comes back here (see upload.ts).
   */
  async ensureDir(dir: string): Promise<void> {
    if (this.#knownDirs.has(dir)) return;
    const root = this.root;
    await this.ensureRoot();
    try {
      const st = await fsStat(root);
      if (!st.isDirectory()) throw localError(this.targetId, 'archive-root-gone', 'fatal', `the archive root ${root} is not a folder`);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') {
        throw localError(this.targetId, 'archive-root-gone', 'fatal', `the archive root ${root} has disappeared (an unmounted disk?)`, err);
      }
      throw err;
    }
    if (dir !== root) {
      const first = await mkdir(dir, { recursive: true });
      // Each new folder is an entry in its parent: fsync from the deepest parent up to the one
      // that already existed, so the path to the file survives a power cut as well as the file.
      if (first !== undefined) {
        for (let d = dir; ; d = dirname(d)) {
          await fsyncDir(dirname(d));
          if (d === first || dirname(d) === d) break;
        }
      }
    }
    if (this.#knownDirs.size >= MAX_KNOWN_DIRS) this.#knownDirs.clear();
    this.#knownDirs.add(dir);
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
    if (s.next) return s.next;
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
        if (!state.next) dirSyncs.delete(dir);
      });
    state.next = p;
    return p;
  }
}
