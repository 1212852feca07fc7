/**
 * The SQLite journal's file index read on a worker thread, so that the main thread can walk the
 * root meanwhile (a restart over 100k archived files: ~0.5 s of reading rows and building the
 * map, which used to come before the walk, now runs beside it on the other core).
 *
 * The worker opens the database read-only (its own connection: one consistent snapshot, as the
 * main connection's own read would give) and sends the rows back as one NUL-joined string of
 * paths and one transferred Float64Array of (size, mtime, inode, ctime) per row: two copies of
 * flat memory rather than a structured clone of 100k objects.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { FileStat } from '../archive/item.js';
import { StagecoachError } from '../errors.js';

/** CommonJS, run with `eval`: no file of its own to find in dist/ or under vitest. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
let db = null;
try {
  const Database = require(workerData.sqlite);
  db = new Database(workerData.file, { readonly: true, fileMustExist: true, timeout: workerData.busyTimeoutMs });
  const rows = db.prepare('SELECT rel_path, size, mtime_ms, ino, ctime_ms FROM files WHERE root = ?').raw().all(workerData.root);
  const stats = new Float64Array(rows.length * 4);
  const paths = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    paths[i] = r[0];
    stats[i * 4] = r[1];
    stats[i * 4 + 1] = r[2];
    stats[i * 4 + 2] = r[3];
    stats[i * 4 + 3] = r[4] === null ? NaN : r[4];
  }
  parentPort.postMessage({ count: rows.length, paths: paths.join('\\u0000'), stats }, [stats.buffer]);
} catch (e) {
  // A SqliteError would reach the parent without its message: send what it says.
  parentPort.postMessage({ error: String(e && e.message), code: e && e.code });
} finally {
  if (db) db.close();
}
`;

type IndexMessage = { count: number; paths: string; stats: Float64Array } | { error: string; code?: string };

/**
 * Reads the index of one root (rel_path → recorded stat, as `Store.fileIndex`) from the SQLite
 * journal at `file` on a worker thread. Rejects with the worker's error (the database cannot be
 * opened or read) as the same read on the main thread would throw it.
 */
export function readFileIndexInWorker(file: string, root: string, busyTimeoutMs: number): Promise<Map<string, FileStat>> {
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  return new Promise((resolve, reject) => {
    let result: IndexMessage | null = null;
    let failure: unknown = null;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { sqlite, file, root, busyTimeoutMs } });
    worker.once('message', (m: IndexMessage) => {
      result = m;
    });
    worker.once('error', (e) => {
      failure = e;
    });
    worker.once('exit', (code) => {
      if (result === null) {
        reject(failure ?? new Error(`the journal index worker exited (${code}) without an answer`));
        return;
      }
      if ('error' in result) {
        reject(new StagecoachError('state.read-failed', `[stagecoach] [state] cannot read the file index of ${file}: ${result.error}`, { cause: result }));
        return;
      }
      resolve(toIndex(result));
    });
  });
}

function toIndex(m: { count: number; paths: string; stats: Float64Array }): Map<string, FileStat> {
  return new PackedFileIndex(m.count === 0 ? [] : m.paths.split('\u0000'), m.stats);
}

/**
 * A root's index as the worker sent it: each path maps to its row, the stats stay in the one
 * Float64Array, and a FileStat is made only when asked for (get, iteration). Building it costs a
 * Map entry per file and no object: 100k FileStat objects were ~65 ms of main-thread CPU, plus
 * their old-generation GC, during a restart's walk. It reads as the Map the main thread builds
 * (same entries, in row order); it is read-only: set, delete and clear throw.
 */
class PackedFileIndex extends Map<string, FileStat> {
  readonly #rows = new Map<string, number>();
  readonly #stats: Float64Array;

  constructor(paths: readonly string[], stats: Float64Array) {
    super();
    this.#stats = stats;
    for (let i = 0; i < paths.length; i++) this.#rows.set(paths[i]!, i);
  }

  #stat(row: number): FileStat {
    const s = this.#stats;
    const ctime = s[row * 4 + 3]!;
    return Number.isNaN(ctime) ? { size: s[row * 4]!, mtimeMs: s[row * 4 + 1]!, ino: s[row * 4 + 2]! } : { size: s[row * 4]!, mtimeMs: s[row * 4 + 1]!, ino: s[row * 4 + 2]!, ctimeMs: ctime };
  }

  override get(relPath: string): FileStat | undefined {
    const row = this.#rows.get(relPath);
    return row === undefined ? undefined : this.#stat(row);
  }

  override has(relPath: string): boolean {
    return this.#rows.has(relPath);
  }

  override get size(): number {
    return this.#rows.size;
  }

  override keys(): MapIterator<string> {
    return this.#rows.keys();
  }

  override *entries(): MapIterator<[string, FileStat]> {
    for (const [relPath, row] of this.#rows) yield [relPath, this.#stat(row)];
  }

  override *values(): MapIterator<FileStat> {
    for (const row of this.#rows.values()) yield this.#stat(row);
  }

  override [Symbol.iterator](): MapIterator<[string, FileStat]> {
    return this.entries();
  }

  override forEach(fn: (value: FileStat, key: string, map: Map<string, FileStat>) => void, thisArg?: unknown): void {
    for (const [relPath, row] of this.#rows) fn.call(thisArg, this.#stat(row), relPath, this);
  }

  override set(): this {
    throw new TypeError('[stagecoach] [state] a file index read from the journal is read-only');
  }

  override delete(): boolean {
    throw new TypeError('[stagecoach] [state] a file index read from the journal is read-only');
  }

  override clear(): void {
    throw new TypeError('[stagecoach] [state] a file index read from the journal is read-only');
  }
}
