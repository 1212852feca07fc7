/**
 * The SQLite journal's file index read on a worker thread, so that the main thread can walk the
 * root meanwhile (a restart over 100k archived files: ~0.5 s of reading rows and building the
 * map, which used to come before the walk, now runs beside it on the other core).
 *
 * The worker opens the database read-only (its own connection: one consistent snapshot, as the
 * main connection's own read would give) and sends the index ready to search, as four transferred
 * typed arrays (no copy, nothing to parse): every path's UTF-16 code units one after another, where
 * each starts, a (size, mtime, inode, ctime) row each, and an open-addressing hash table of the
 * rows by path (FNV-1a over the code units, linear probing, at most half full). The main thread
 * then looks paths up in place: neither a string per row nor a Map of 100k entries is made there
 * (splitting the paths and filling a Map was ~40-80 ms of main-thread CPU in the middle of a
 * restart's walk, and their old-generation garbage after it).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { FileStat } from '../archive/item.js';
import { StagecoachError } from '../errors.js';

/** FNV-1a (32 bits) over UTF-16 code units: the worker's table and PackedFileIndex hash alike. */
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/** CommonJS, run with `eval`: no file of its own to find in dist/ or under vitest. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
let db = null;
try {
  const Database = require(workerData.sqlite);
  db = new Database(workerData.file, { readonly: true, fileMustExist: true, timeout: workerData.busyTimeoutMs });
  // Row by row into typed arrays that grow by doubling: each row (and its path string) is garbage
  // at once, where all() kept 100k of them alive through every young-generation collection.
  let cap = 1024;
  let stats = new Float64Array(cap * 4);
  let starts = new Float64Array(cap + 1);
  let hashes = new Int32Array(cap);
  let chars = new Uint16Array(cap * 32);
  let count = 0;
  let at = 0;
  const grow = (a, n) => {
    const b = new a.constructor(n);
    b.set(a);
    return b;
  };
  for (const r of db.prepare('SELECT rel_path, size, mtime_ms, ino, ctime_ms FROM files WHERE root = ?').raw().iterate(workerData.root)) {
    if (count === cap) {
      cap *= 2;
      stats = grow(stats, cap * 4);
      starts = grow(starts, cap + 1);
      hashes = grow(hashes, cap);
    }
    const p = r[0];
    if (at + p.length > chars.length) chars = grow(chars, Math.max(chars.length * 2, at + p.length));
    starts[count] = at;
    let h = ${FNV_OFFSET};
    for (let j = 0; j < p.length; j++) {
      const c = p.charCodeAt(j);
      chars[at++] = c;
      h = Math.imul(h ^ c, ${FNV_PRIME});
    }
    hashes[count] = h;
    stats[count * 4] = r[1];
    stats[count * 4 + 1] = r[2];
    stats[count * 4 + 2] = r[3];
    stats[count * 4 + 3] = r[4] === null ? NaN : r[4];
    count++;
  }
  starts[count] = at;
  let size = 2;
  while (size < count * 2) size *= 2;
  const table = new Int32Array(size).fill(-1);
  const mask = size - 1;
  for (let i = 0; i < count; i++) {
    let slot = hashes[i] & mask;
    while (table[slot] !== -1) slot = (slot + 1) & mask;
    table[slot] = i;
  }
  parentPort.postMessage({ count, chars, starts, table, stats }, [chars.buffer, starts.buffer, table.buffer, stats.buffer]);
} catch (e) {
  // A SqliteError would reach the parent without its message: send what it says.
  parentPort.postMessage({ error: String(e && e.message), code: e && e.code });
} finally {
  if (db) db.close();
}
`;

/** The index as the worker sends it (see the top of this file). */
interface PackedRows {
  count: number;
  /** Every path's UTF-16 code units, in row order (room to spare after the last). */
  chars: Uint16Array;
  /** Where row i's path starts in `chars` (entry `count` is where the last one ends; room to spare after). */
  starts: Float64Array;
  /** Row number by hash of the path (linear probing); -1: empty. Its length is a power of two. */
  table: Int32Array;
  /** size, mtimeMs, ino, ctimeMs (NaN: none) per row (room to spare after the last). */
  stats: Float64Array;
}

type IndexMessage = PackedRows | { error: string; code?: string };

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
      resolve(new PackedFileIndex(result));
    });
  });
}

/**
 * A root's index as the worker sent it: a path is looked up in the worker's hash table, the stats
 * stay in the one Float64Array, and a FileStat (or a key string) is made only when asked for
 * (get, iteration). It reads as the Map the main thread builds (same entries, in row order); it is
 * read-only: set, delete and clear throw.
 */
class PackedFileIndex extends Map<string, FileStat> {
  readonly #p: PackedRows;
  readonly #mask: number;

  constructor(rows: PackedRows) {
    super();
    this.#p = rows;
    this.#mask = rows.table.length - 1;
  }

  /** The row of `relPath`, or -1. */
  #row(relPath: string): number {
    const { chars, starts, table } = this.#p;
    const n = relPath.length;
    let h = FNV_OFFSET;
    for (let j = 0; j < n; j++) h = Math.imul(h ^ relPath.charCodeAt(j), FNV_PRIME);
    for (let slot = h & this.#mask; ; slot = (slot + 1) & this.#mask) {
      const row = table[slot]!;
      if (row === -1) return -1;
      const at = starts[row]!;
      if (starts[row + 1]! - at !== n) continue;
      let j = 0;
      while (j < n && chars[at + j] === relPath.charCodeAt(j)) j++;
      if (j === n) return row;
    }
  }

  #path(row: number): string {
    const { chars, starts } = this.#p;
    return String.fromCharCode(...chars.subarray(starts[row]!, starts[row + 1]!));
  }

  #stat(row: number): FileStat {
    const s = this.#p.stats;
    const ctime = s[row * 4 + 3]!;
    return Number.isNaN(ctime) ? { size: s[row * 4]!, mtimeMs: s[row * 4 + 1]!, ino: s[row * 4 + 2]! } : { size: s[row * 4]!, mtimeMs: s[row * 4 + 1]!, ino: s[row * 4 + 2]!, ctimeMs: ctime };
  }

  override get(relPath: string): FileStat | undefined {
    const row = this.#row(relPath);
    return row === -1 ? undefined : this.#stat(row);
  }

  override has(relPath: string): boolean {
    return this.#row(relPath) !== -1;
  }

  override get size(): number {
    return this.#p.count;
  }

  override *keys(): MapIterator<string> {
    for (let row = 0; row < this.#p.count; row++) yield this.#path(row);
  }

  override *entries(): MapIterator<[string, FileStat]> {
    for (let row = 0; row < this.#p.count; row++) yield [this.#path(row), this.#stat(row)];
  }

  override *values(): MapIterator<FileStat> {
    for (let row = 0; row < this.#p.count; row++) yield this.#stat(row);
  }

  override [Symbol.iterator](): MapIterator<[string, FileStat]> {
    return this.entries();
  }

  override forEach(fn: (value: FileStat, key: string, map: Map<string, FileStat>) => void, thisArg?: unknown): void {
    for (let row = 0; row < this.#p.count; row++) fn.call(thisArg, this.#stat(row), this.#path(row), this);
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
