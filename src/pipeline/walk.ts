import { type Dirent, lstatSync, readdirSync, type Stats } from 'node:fs';
import path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { PathFilter } from '../archive/filters.js';
import { escapeName, isUtf8Name } from '../archive/raw-name.js';

export interface WalkOptions {
  signal?: AbortSignal;
  /** Walk only this folder of the root (relative, POSIX), and what is under it. Default: all. */
  from?: string;
  /**
   * Told of every folder the walk enters (below `from`), as soon as its parent's read finds it:
   * before the folder itself is read. `rawRelPath` as for files (only when a name on the way is
   * not valid UTF-8).
   */
  onDir?: (relPath: string, rawRelPath: Buffer | undefined) => void;
  /** Told of every symbolic link the filter keeps by path (the walk itself never follows one). */
  onLink?: (e: { relPath: string; rawRelPath?: Buffer }) => void;
}

/**
 * Told of each regular file a walk keeps: its path inside the root (POSIX separators; a name
 * that is not valid UTF-8 in escaped form), its lstat, and the path as bytes only when a name in
 * it is not valid UTF-8. Arguments, not an object: a restart walks every file of every root.
 */
export type WalkFile = (relPath: string, stats: Stats, rawRelPath: Buffer | undefined) => void;

/**
 * Walks a root and reports every regular file the filter keeps by path. One folder is read
 * synchronously at a time (a synchronous stat walk is ~7× faster than an async one here), and
 * the event loop gets a turn between folders so uploads go on during a rescan.
 * The walk costs what a bare walk costs, as near as it can: a folder's entries come with their
 * types (readdir withFileTypes; Node itself lstats an entry whose type the file system does not
 * give), so only files are lstat'ed, and only those the filter keeps; the filter is asked of each
 * name as the walk descends (`byChild`), never of the whole path split again. Names are read as
 * strings, as a bare walk reads them (a Buffer per name cost a restart ~0.5 µs a file); a folder
 * with U+FFFD in a name, which is what a name that is not valid UTF-8 becomes as a string, is
 * read again as bytes, and so is every folder below such a name.
 * Symbolic links are not followed (a link loop cannot trap the walk). Folders that vanish or
 * cannot be read are reported to `onError` and skipped.
 */
export async function walkTree(
  rootPath: string,
  filter: PathFilter,
  onFile: WalkFile,
  onError: (relPath: string, error: NodeJS.ErrnoException) => void = () => undefined,
  opts: WalkOptions = {},
): Promise<void> {
  const { signal, onDir, onLink } = opts;
  const start = opts.from ?? '';
  // Every folder below is kept by its name alone, so the folder walked from must be kept whole.
  if (start !== '' && filter.skipsDir(start)) return;
  const rootDir = rootPath.length > 1 && rootPath.endsWith(path.sep) ? rootPath.slice(0, -1) : rootPath;
  // Each folder: its path inside the root, its absolute path, and its raw bytes when a name on
  // the way is not valid UTF-8 (else null).
  const stack: Array<[string, string, Buffer | null]> = [[start, start ? path.join(rootDir, start) : rootDir, null]];
  while (stack.length > 0) {
    if (signal?.aborted) return;
    const [relDir, absDir, rawDir] = stack.pop()!;
    // Names as strings (null) when every one is valid UTF-8, else as bytes (rawEntries).
    let entries: Dirent[] | null = null;
    let rawEntries: Dirent<Buffer>[] | null = null;
    try {
      if (rawDir === null) {
        entries = readdirSync(absDir, { withFileTypes: true });
        // A name that is not UTF-8 read as a string would name no file: this folder as bytes.
        if (entries.some((e) => e.name.includes('\uFFFD'))) entries = null;
      }
      if (entries === null) rawEntries = readdirSync(rawDir ? rawJoin(rootPath, rawDir) : absDir, { encoding: 'buffer', withFileTypes: true });
    } catch (e) {
      onError(relDir, e as NodeJS.ErrnoException);
      continue;
    }
    const count = entries ? entries.length : rawEntries!.length;
    for (let i = 0; i < count; i++) {
      let entry: Dirent | Dirent<Buffer>;
      let name: string;
      let raw: Buffer | null = null;
      if (entries) {
        entry = entries[i]!;
        name = entry.name;
      } else {
        const nameBytes = rawEntries![i]!.name;
        entry = rawEntries![i]!;
        const utf8 = isUtf8Name(nameBytes);
        name = utf8 ? nameBytes.toString('utf8') : escapeName(nameBytes);
        if (rawDir || !utf8) raw = rawChild(rawDir ?? Buffer.from(relDir, 'utf8'), nameBytes);
      }
      const relPath = relDir ? `${relDir}/${name}` : name;
      const abs = `${absDir}${path.sep}${name}`;
      if (entry.isDirectory()) {
        if (!filter.skipsChildDir(relPath, name)) {
          stack.push([relPath, abs, raw]);
          onDir?.(relPath, raw ?? undefined);
        }
      } else if (entry.isFile()) {
        if (filter.byChild(relPath, name) !== null) continue;
        let stats: Stats | undefined;
        try {
          stats = lstatSync(raw ? rawJoin(rootPath, raw) : abs, { throwIfNoEntry: false });
        } catch (e) {
          onError(relPath, e as NodeJS.ErrnoException);
          continue;
        }
        // Gone since the read (undefined), or replaced by a folder or link: the next scan or event sees it.
        if (stats?.isFile()) onFile(relPath, stats, raw ?? undefined);
      } else if (entry.isSymbolicLink() && onLink && filter.byChild(relPath, name) === null) {
        onLink(raw ? { relPath, rawRelPath: raw } : { relPath });
      }
    }
    await yieldToLoop();
  }
}

/** `dir/name` as bytes (POSIX separator); `dir` may be empty. */
function rawChild(dir: Buffer, name: Buffer): Buffer {
  return dir.length === 0 ? name : Buffer.concat([dir, Buffer.from('/'), name]);
}

/**
 * The absolute path of a file inside a root as bytes, for the fs calls (they take a Buffer as
 * the name's exact bytes). `rawRelPath` uses `/`, as relPath does.
 */
export function rawJoin(rootPath: string, rawRelPath: Buffer): Buffer {
  return Buffer.concat([Buffer.from(rootPath.endsWith(path.sep) ? rootPath : rootPath + path.sep, 'utf8'), rawRelPath]);
}

/** `path` relative to `root` with POSIX separators, or null when it is not inside. */
export function relativePosix(root: string, p: string): string | null {
  const rel = path.relative(root, p);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return null;
  return rel.split(path.sep).join('/');
}
