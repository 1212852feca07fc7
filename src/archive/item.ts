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
  /** Path inside the root, POSIX separators. */
  relPath: string;
  size: number;
  mtimeMs: number;
  ino: number;
  /** The device the file is on (fs.Stats.dev); absent when not known (journaled by an older version). */
  dev?: number;
}

/** The identity of a file's content version as the store compares it at reconciliation. */
export interface FileStat {
  size: number;
  mtimeMs: number;
  ino: number;
}
