/**
 * The SQLite journal's WAL checkpoints on a worker thread. SQLite's automatic checkpoint runs in
 * the commit that takes the WAL past 1000 pages: it copies the pages into the database file and
 * syncs it, on the main thread, where a daemon's commits (a lease, a turn's completions and name
 * claims) run. Measured on this machine's shared disk: most leases take ~0.06 ms, one in a
 * hundred 4 ms and up to 30 ms, and those slow ones were more than half of all the leases' time,
 * with every upload's event loop stalled meanwhile. Here the main connection's automatic
 * checkpoint is off and a connection on a worker runs PASSIVE checkpoints (which never wait for
 * and never block a reader or a writer), about as often as SQLite would have: every
 * `everyCommits` commits (a commit writes a few pages), and `idleMs` after the last one when
 * commits came since (the WAL stays bounded even if some commit was not counted). Each
 * checkpoint syncs the database file: more often would load a shared disk with syncs. The main
 * thread only counts its commits in a shared Int32Array and wakes the worker (Atomics) every
 * `everyCommits`: no message, no event per commit.
 *
 * If the worker fails (it cannot open the file, a checkpoint throws: a full disk), `onFailure` is
 * called once, and the caller turns the automatic checkpoint back on: nothing is lost, the WAL is
 * checkpointed as before.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** CommonJS, run with `eval`: no file of its own to find in dist/ or under vitest. */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const shared = new Int32Array(workerData.shared);
const db = new Database(workerData.file, { fileMustExist: true, timeout: workerData.busyTimeoutMs });
try {
  let epoch = Atomics.load(shared, 2);
  // From 0, not the count at the worker's start: commits made while it started (a slow start on
  // a loaded machine) are checkpointed too, not left in the WAL until a later commit.
  let checkpointed = 0;
  while (Atomics.load(shared, 1) === 0) {
    // Woken every everyCommits commits ([2] moves on) or by stop(); else after idleMs.
    Atomics.wait(shared, 2, epoch, workerData.idleMs);
    if (Atomics.load(shared, 1) !== 0) break;
    epoch = Atomics.load(shared, 2);
    const commits = Atomics.load(shared, 0);
    if (commits === checkpointed) continue;
    checkpointed = commits;
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    // Frames a reader of the main connection still needed stay in the WAL: try again after
    // idleMs even if no commit comes (the last checkpoint of a burst must not be a partial one).
    if (r && r.checkpointed < r.log) checkpointed = -1;
  }
} finally {
  db.close();
}
`;

export interface CheckpointerOptions {
  file: string;
  busyTimeoutMs: number;
  /** A checkpoint after this many commits (default 200: about SQLite's own 1000 pages). */
  everyCommits?: number;
  /** And this long after the last one when there were commits since (default 5000 ms). */
  idleMs?: number;
  /** The worker failed or exited on its own: called once, with the reason. */
  onFailure(reason: unknown): void;
}

export class Checkpointer {
  /** [0]: commits so far; [1]: 1 once stopping; [2]: moves on every `everyCommits` commits. */
  readonly #shared = new Int32Array(new SharedArrayBuffer(12));
  readonly #every: number;
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  #stopping = false;

  constructor(opts: CheckpointerOptions) {
    this.#every = Math.max(1, opts.everyCommits ?? 200);
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { sqlite, file: opts.file, busyTimeoutMs: opts.busyTimeoutMs, shared: this.#shared.buffer, idleMs: opts.idleMs ?? 5000 },
    });
    // It must not keep a daemon that is done from exiting.
    this.#worker.unref();
    let failure: unknown = null;
    this.#worker.once('error', (e) => {
      failure = e;
    });
    this.#exited = new Promise((resolve) => {
      this.#worker.once('exit', (code) => {
        if (!this.#stopping) opts.onFailure(failure ?? new Error(`the journal's checkpoint worker exited (${code})`));
        resolve();
      });
    });
  }

  /** Counts a commit of the main connection (a few ns); every `everyCommits`, wakes the worker. */
  committed(): void {
    if ((Atomics.add(this.#shared, 0, 1) + 1) % this.#every !== 0) return;
    Atomics.add(this.#shared, 2, 1);
    Atomics.notify(this.#shared, 2);
  }

  /** Stops the worker after the checkpoint under way, if any; resolves once it has exited. */
  async stop(): Promise<void> {
    this.#stopping = true;
    // Waited for: the process stays until it has exited.
    this.#worker.ref();
    Atomics.store(this.#shared, 1, 1);
    Atomics.notify(this.#shared, 2);
    await this.#exited;
  }
}
