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
  const index = new Map<string, FileStat>();
  if (m.count === 0) return index;
  const paths = m.paths.split('\u0000');
  const s = m.stats;
  for (let i = 0; i < m.count; i++) {
    const ctime = s[i * 4 + 3]!;
    index.set(paths[i]!, Number.isNaN(ctime) ? { size: s[i * 4]!, mtimeMs: s[i * 4 + 1]!, ino: s[i * 4 + 2]! } : { size: s[i * 4]!, mtimeMs: s[i * 4 + 1]!, ino: s[i * 4 + 2]!, ctimeMs: ctime });
  }
  return index;
}
