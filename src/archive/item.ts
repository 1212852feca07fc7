/**
 * A file the watcher found stable, as the pipeline carries it. Pure data: no handles.
 * `relPath` is POSIX-style (forward slashes), relative to the root, never starting with `/`
 * and never containing `..` segments.
 */
export interface FileItem {
  /** The configured root's name (`roots[].name`). */
  root: string;
  /** Absolute path of the root folder on disk. */
  rootPath: string;
  /** Path inside the root, POSIX separators; a name that is not valid UTF-8 in escaped form (archive/raw-name.ts). */
  relPath: string;
  /** The path inside the root as bytes, set only when a name in it is not valid UTF-8. */
  rawRelPath?: Buffer;
  size: number;
  mtimeMs: number;
  ino: number;
  /** The device the file is on (fs.Stats.dev); absent when not known (journaled by an older version). */
  dev?: number;
  /** Status change time, whole ms: a rewrite whose mtime was restored still moves it. */
  ctimeMs?: number;
}

/** The identity of a file's content version as the store compares it at reconciliation. */
export interface FileStat {
  size: number;
  mtimeMs: number;
  ino: number;
  /**
   * Status change time (whole ms). A same-size rewrite with its mtime put back (`rsync --inplace
   * -t`, `cp -p`, `touch -r`) changes only this. Undefined: not known (a journal row written
   * before the journal kept it); it then does not count.
   */
  ctimeMs?: number;
}

/** Whether two stats are the same content version: size, mtime, inode, and ctime when both know it. */
export function sameFileStat(a: FileStat, b: FileStat): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino && (a.ctimeMs === undefined || b.ctimeMs === undefined || a.ctimeMs === b.ctimeMs);
}
