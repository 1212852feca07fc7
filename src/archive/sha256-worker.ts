/**
 * sha256 on a worker thread, of chunks in shared memory: a large file's put hashes on the other
 * core while the main thread and the thread pool read, write and read back (the hash, ~1.3 GB/s
 * on one core, was the bound of a large file's copy to the local target).
 *
 * One worker for the process, started on first use and not keeping the process alive when no
 * hash is under way. Chunks are views of a SharedArrayBuffer: the worker reads the very bytes the
 * caller wrote from, nothing is copied or transferred. The caller MUST NOT change a chunk until
 * its `update` has resolved (the worker is done with it).
 */
import { Worker } from 'node:worker_threads';
import { StagecoachError } from '../errors.js';

/** CommonJS, run with `eval`: no file of its own to find in dist/ or under vitest. */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  try {
    if (m.op === 'update') {
      let h = hashes.get(m.id);
      if (!h) hashes.set(m.id, (h = createHash('sha256')));
      h.update(new Uint8Array(m.buf, m.off, m.len));
      parentPort.postMessage({ id: m.id, seq: m.seq });
    } else if (m.op === 'digest') {
      const h = hashes.get(m.id) || createHash('sha256');
      hashes.delete(m.id);
      parentPort.postMessage({ id: m.id, seq: m.seq, digest: h.digest('hex') });
    } else {
      hashes.delete(m.id);
    }
  } catch (e) {
    hashes.delete(m.id);
    parentPort.postMessage({ id: m.id, seq: m.seq, error: String(e && e.message) });
  }
});
`;

interface Waiter {
  resolve(digest: string | undefined): void;
  reject(err: Error): void;
}

interface Answer {
  id: number;
  seq: number;
  digest?: string;
  error?: string;
}

let worker: Worker | null = null;
/** Open hashes by id; each has its waiters by sequence number (answers come in order). */
const sessions = new Map<number, Map<number, Waiter>>();
let nextId = 0;

function workerFailed(err: Error): void {
  worker = null;
  const failed = new StagecoachError('hash.worker-failed', `[stagecoach] the sha256 worker thread failed: ${err.message}`, { cause: err });
  for (const waiters of sessions.values()) {
    for (const w of waiters.values()) w.reject(failed);
    waiters.clear();
  }
}

function theWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(WORKER_SOURCE, { eval: true });
  w.unref();
  w.on('message', (m: Answer) => {
    const waiters = sessions.get(m.id);
    const waiter = waiters?.get(m.seq);
    if (!waiter) return;
    waiters!.delete(m.seq);
    if (m.error !== undefined) waiter.reject(new StagecoachError('hash.worker-failed', `[stagecoach] the sha256 worker thread failed: ${m.error}`));
    else waiter.resolve(m.digest);
  });
  w.on('error', (e) => workerFailed(e));
  w.on('exit', (code) => {
    if (worker === w) workerFailed(new Error(`it exited (${code})`));
  });
  worker = w;
  return w;
}

/** Keeps the process alive only while some hash waits for the worker. */
function reref(): void {
  if (!worker) return;
  for (const waiters of sessions.values()) {
    if (waiters.size > 0) {
      worker.ref();
      return;
    }
  }
  worker.unref();
}

/**
 * One sha256 computed on the worker thread. `update` chunks in order (each a view of a
 * SharedArrayBuffer), `digest` once after the last; `drop` when giving up. A failure of the
 * worker rejects what waits (StagecoachError `hash.worker-failed`); a later hash starts a new one.
 */
export class Sha256OnWorker {
  readonly #id = nextId++;
  #seq = 0;
  readonly #waiters = new Map<number, Waiter>();
  #w: Worker;

  constructor() {
    this.#w = theWorker();
    sessions.set(this.#id, this.#waiters);
  }

  #ask(message: Record<string, unknown>): Promise<string | undefined> {
    const seq = this.#seq++;
    if (this.#w !== worker) return Promise.reject(new StagecoachError('hash.worker-failed', '[stagecoach] the sha256 worker thread failed during this hash'));
    const p = new Promise<string | undefined>((resolve, reject) => {
      this.#waiters.set(seq, {
        resolve: (d) => {
          resolve(d);
          reref();
        },
        reject: (e) => {
          reject(e);
          reref();
        },
      });
    });
    this.#w.postMessage({ ...message, id: this.#id, seq });
    this.#w.ref();
    return p;
  }

  /** Hashes `chunk` (a view of a SharedArrayBuffer); resolves once the worker is done with it. */
  async update(chunk: Uint8Array): Promise<void> {
    if (!(chunk.buffer instanceof SharedArrayBuffer)) throw new TypeError('Sha256OnWorker.update takes a view of a SharedArrayBuffer');
    await this.#ask({ op: 'update', buf: chunk.buffer, off: chunk.byteOffset, len: chunk.byteLength });
  }

  /** The hex digest of every chunk updated, in order. Ends the hash. */
  async digest(): Promise<string> {
    const d = await this.#ask({ op: 'digest' });
    sessions.delete(this.#id);
    return d!;
  }

  /** Ends the hash without a digest (the put failed). Call it once no `update` is pending. */
  drop(): void {
    if (this.#w === worker) this.#w.postMessage({ op: 'drop', id: this.#id, seq: -1 });
    sessions.delete(this.#id);
    reref();
  }
}
