/**
 * The small-file put of the local target, in batches, on a worker thread. Everything a small put
 * does to the archive's file system (the look at the final name, the temp file's create, writes,
 * mtime, mode and owner, its fsync, read-back and compare, the rename, and the folder's fsync) is
 * one function, `writeSmallBatch`, run on one worker thread per target (so the main thread's core
 * keeps the pipeline and the journal going while the other does the file calls), or on the main
 * thread where the worker cannot run. It reads the source too where the delivery offers its
 * descriptor (PutRequest.sourceFd). Puts that come in one event-loop turn go in a few batches
 * (see SPLIT), each one message and answered in one: its temp files are all written first, then fsynced
 * together on the thread pool, then checked and renamed, then each folder touched is fsynced
 * once; only then does any put of the batch resolve. A put is recorded done only once its copy
 * and its folder entry are durable, as with one put at a time.
 *
 * The worker is started on the first small put, does not keep the process alive when idle, and
 * is ended by `close`. If it cannot start, or dies, a warning is logged and the small puts run on
 * the main thread from then on: the puts it held are run again there (their temp files removed
 * first), with the folder fsynced even where the copy is found already in place (the worker may
 * have renamed it without the folder's fsync).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';

/** One small put as the batch function takes it: plain data, so it can be posted to the worker. */
export interface SmallJob {
  /** The final name, absolute. */
  final: string;
  /** The temp file beside it (a name of its own, opened O_EXCL). */
  tmp: string;
  /** The folder of both. */
  dir: string;
  /** Where /proc must say the temp file's descriptor is (the temp under the real root). */
  realTmp: string;
  /** The whole source, read and checked for size; null to read it here from `sourceFd`. */
  data: Uint8Array | null;
  /** The source's descriptor (PutRequest.sourceFd), read with pread when `data` is null. */
  sourceFd: number | null;
  /** The source's stated size (`data`'s length when given). */
  size: number;
  mtimeMs: number;
  /** Permission bits of the copy. */
  mode: number;
  /** Owner and group to give the copy (set before the mode), or null. */
  owner: { uid: number; gid: number } | null;
  /** A regular file already at the final name is kept as a version: such a put is not written here. */
  keepVersions: boolean;
  /** The folder is fsynced even when the copy is found in place (a rerun after the worker died). */
  syncDirAlways: boolean;
  /** An ENOENT opening the temp file is an error (the folder was already made again once). */
  retried: boolean;
}

/** A message (and where) for the log: something that failed after the put's outcome was known. */
export interface SmallWarning {
  message: string;
  path: string;
  error: unknown;
}

/** What became of one SmallJob. `error` is what the file call threw (an errno error). */
export type SmallAnswer = (
  | { outcome: 'written' | 'unchanged'; hash: string }
  /** A regular file is at the final name and versions are kept: the general path writes it. */
  | { outcome: 'general' }
  /** A symbolic link at `path` (the final name, or the temp's folder swapped for one). */
  | { outcome: 'link'; path: string }
  /** A folder at the final name. */
  | { outcome: 'blocked' }
  /** The temp file read back other than the bytes read. */
  | { outcome: 'mismatch'; written: string; hash: string }
  | { outcome: 'aborted' }
  /** Reading `sourceFd` failed: the source's error, not the archive's. */
  | { outcome: 'source-error'; error: unknown }
  /** `sourceFd` held `got` bytes rather than the stated size (the file changed). */
  | { outcome: 'short-read'; got: number }
  /** The folder was gone when the temp file was opened (ENOENT): make it again, then retry. */
  | { outcome: 'folder-gone' }
  | { outcome: 'error'; error: unknown }
) & { warnings: SmallWarning[] };

/** What `writeSmallBatch` calls: node:fs and createHash, the worker's own or the main thread's. */
export interface SmallDeps {
  fs: Pick<
    typeof fs,
    | 'lstatSync'
    | 'readFileSync'
    | 'openSync'
    | 'readlinkSync'
    | 'closeSync'
    | 'unlinkSync'
    | 'writeSync'
    | 'ftruncateSync'
    | 'futimesSync'
    | 'fchownSync'
    | 'fchmodSync'
    | 'fsync'
    | 'readSync'
    | 'renameSync'
    | 'constants'
  >;
  createHash: typeof createHash;
}

/**
 * Writes a batch of small files, each atomically and durably (see the module comment). Every
 * job gets an answer; nothing throws. `aborted(i)` is asked just before job i's rename.
 *
 * MUST reference nothing outside itself: its source text is run on the worker thread.
 */
export async function writeSmallBatch(deps: SmallDeps, jobs: SmallJob[], aborted: (i: number) => boolean): Promise<SmallAnswer[]> {
  const { fs: f, createHash: hashOf } = deps;
  const BLOCK = 4096;
  const ZEROS = Buffer.alloc(BLOCK);
  const isZero = (b: Buffer, start: number, end: number): boolean =>
    b[start] === 0 && b[end - 1] === 0 && b.subarray(start, end).equals(end - start === BLOCK ? ZEROS : ZEROS.subarray(0, end - start));
  const sha256 = (b: Buffer): string => hashOf('sha256').update(b).digest('hex');
  const answers: SmallAnswer[] = jobs.map(() => ({ outcome: 'error', error: null, warnings: [] }));
  const fds: Array<number | null> = jobs.map(() => null);
  const hashes: string[] = [];
  const datas: Buffer[] = [];
  const removeTemp = (i: number): void => {
    const fd = fds[i];
    fds[i] = null;
    if (fd !== null && fd !== undefined) {
      try {
        f.closeSync(fd);
      } catch {
        // The put failed already; its temp file goes next.
      }
    }
    try {
      f.unlinkSync(jobs[i]!.tmp);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') answers[i]!.warnings.push({ message: 'temp file not removed', path: jobs[i]!.tmp, error: e });
    }
  };
  const fail = (i: number, a: SmallAnswer): void => {
    a.warnings = answers[i]!.warnings;
    answers[i] = a;
  };

  // The final names, then each temp file created, written, given its mtime, owner and mode.
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i]!;
    let data: Buffer;
    if (job.data) data = Buffer.from(job.data.buffer, job.data.byteOffset, job.data.byteLength);
    else {
      // One byte more than the stated size is asked for: a file that grew fails as one that shrank.
      const buf = Buffer.allocUnsafe(job.size + 1);
      let got = 0;
      try {
        while (got < buf.length) {
          const n = f.readSync(job.sourceFd!, buf, got, buf.length - got, got);
          if (n === 0) break;
          got += n;
        }
      } catch (error) {
        datas.push(buf);
        hashes.push('');
        fail(i, { outcome: 'source-error', error, warnings: [] });
        continue;
      }
      data = buf.subarray(0, got);
      if (got !== job.size) {
        datas.push(data);
        hashes.push('');
        fail(i, { outcome: 'short-read', got, warnings: [] });
        continue;
      }
    }
    datas.push(data);
    const hash = sha256(data);
    hashes.push(hash);
    try {
      let existing: fs.Stats | undefined;
      try {
        existing = f.lstatSync(job.final, { throwIfNoEntry: false });
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOTDIR') throw err;
      }
      if (existing?.isSymbolicLink()) {
        fail(i, { outcome: 'link', path: job.final, warnings: [] });
        continue;
      }
      if (existing?.isDirectory()) {
        fail(i, { outcome: 'blocked', warnings: [] });
        continue;
      }
      if (existing?.isFile() && existing.size === data.length && f.readFileSync(job.final).equals(data)) {
        fail(i, { outcome: 'unchanged', hash, warnings: [] });
        continue;
      }
      if (job.keepVersions && existing?.isFile()) {
        fail(i, { outcome: 'general', warnings: [] });
        continue;
      }
    } catch (error) {
      fail(i, { outcome: 'error', error, warnings: [] });
      continue;
    }
    let fd: number;
    try {
      fd = f.openSync(job.tmp, 'wx+', 0o600);
    } catch (error) {
      fail(i, (error as { code?: string }).code === 'ENOENT' && !job.retried ? { outcome: 'folder-gone', warnings: [] } : { outcome: 'error', error, warnings: [] });
      continue;
    }
    fds[i] = fd;
    try {
      // A folder swapped for a link between its check and this open: nothing is written there.
      let at: string | null = null;
      try {
        at = f.readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        // No /proc: the folder checks made before stand alone.
      }
      if (at !== null && at !== job.realTmp) {
        fds[i] = null;
        f.closeSync(fd);
        try {
          f.unlinkSync(at);
        } catch (e) {
          answers[i]!.warnings.push({ message: 'temp file not removed', path: at, error: e });
        }
        fail(i, { outcome: 'link', path: job.dir, warnings: [] });
        continue;
      }
      // Zeros stay holes (as the large copy's SparseWriter): the temp file is new and empty.
      for (let start = 0; start < data.length; start += BLOCK) {
        const end = Math.min(data.length, start + BLOCK);
        if (isZero(data, start, end)) continue;
        for (let off = start; off < end; ) off += f.writeSync(fd, data, off, end - off, off);
      }
      if (data.length > 0 && isZero(data, data.length - 1, data.length)) f.ftruncateSync(fd, data.length);
      const mtime = new Date(job.mtimeMs);
      f.futimesSync(fd, mtime, mtime);
      // The source's owner first (chown clears set-id bits), then its permission bits exactly.
      if (job.owner) f.fchownSync(fd, job.owner.uid, job.owner.gid);
      f.fchmodSync(fd, job.mode);
      answers[i] = { outcome: 'written', hash, warnings: answers[i]!.warnings };
    } catch (error) {
      removeTemp(i);
      fail(i, { outcome: 'error', error, warnings: [] });
    }
  }

  // Every temp file fsynced at once: they wait on the disk together, on the thread pool.
  await Promise.all(
    jobs.map((_, i) => {
      const fd = fds[i];
      if (fd === null || fd === undefined) return undefined;
      return new Promise<void>((resolve) =>
        f.fsync(fd, (error) => {
          if (error) {
            removeTemp(i);
            fail(i, { outcome: 'error', error, warnings: [] });
          }
          resolve();
        }),
      );
    }),
  );

  // Read back and compared, closed, renamed over the final name.
  const renamed = new Map<string, number[]>();
  const touched = (i: number): void => {
    const dir = jobs[i]!.dir;
    const which = renamed.get(dir);
    if (which) which.push(i);
    else renamed.set(dir, [i]);
  };
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i]!;
    const fd = fds[i];
    if (fd === null || fd === undefined) {
      if (job.syncDirAlways && answers[i]!.outcome === 'unchanged') touched(i);
      continue;
    }
    try {
      const data = datas[i]!;
      const size = data.length;
      const back = Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const n = f.readSync(fd, back, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
      fds[i] = null;
      // close() can report a delayed write error (NFS): it must not be ignored here.
      f.closeSync(fd);
      if (got !== size || !back.equals(data)) {
        removeTemp(i);
        fail(i, { outcome: 'mismatch', written: sha256(back.subarray(0, got)), hash: hashes[i]!, warnings: [] });
        continue;
      }
      if (aborted(i)) {
        removeTemp(i);
        fail(i, { outcome: 'aborted', warnings: [] });
        continue;
      }
      f.renameSync(job.tmp, job.final);
      touched(i);
    } catch (error) {
      removeTemp(i);
      fail(i, { outcome: 'error', error, warnings: [] });
    }
  }

  // One fsync per folder renamed into, all at once; a put is answered after its folder's.
  await Promise.all(
    [...renamed].map(
      ([dir, which]) =>
        new Promise<void>((resolve) => {
          const failed = (error: unknown): void => {
            // Some filesystems (certain FUSE and network mounts) cannot fsync a folder: not an error.
            const code = (error as { code?: string }).code;
            if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR') for (const i of which) fail(i, { outcome: 'error', error, warnings: [] });
          };
          let dfd: number;
          try {
            dfd = f.openSync(dir, 'r');
          } catch (error) {
            failed(error);
            resolve();
            return;
          }
          f.fsync(dfd, (error) => {
            if (error) failed(error);
            try {
              f.closeSync(dfd);
            } catch (e) {
              failed(e);
            }
            resolve();
          });
        }),
    ),
  );
  return answers;
}

/** The worker: CommonJS, run with `eval` (no file of its own to find in dist/ or under vitest). */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const deps = { fs: require('node:fs'), createHash: require('node:crypto').createHash };
// Defined in case the function's source was compiled with names kept (esbuild's keepNames).
var __name = (f) => f;
const writeSmallBatch = ${writeSmallBatch.toString()};
// Errors lose their own fields (code, errno, syscall, path) when posted: they go as plain data.
const plain = (e) => (e instanceof Error ? { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path, stack: e.stack } : { message: String(e) });
parentPort.on('message', async (m) => {
  const flags = new Int32Array(m.flags);
  const answers = await writeSmallBatch(deps, m.jobs, (i) => Atomics.load(flags, i) !== 0);
  for (const a of answers) {
    if (a.outcome === 'error' || a.outcome === 'source-error') a.error = plain(a.error);
    for (const w of a.warnings) w.error = plain(w.error);
  }
  parentPort.postMessage({ id: m.id, answers });
});
`;

interface PlainError {
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
  stack?: string;
}

/** An error the worker posted, as an Error again with its errno fields (classify reads `code`). */
function fromPlain(e: PlainError): Error {
  const err = Object.assign(new Error(e.message), { code: e.code, errno: e.errno, syscall: e.syscall, path: e.path });
  if (e.stack) err.stack = e.stack;
  return err;
}

interface Waiting {
  job: SmallJob;
  signal: AbortSignal | undefined;
  resolve(a: SmallAnswer): void;
}

/** A posted batch: its puts, and the abort listeners that set their flags (removed on the answer). */
interface Posted {
  batch: Waiting[];
  unlisten(): void;
}

/**
 * A turn's puts go to the worker as up to this many batches (of at least `MIN_BATCH` puts each):
 * the first is answered, and its uploads' next deliveries leased and read on the main thread,
 * while the worker still works on the others. As one batch, the two threads took turns (all of a
 * target's uploads in flight waited for the one answer, then the worker for the next lease).
 */
const SPLIT = 4;
/** Fewer puts a message than this cost more in messages than they gain in overlap. */
const MIN_BATCH = 8;

/** Small puts on the main thread instead of the worker (tests that fault node:fs in this thread). */
export const smallPutsInThread = { forced: false };

/**
 * The small puts of one local target: `put` queues a job, the jobs queued in one event-loop turn
 * go to the worker in a few batches (or, without one, to `writeSmallBatch` on this thread, as one).
 * `put` never rejects: its answer says what happened. `close` ends the worker; call it once no
 * put is pending.
 */
export class SmallPuts {
  #queue: Waiting[] = [];
  #worker: Worker | null = null;
  /** The worker failed or could not start: no worker any more. */
  #inThread = false;
  /** Batches posted to the worker, by id. */
  readonly #posted = new Map<number, Posted>();
  #nextId = 0;
  #closed = false;

  constructor(private readonly log: Logger) {}

  put(job: SmallJob, signal: AbortSignal | undefined): Promise<SmallAnswer> {
    return new Promise((resolve) => {
      if (this.#queue.length === 0) setImmediate(() => this.#flush());
      this.#queue.push({ job, signal, resolve });
    });
  }

  #flush(): void {
    const queued = this.#queue;
    this.#queue = [];
    const worker = this.#inThread || this.#closed || smallPutsInThread.forced ? null : this.#theWorker();
    if (worker === null) {
      this.#runHere(queued);
      return;
    }
    const per = Math.max(MIN_BATCH, Math.ceil(queued.length / SPLIT));
    for (let i = 0; i < queued.length; i += per) this.#post(worker, queued.slice(i, i + per));
  }

  #post(worker: Worker, batch: Waiting[]): void {
    const id = this.#nextId++;
    const flags = new Int32Array(new SharedArrayBuffer(4 * batch.length));
    // The bytes of the whole batch in one buffer, moved to the worker rather than copied.
    const packed = new ArrayBuffer(batch.reduce((n, w) => n + (w.job.data?.byteLength ?? 0), 0));
    let at = 0;
    // One listener per signal (the puts of a batch often share one): it flags each of its puts.
    const bySignal = new Map<AbortSignal, number[]>();
    const jobs = batch.map((w, i) => {
      let bytes: Uint8Array | null = null;
      if (w.job.data) {
        bytes = new Uint8Array(packed, at, w.job.data.byteLength);
        bytes.set(w.job.data);
        at += bytes.length;
      }
      if (w.signal?.aborted) flags[i] = 1;
      else if (w.signal) {
        const which = bySignal.get(w.signal);
        if (which) which.push(i);
        else bySignal.set(w.signal, [i]);
      }
      return { ...w.job, data: bytes };
    });
    const listeners = [...bySignal].map(([signal, which]) => {
      const onAbort = (): void => {
        for (const i of which) Atomics.store(flags, i, 1);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      return { signal, onAbort };
    });
    const unlisten = (): void => {
      for (const { signal, onAbort } of listeners) signal.removeEventListener('abort', onAbort);
    };
    this.#posted.set(id, { batch, unlisten });
    worker.ref();
    try {
      worker.postMessage({ id, jobs, flags: flags.buffer }, [packed]);
    } catch (err) {
      // Not sent (a job the worker cannot be given): this batch runs here; the worker stays.
      this.#posted.delete(id);
      unlisten();
      if (this.#posted.size === 0) worker.unref();
      this.log.warn({ err, puts: batch.length }, 'small puts not posted to the worker thread: run on the main thread');
      this.#runHere(batch);
    }
  }

  #runHere(batch: Waiting[]): void {
    writeSmallBatch(
      { fs, createHash },
      batch.map((w) => w.job),
      (i) => batch[i]!.signal?.aborted === true,
    ).then(
      (answers) => {
        for (const [i, w] of batch.entries()) w.resolve(answers[i]!);
      },
      // writeSmallBatch answers every job rather than throw: this is a bug, failed per put.
      (error: unknown) => {
        for (const w of batch) w.resolve({ outcome: 'error', error, warnings: [] });
      },
    );
  }

  #theWorker(): Worker | null {
    if (this.#worker) return this.#worker;
    let w: Worker;
    try {
      w = new Worker(WORKER_SOURCE, { eval: true });
    } catch (err) {
      this.#failed(err);
      return null;
    }
    w.unref();
    w.on('message', (m: { id: number; answers: SmallAnswer[] }) => {
      const posted = this.#posted.get(m.id);
      if (!posted) return;
      this.#posted.delete(m.id);
      posted.unlisten();
      const batch = posted.batch;
      if (this.#posted.size === 0) w.unref();
      for (const [i, waiting] of batch.entries()) {
        const a = m.answers[i]!;
        if (a.outcome === 'error' || a.outcome === 'source-error') a.error = fromPlain(a.error as PlainError);
        for (const warning of a.warnings) warning.error = fromPlain(warning.error as PlainError);
        waiting.resolve(a);
      }
    });
    w.on('error', (err) => {
      if (this.#worker === w) this.#failed(err);
    });
    w.on('exit', (code) => {
      if (this.#worker === w && !this.#closed) this.#failed(new Error(`the worker thread exited (${code})`));
    });
    this.#worker = w;
    this.log.debug({}, 'small puts on a worker thread');
    return w;
  }

  /** The worker is gone: what it held runs again here, as does every small put from now on. */
  #failed(err: unknown): void {
    this.#inThread = true;
    this.#worker = null;
    const held = [...this.#posted.values()].flatMap((p) => {
      p.unlisten();
      return p.batch;
    });
    this.#posted.clear();
    this.log.warn({ err, puts: held.length }, 'the small-file worker thread failed: small puts run on the main thread from now on');
    if (held.length === 0) return;
    for (const w of held) {
      try {
        fs.unlinkSync(w.job.tmp);
      } catch (e) {
        if ((e as { code?: string }).code !== 'ENOENT') this.log.warn({ err: e, path: w.job.tmp }, 'temp file not removed');
      }
    }
    this.#runHere(held.map((w) => ({ ...w, job: { ...w.job, syncDirAlways: true } })));
  }

  /** Ends the worker. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const w = this.#worker;
    this.#worker = null;
    if (w) await w.terminate();
  }
}
