import { lstatSync, readdirSync, type Stats } from 'node:fs';
import path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { PathFilter } from '../archive/filters.js';
import { escapeName, isUtf8Name } from '../archive/raw-name.js';

export interface WalkEntry {
  /** Path inside the root, POSIX separators; a name that is not valid UTF-8 in escaped form. */
  relPath: string;
  stats: Stats;
  /** The path inside the root as bytes, set only when a name in it is not valid UTF-8. */
  rawRelPath?: Buffer;
}

export interface WalkOptions {
  signal?: AbortSignal;
  /** Walk only this folder of the root (relative, POSIX), and what is under it. Default: all. */
  from?: string;
  /** Told of every folder the walk enters (below `from`). */
  onDir?: (relPath: string) => void;
  /** Told of every symbolic link the filter keeps by path (the walk itself never follows one). */
  onLink?: (e: { relPath: string; rawRelPath?: Buffer }) => void;
}

/**
 * Walks a root and reports every regular file the filter keeps by path. One folder is read
 * synchronously at a time (a synchronous stat walk is ~7× faster than an async one here), and
 * the event loop gets a turn between folders so uploads go on during a rescan.
 * Symbolic links are not followed (a link loop cannot trap the walk). Folders that vanish or
 * cannot be read are reported to `onError` and skipped.
 */
export async function walkTree(
  rootPath: string,
  filter: PathFilter,
  onFile: (e: WalkEntry) => void,
  onError: (relPath: string, error: NodeJS.ErrnoException) => void = () => undefined,
  opts: WalkOptions = {},
): Promise<void> {
  const { signal, onDir, onLink } = opts;
  // Each folder with its raw bytes when a name on the way is not valid UTF-8 (else null).
  const start = opts.from ?? '';
  const stack: Array<[string, Buffer | null]> = [[start, null]];
  while (stack.length > 0) {
    if (signal?.aborted) return;
    const [relDir, rawDir] = stack.pop()!;
    let names: Buffer[];
    try {
      // Names as bytes: one that is not UTF-8 read as a string would name no file.
      names = readdirSync(rawDir ? rawJoin(rootPath, rawDir) : path.join(rootPath, relDir), { encoding: 'buffer' });
    } catch (e) {
      onError(relDir, e as NodeJS.ErrnoException);
      continue;
    }
    for (const nameBytes of names) {
      const utf8 = isUtf8Name(nameBytes);
      const name = utf8 ? nameBytes.toString('utf8') : escapeName(nameBytes);
      const relPath = relDir ? `${relDir}/${name}` : name;
      const raw = rawDir || !utf8 ? rawChild(rawDir ?? Buffer.from(relDir, 'utf8'), nameBytes) : null;
      let stats: Stats;
      try {
        stats = lstatSync(raw ? rawJoin(rootPath, raw) : path.join(rootPath, relPath));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') onError(relPath, e as NodeJS.ErrnoException);
        continue;
      }
      if (stats.isDirectory()) {
        if (!filter.skipsDir(relPath)) {
          stack.push([relPath, raw]);
          onDir?.(relPath);
        }
      } else if (stats.isFile() && filter.byPath(relPath) === null) {
        onFile(raw ? { relPath, stats, rawRelPath: raw } : { relPath, stats });
      } else if (stats.isSymbolicLink() && onLink && filter.byPath(relPath) === null) {
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
