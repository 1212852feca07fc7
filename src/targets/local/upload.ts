/**
 * The upload path of the local target. A put is atomic and durable: the bytes go to a temp file
 * beside the final name, which is read back and checked (a large file chunk by chunk as it is
 * written, against the bytes read), fsynced, and renamed over the final name; the folder is then
 * fsynced (a batch of small files: one syncfs of the archive's file system for each, where it has
 * a flush barrier, kit/fs-barrier.ts). A crash or a failure at any point leaves the previous copy
 * (or nothing) at the final name, never a part. A small file's file calls are made on a worker
 * thread, in batches (`SmallPuts`, below). A large file's sha256 is computed on a worker
 * thread (archive/sha256-worker.ts) from the same reused shared chunks the copy writes, while
 * the next chunk is read and the previous one written and read back, on the small puts' worker
 * thread where the archive is on a local file system (`SmallPuts.chunk`: one message a chunk).
 * The chunk buffers the copies hold at once are bounded in bytes (`CopyBudget`), whatever the
 * target's maxDemand.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { constants as fsConstants, type Stats } from 'node:fs';
import { copyFile, link, lstat, open, readlink, rename, rm, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { addAbortSignal } from 'node:stream';
import { getSystemErrorName } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { CountingHashStream, hashFile, verifySize } from '../../archive/hash.js';
import { Sha256OnWorker } from '../../archive/sha256-worker.js';
import { ShortReadError } from '../../errors.js';
import { abortError } from '../kit/abort.js';
import { SourceError, errnoOf } from '../kit/classify.js';
import type { PutRequest, PutResult } from '../target.js';
import { localError } from './classify.js';
import { DIR_MODE, TEMP_OWNER, type LocalFolders } from './folders.js';
import { mapLocalPath, tempName, versionName } from './names.js';
import { readSmallSync, toBuffer } from '../kit/chunks.js';
import { syncCallsSafe } from '../kit/fs-kind.js';
import { type Barrier, type BarrierFd, fsBarrierModule, loadSyncfs, makeBarrier, openBarrierFd } from '../kit/fs-barrier.js';
import { loadNativeFs } from '../kit/fs-native.js';

// Errors of link(2) that mean "this filesystem has no hard links" (vfat, exfat, some SMB mounts).
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EMLINK', 'ENOSYS']);
// A kept version is named after the old copy's mtime; past this many same-second copies give up.
const MAX_VERSION_ATTEMPTS = 1000;
/** Mode of a copy whose source mode is unknown (a put without `source`). */
const FILE_MODE = 0o600;
/**
 * Files up to this size take the small-file path (`writeSmall`): its file calls are synchronous
 * (a few µs each on a local disk, against a thread-pool round trip and ~50–100 µs of main-thread
 * time for each promise-based call; with 10,000 small files the thread pool's wake-ups were a
 * sixth of the CPU), made in batches on the target's worker thread (`SmallPuts`, below), so that they
 * take the other core rather than the main thread's.
 */
const SMALL_FILE = 64 * 1024;

/** What a put of the local target works with. */
export interface UploadContext {
  targetId: string;
  log: Logger;
  folders: LocalFolders;
  keepVersions: boolean;
  /** Copies get the source's owner and group too (only when running as root). */
  preserveOwner: boolean;
  /** The small puts' batches and worker thread (`SmallPuts`, below). */
  small: SmallPuts;
  /** The chunk memory of the general path's copies (see `COPY_BUDGET`). */
  copies: CopyBudget;
}

/**
 * The memory the copies of the general path (large files, and small ones where the archive is not
 * on a local file system) may hold at once in their chunk buffers, whatever the target's
 * maxDemand: a copy of a file of a chunk or more holds a ring (`COPY_RING` × `COPY_CHUNK`, 4 MiB),
 * a smaller one a buffer of its own size. So maxDemand can be high for small files (whose puts
 * wait mostly on their flushes, and share them) while a burst of large files still copies at most
 * eight at once (32 MiB), which keeps a disk busy.
 */
export const COPY_BUDGET = 32 * 1024 * 1024;

/** The bytes of chunk buffers a copy of `size` bytes holds (see `copyChecked`). */
function copyBytes(size: number): number {
  return size < COPY_CHUNK ? size + 1 : COPY_RING * COPY_CHUNK;
}

/**
 * A semaphore counted in bytes, first come first served: `acquire` waits until its bytes fit
 * (or rejects as the signal fires), its result gives them back (once; a second call does nothing).
 */
export class CopyBudget {
  #free: number;
  readonly #waiting: Array<{ bytes: number; go: () => void }> = [];

  constructor(bytes: number) {
    this.#free = bytes;
  }

  async acquire(bytes: number, targetId: string, signal: AbortSignal | undefined): Promise<() => void> {
    if (signal?.aborted) throw abortError(targetId, signal);
    if (this.#waiting.length === 0 && bytes <= this.#free) {
      this.#free -= bytes;
      return this.#release(bytes);
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        bytes,
        go: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
        // The first in line may have held back smaller ones behind it.
        this.#drain();
        reject(abortError(targetId, signal!));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
    });
    return this.#release(bytes);
  }

  #release(bytes: number): () => void {
    let freed = false;
    return () => {
      if (freed) return;
      freed = true;
      this.#free += bytes;
      this.#drain();
    };
  }

  #drain(): void {
    while (this.#waiting.length > 0 && this.#waiting[0]!.bytes <= this.#free) {
      const next = this.#waiting.shift()!;
      this.#free -= next.bytes;
      next.go();
    }
  }
}

export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return null;
    throw err;
  }
}

/** The source's stream (`req.open`, an error of it a SourceError), ended by `req.signal`, and its iterator. */
function openSourceStream(req: PutRequest): { src: Readable; it: AsyncIterator<unknown> } {
  let src: Readable;
  try {
    src = req.open();
  } catch (err) {
    throw new SourceError(err);
  }
  if (req.signal) addAbortSignal(req.signal, src);
  return { src, it: src[Symbol.asyncIterator]() as AsyncIterator<unknown> };
}

/** Streams the source through a counter, handing each chunk to `onChunk`; checks the size. */
async function readSource(
  ctx: UploadContext,
  req: PutRequest,
  onChunk: ((chunk: Buffer) => Promise<void>) | null,
): Promise<CountingHashStream> {
  const signal = req.signal;
  const { src, it } = openSourceStream(req);
  const counter = new CountingHashStream(['sha256'], { maxBytes: req.size });
  try {
    for (;;) {
      let next: IteratorResult<unknown>;
      try {
        next = await it.next();
      } catch (err) {
        if (signal?.aborted) throw abortError(ctx.targetId, signal);
        throw new SourceError(err);
      }
      if (next.done) break;
      const chunk = toBuffer(next.value);
      // The chunk is hashed here while `onChunk` has it: both only read it.
      const handed = onChunk?.(chunk);
      try {
        counter.feed(chunk);
      } catch (err) {
        await handed?.catch(() => undefined);
        throw err;
      }
      await handed;
    }
  } finally {
    src.destroy();
  }
  verifySize(req.size, counter.bytes);
  return counter;
}

/** The size of one chunk of a large file's copy: one read, one write, one read-back, one hash step. */
const COPY_CHUNK = 1024 * 1024;
/** Chunks of one copy in flight: read ahead, hashed on the worker, written and read back. */
const COPY_RING = 4;
/** Chunk buffers kept for the next copies (shared memory, reused: no garbage per chunk). */
const idleChunks: SharedArrayBuffer[] = [];
const IDLE_CHUNKS_KEPT = 2 * COPY_RING;

/** Reads the source into a caller's buffer, whole chunks until the end; 0 at the end. */
interface SourceReader {
  read(into: Buffer): Promise<number>;
  close(): void;
}

/**
 * The source as a `SourceReader`: by position through `req.read` where the source offers it (the
 * bytes land in the caller's buffer), else from `open`'s stream, copied. Source errors are
 * SourceError; a fired signal, the abort error.
 */
function sourceReader(ctx: UploadContext, req: PutRequest): SourceReader {
  const signal = req.signal;
  const aborted = (): Error | null => (signal?.aborted ? abortError(ctx.targetId, signal) : null);
  const read = req.read;
  if (read) {
    let position = 0;
    return {
      async read(into) {
        let got = 0;
        while (got < into.length) {
          const stop = aborted();
          if (stop) throw stop;
          let n: number;
          try {
            n = await read(into, got, into.length - got, position);
          } catch (err) {
            throw aborted() ?? new SourceError(err);
          }
          if (n === 0) break;
          got += n;
          position += n;
        }
        return got;
      },
      close() {},
    };
  }
  const { src, it } = openSourceStream(req);
  let left: Buffer | null = null;
  let done = false;
  return {
    async read(into) {
      let got = 0;
      while (got < into.length && !done) {
        if (left === null || left.length === 0) {
          let next: IteratorResult<unknown>;
          try {
            next = await it.next();
          } catch (err) {
            throw aborted() ?? new SourceError(err);
          }
          if (next.done) {
            done = true;
            break;
          }
          left = toBuffer(next.value);
        }
        const n = left.copy(into, got);
        left = left.subarray(n);
        got += n;
      }
      return got;
    },
    close: () => src.destroy(),
  };
}

/**
 * Copies the source through `sparse` (which writes each chunk and reads it back) while the sha256
 * of the bytes read is computed on the worker thread, on the same shared chunk: the main thread
 * and the thread pool read chunk N+1 and write and read back chunk N while the worker hashes.
 * Checks the size as it goes (more bytes than `req.size` fail at once) and at the end. Returns
 * only once nothing it started is still running, failed or not.
 */
async function copyChecked(ctx: UploadContext, req: PutRequest, sparse: SparseWriter): Promise<{ bytes: number; hash: string }> {
  const source = sourceReader(ctx, req);
  let hash: Sha256OnWorker;
  try {
    hash = new Sha256OnWorker();
  } catch (err) {
    source.close();
    throw err;
  }
  // A file smaller than a chunk is read whole into one buffer of its size (and the one byte more
  // that shows it grew); others go through a ring of reused chunks. See copyBytes.
  const ring: SharedArrayBuffer[] = [];
  if (req.size < COPY_CHUNK) ring.push(new SharedArrayBuffer(req.size + 1));
  else for (let i = 0; i < COPY_RING; i++) ring.push(idleChunks.pop() ?? new SharedArrayBuffer(COPY_CHUNK));
  const busy: Array<Promise<void> | null> = ring.map(() => null);
  // The first failure of a chunk's hash or write (set from their callbacks, hence an object).
  const failed: { error?: unknown } = {};
  let bytes = 0;
  let digested = false;
  try {
    for (let i = 0; ; i++) {
      const slot = i % ring.length;
      await busy[slot];
      if ('error' in failed) throw failed.error;
      // At most one byte past the stated size: a file that grows is cut off there.
      const buf = Buffer.from(ring[slot]!, 0, Math.min(COPY_CHUNK, req.size - bytes + 1));
      const n = await source.read(buf);
      if (n === 0) break;
      bytes += n;
      if (bytes > req.size) throw new ShortReadError(req.size, bytes);
      const chunk = buf.subarray(0, n);
      const hashed = hash.update(chunk);
      // Written in order, each read back beside the next one's write; a failure stops those after it.
      busy[slot] = Promise.all([hashed, sparse.write(chunk)]).then(
        () => undefined,
        (error: unknown) => {
          if (!('error' in failed)) failed.error = error;
        },
      );
    }
    await Promise.all(busy);
    if ('error' in failed) throw failed.error;
    verifySize(req.size, bytes);
    digested = true;
    return { bytes, hash: await hash.digest() };
  } finally {
    await Promise.all(busy);
    await sparse.idle();
    source.close();
    if (!digested) hash.drop();
    for (const b of ring) if (b.byteLength === COPY_CHUNK && idleChunks.length < IDLE_CHUNKS_KEPT) idleChunks.push(b);
  }
}

/** copy_file_range's errors that mean "not between these two files" (another file system, an old kernel): copy through the process. */
const NO_KERNEL_COPY = new Set(['EXDEV', 'EINVAL', 'ENOSYS', 'EOPNOTSUPP', 'ENOTSUP']);

/**
 * A large file's copy made by the kernel: copy_file_range from the source's descriptor
 * (PutRequest.sourceFd) to the temp file, chunk by chunk, the source's holes left holes (the
 * native module, kit/fs-native.ts), as `cp` copies. The bytes never pass through this process to
 * be written: each chunk is read back from the temp file into a ring buffer and hashed on the
 * worker, so the hash returned is that of the bytes the archive holds, as they came from the
 * checked descriptor. The copy runs ahead of that check (it holds no buffer), and once it is over
 * the disk writes its tail while the hash, the slower of the two, catches up. Measured on this VM
 * (1 GiB after 3 s idle): see bench/RESULTS.md, large-files.
 *
 * Null, with nothing written, where it does not apply: no native module, no source descriptor (a
 * paced read, or a put not from a delivery), a file under one chunk, or a kernel that refuses to
 * copy between these files (EXDEV and the like) before any byte is written. The size is checked as the copy goes (a source that grew past
 * its stated size fails at once) and at the end. Returns only once nothing it started still runs.
 */
async function copyInKernel(ctx: UploadContext, req: PutRequest, fh: FileHandle): Promise<{ bytes: number; hash: string } | null> {
  const native = req.sourceFd === undefined || req.size < COPY_CHUNK || !req.read ? null : loadNativeFs();
  if (native === null || req.sourceFd === undefined) return null;
  const src = req.sourceFd;
  const signal = req.signal;
  const copy = (position: number, length: number): Promise<{ errno: number; end: number }> =>
    new Promise((resolve) => native.copyRange(src, fh.fd, position, length, (errno, end) => resolve({ errno, end })));
  const hash = new Sha256OnWorker();
  const ring: SharedArrayBuffer[] = [];
  for (let i = 0; i < COPY_RING; i++) ring.push(idleChunks.pop() ?? new SharedArrayBuffer(COPY_CHUNK));
  const failed: { error?: unknown } = {};
  const fail = (error: unknown): void => {
    if (!('error' in failed)) failed.error = error;
  };
  let flushing: Promise<void> | null = null;
  let digested = false;

  // The check, behind the copy: each chunk copied is read back from the temp file into the ring
  // (a hole past the file's length so far reads as zeros) and hashed, in order. The copy does not
  // wait for it (it holds no buffer), so it ends early and the disk writes its tail while the
  // hash, the slower of the two, catches up.
  const copied: Array<[number, number]> = [];
  let copyOver = false;
  // The put failed or went the other way: what is still queued is not checked.
  let stop = false;
  let wake: (() => void) | null = null;
  const woken = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const checked = (async (): Promise<void> => {
    const busy: Array<Promise<void> | null> = ring.map(() => null);
    // Settles once the last chunk's hash update has been called: the chunks are read back side
    // by side, but hashed in order.
    let inOrder: Promise<unknown> = Promise.resolve();
    for (let i = 0; ; i++) {
      while (copied.length === 0 && !copyOver) await new Promise<void>((resolve) => (wake = resolve));
      const next = copied.shift();
      if (next === undefined || stop || 'error' in failed) break;
      const slot = i % ring.length;
      await busy[slot];
      const [position, end] = next;
      const buf = Buffer.from(ring[slot]!, 0, end - position);
      const ready = Promise.all([readFilled(fh, buf, position), inOrder]);
      // Registered before `inOrder`'s own callback: the update is called before the next chunk's.
      const hashed = ready.then(() => hash.update(buf));
      inOrder = ready;
      busy[slot] = hashed.catch(fail);
    }
    await Promise.all(busy);
  })();

  let position = 0;
  try {
    let unflushed = 0;
    for (;;) {
      if (signal?.aborted) throw abortError(ctx.targetId, signal);
      if ('error' in failed) throw failed.error;
      // At most one byte past the stated size: a file that grows is cut off there.
      const length = Math.min(COPY_CHUNK, req.size + 1 - position);
      const { errno, end } = await copy(position, length);
      if (errno !== 0) {
        const code = getSystemErrorName(-errno);
        // Refused before it wrote a byte (holes skipped before the first data are not written):
        // the temp file is still new and empty, as the copy through the process needs it.
        if (NO_KERNEL_COPY.has(code) && (await fh.stat()).size === 0) {
          ctx.log.debug({ code, at: end }, 'copy_file_range refused: the copy goes through the process');
          return null;
        }
        throw Object.assign(new Error(`${code}: copy_file_range to '${ctx.folders.root}'`), { code, errno: -errno, syscall: 'copy_file_range' });
      }
      const n = end - position;
      if (n > 0) {
        copied.push([position, end]);
        woken();
      }
      position = end;
      if (position > req.size) throw new ShortReadError(req.size, position);
      // Write-behind, as SparseWriter's: the disk writes what is copied while the rest is.
      unflushed += n;
      if (unflushed >= FLUSH_BEHIND && flushing === null) {
        unflushed = 0;
        flushing = fh.datasync().then(
          () => {
            flushing = null;
          },
          (error: unknown) => {
            flushing = null;
            fail(error);
          },
        );
      }
      if (n < length) break;
    }
    verifySize(req.size, position);
    // A hole at the end is the file's length, not bytes. Then the tail is flushed while the check catches up.
    await fh.truncate(position);
    while (flushing !== null) await flushing;
    const tail = fh.datasync().catch(fail);
    copyOver = true;
    woken();
    await Promise.all([checked, tail]);
    if ('error' in failed) throw failed.error;
    digested = true;
    return { bytes: position, hash: await hash.digest() };
  } finally {
    stop = !digested;
    copyOver = true;
    woken();
    await checked;
    while (flushing !== null) await flushing;
    if (!digested) hash.drop();
    for (const b of ring) if (idleChunks.length < IDLE_CHUNKS_KEPT) idleChunks.push(b);
  }
}

/** Keeps the copy at `final` as a version beside it; returns the version's path. */
async function keepPrevious(ctx: UploadContext, final: string, dir: string, name: string, old: Stats): Promise<string | null> {
  for (let attempt = 0; attempt < MAX_VERSION_ATTEMPTS; attempt++) {
    const candidate = join(dir, versionName(name, old.mtime, attempt));
    try {
      await link(final, candidate);
      return candidate;
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'EEXIST') continue;
      if (code === 'ENOENT') return null;
      if (!code || !NO_HARD_LINKS.has(code)) throw err;
    }
    try {
      await copyFile(final, candidate, fsConstants.COPYFILE_EXCL);
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') continue;
      if (errnoOf(err) === 'ENOENT') return null;
      throw err;
    }
    await utimes(candidate, old.atime, old.mtime);
    await fsyncFile(candidate);
    return candidate;
  }
  throw localError(ctx.targetId, 'version-names-exhausted', 'retry', `${MAX_VERSION_ATTEMPTS} kept versions of ${final} share one timestamp`);
}

/**
 * Opens the temp file, new (O_EXCL: never through a link), mode 0600 until the copy is
 * complete. A folder that vanished since it was checked (ENOENT) is made again, once. Where
 * /proc tells, the descriptor's real path must be the temp's place under the real root: a
 * folder swapped for a link between the check and the open leaves nothing written there.
 */
async function openTemp(ctx: UploadContext, tmp: string, dir: string, dirMode: number): Promise<FileHandle> {
  let fh: FileHandle;
  for (let attempt = 0; ; attempt++) {
    try {
      fh = await open(tmp, 'wx+', FILE_MODE);
      break;
    } catch (err) {
      if (attempt > 0 || errnoOf(err) !== 'ENOENT') throw err;
      ctx.folders.forget();
      await ctx.folders.ensureDir(dir, dirMode);
    }
  }
  const proc = `/proc/self/fd/${fh.fd}`;
  const at = await readlink(proc).catch(() => null);
  if (at !== null && at !== underRealRoot(ctx.folders.root, ctx.folders.realRoot, tmp)) {
    await fh.close().catch(() => undefined);
    await unlink(at).catch((e: unknown) => ctx.log.warn({ err: e, path: at }, 'temp file not removed'));
    throw ctx.folders.linkRefused(dir);
  }
  return fh;
}

/**
 * `p`, a normalized path below `root`, at the same place below `realRoot`. A prefix cut where
 * `p` plainly starts with `root/` (path.relative resolved both paths on every put: ~1 % of a
 * 10,000-file backfill's CPU); path.relative otherwise.
 */
function underRealRoot(root: string, realRoot: string, p: string): string {
  if (p.length > root.length + 1 && p.startsWith(root) && p[root.length] === sep) return join(realRoot, p.slice(root.length + 1));
  return join(realRoot, relative(root, p));
}

/** 2^48: temp ids are 12 hex digits (see tempOwner in folders.ts). */
const TEMP_IDS = 2 ** 48;
let tempSeq = randomBytes(6).readUIntBE(0, 6);

/**
 * A temp id of its own for each put of this process: a counter from a random start (a random
 * draw per put was ~1 % of the CPU of a 10,000-file backfill); with the pid before it, no two
 * puts share a name, and O_EXCL refuses one that is there anyway.
 */
function nextTempId(): string {
  tempSeq = (tempSeq + 1) % TEMP_IDS;
  return tempSeq.toString(16).padStart(12, '0');
}

async function writeNew(ctx: UploadContext, req: PutRequest, final: string, previous: Stats | null, dirMode: number): Promise<PutResult> {
  const dir = dirname(final);
  const name = basename(final);
  // A temp name of its own per upload (with this process's pid, see folders.ts): two puts into
  // one folder never share one.
  const tmp = join(dir, tempName(name, `${TEMP_OWNER}${nextTempId()}`));
  let tmpExists = false;
  try {
    const fh = await openTemp(ctx, tmp, dir, dirMode);
    tmpExists = true;
    let copied: { bytes: number; hash: string };
    try {
      // In the kernel where it can (a copy of the source's descriptor, its holes kept), else
      // through this process: zeros stay holes there too, each chunk read back as written.
      const inKernel = await copyInKernel(ctx, req, fh);
      if (inKernel !== null) copied = inKernel;
      else {
        const sparse = new SparseWriter(
          fh,
          (at) => localError(ctx.targetId, 'write-mismatch', 'retry', `the file written at ${tmp} does not read back as the bytes read (from byte ${at})`),
          // Synchronous calls on the worker only where the archive is on a local file system.
          (await syncCallsSafe(ctx.folders.root)) ? (job) => ctx.small.chunk(job) : null,
        );
        copied = await copyChecked(ctx, req, sparse);
        await sparse.finish();
      }
      const mtime = new Date(req.mtimeMs);
      await fh.utimes(mtime, mtime);
      // The source's owner first (chown clears set-id bits), then its permission bits exactly.
      if (ctx.preserveOwner && req.source) await fh.chown(req.source.uid, req.source.gid);
      await fh.chmod(req.source ? req.source.mode & 0o777 : FILE_MODE);
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    // close() can report a delayed write error (NFS): it must not be ignored here.
    await fh.close();
    const { bytes, hash } = copied;
    if (req.signal?.aborted) throw abortError(ctx.targetId, req.signal);
    const kept = ctx.keepVersions && previous?.isFile() ? await keepPrevious(ctx, final, dir, name, previous) : null;
    try {
      await rename(tmp, final);
    } catch (err) {
      if (kept) await unlink(kept).catch((e: unknown) => ctx.log.warn({ err: e, path: kept }, 'kept version not removed'));
      throw err;
    }
    tmpExists = false;
    await ctx.folders.syncAfterRename(dir);
    if (kept) ctx.log.debug({ path: final, kept }, 'previous copy kept');
    return { remoteId: final, size: bytes, hash, hashKind: 'sha256', unchanged: false, bytesSent: bytes };
  } finally {
    if (tmpExists) {
      await rm(tmp, { force: true }).catch((e: unknown) => ctx.log.warn({ err: e, path: tmp }, 'temp file not removed'));
    }
  }
}

/**
 * `writeNew` for a small file: the same steps and checks (the final name looked at, temp file
 * beside it, holes, owner and mode kept, mtime set, fsynced, read back and compared, renamed,
 * folder fsynced), with the source read first (on the worker through `req.sourceFd` where the
 * delivery offers it, else on this thread), and the file calls made by
 * `writeSmallBatch` (below) with the other small puts of this event-loop turn, on the
 * target's worker thread. Null when a copy is at the final name and versions are kept: the
 * general path (`writeNew`) keeps it.
 */
async function writeSmall(ctx: UploadContext, req: PutRequest, final: string, dirMode: number): Promise<PutResult | null> {
  const dir = dirname(final);
  // The source's descriptor is read on the worker where the delivery offers it (see PutRequest.sourceFd).
  const sourceFd = req.readSync && req.sourceFd !== undefined ? req.sourceFd : null;
  let data: Buffer | null = null;
  if (sourceFd === null) {
    data = readSmallSync(req);
    if (data === null) {
      const chunks: Buffer[] = [];
      await readSource(ctx, req, async (chunk) => void chunks.push(chunk));
      data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    }
  }
  const size = data?.length ?? req.size;
  const job = (retried: boolean): SmallJob => {
    const tmp = join(dir, tempName(basename(final), `${TEMP_OWNER}${nextTempId()}`));
    return {
      final,
      tmp,
      dir,
      realTmp: underRealRoot(ctx.folders.root, ctx.folders.realRoot, tmp),
      data,
      sourceFd,
      size,
      mtimeMs: req.mtimeMs,
      mode: req.source ? req.source.mode & 0o777 : FILE_MODE,
      owner: ctx.preserveOwner && req.source ? { uid: req.source.uid, gid: req.source.gid } : null,
      keepVersions: ctx.keepVersions,
      syncDirAlways: false,
      retried,
    };
  };
  let sent = job(false);
  let a = await ctx.small.put(sent, req.signal);
  if (a.outcome === 'folder-gone') {
    // The folder vanished since it was checked: made again, once.
    ctx.folders.forget();
    await ctx.folders.ensureDir(dir, dirMode);
    sent = job(true);
    a = await ctx.small.put(sent, req.signal);
  }
  for (const w of a.warnings) ctx.log.warn({ err: w.error, path: w.path }, w.message);
  switch (a.outcome) {
    case 'written':
    case 'unchanged':
      return { remoteId: final, size, hash: a.hash, hashKind: 'sha256', unchanged: a.outcome === 'unchanged', bytesSent: a.outcome === 'written' ? size : 0 };
    case 'general':
      return null;
    case 'link':
      throw ctx.folders.linkRefused(a.path);
    case 'blocked':
      throw localError(ctx.targetId, 'archive-path-blocked', 'fail-item', `a folder is at ${final}`);
    case 'mismatch':
      throw localError(ctx.targetId, 'write-mismatch', 'retry', `the file written at ${sent.tmp} does not hash as the bytes read (${a.written} ≠ ${a.hash})`);
    case 'aborted':
      throw abortError(ctx.targetId, req.signal!);
    case 'source-error':
      throw new SourceError(a.error);
    case 'short-read':
      throw new ShortReadError(req.size, a.got);
    default:
      // 'error', and 'folder-gone' a second time: the file call's own error, classified as before.
      throw a.outcome === 'error' ? a.error : Object.assign(new Error(`ENOENT: the folder ${dir} is gone`), { code: 'ENOENT' });
  }
}

/**
 * One put: maps `remotePath` under the root, makes its folders, and writes the file (see
 * `writeNew`, and `writeSmall` for a small file) unless the copy there already holds the same
 * bytes (same size, same sha256: `unchanged`, the source read once and nothing written). A folder
 * at the name fails the item.
 */
export async function putFile(ctx: UploadContext, req: PutRequest): Promise<PutResult> {
  if (req.signal?.aborted) throw abortError(ctx.targetId, req.signal);
  const final = join(ctx.folders.root, mapLocalPath(req.remotePath, ctx.targetId));
  // Folders 0700, or as wide as the source's own folder when that is wider.
  const dirMode = DIR_MODE | ((req.source?.dirMode ?? 0) & 0o777);
  // The small puts' worker starts while the folders are made (the answer is kept: no second statfs).
  if (req.size <= SMALL_FILE) void syncCallsSafe(ctx.folders.root).then((safe) => safe && ctx.small.warm());
  await ctx.folders.ensureDir(dirname(final), dirMode);
  // Synchronous calls (on the worker) only where the archive is on a local file system (see syncCallsSafe).
  if (req.size <= SMALL_FILE && (await syncCallsSafe(ctx.folders.root))) {
    const put = await writeSmall(ctx, req, final, dirMode);
    if (put) return put;
  }
  const release = await ctx.copies.acquire(copyBytes(req.size), ctx.targetId, req.signal);
  try {
    return await putLarge(ctx, req, final, dirMode);
  } finally {
    release();
  }
}

/** `putFile` past the small-file path, its copy's chunk memory granted (see `COPY_BUDGET`). */
async function putLarge(ctx: UploadContext, req: PutRequest, final: string, dirMode: number): Promise<PutResult> {
  const existing = await lstatOrNull(final);
  if (existing?.isSymbolicLink()) throw ctx.folders.linkRefused(final);
  if (existing?.isDirectory()) throw localError(ctx.targetId, 'archive-path-blocked', 'fail-item', `a folder is at ${final}`);
  if (existing?.isFile() && existing.size === req.size) {
    const local = readSource(ctx, req, null).then((s) => s.digest('sha256'));
    const [hash, stored] = await Promise.all([local, hashFile('sha256', final, req.signal)]);
    if (hash === stored) {
      return { remoteId: final, size: req.size, hash, hashKind: 'sha256', unchanged: true, bytesSent: 0 };
    }
  }
  return writeNew(ctx, req, final, existing, dirMode);
}

/** The unit of a hole: file systems allocate (and punch) whole blocks, 4 KiB on most. */
const BLOCK = 4096;
const ZEROS = Buffer.alloc(BLOCK);
/** A large file's copy starts an fdatasync after each this many bytes written (write-behind). */
const FLUSH_BEHIND = 64 * 1024 * 1024;

/**
 * Writes a new file from its chunks, in order, leaving every block-aligned run of zeros
 * unwritten: on a file system with sparse files those stay holes, so a sparse source (a VM
 * disk, a database file) stays sparse in the archive, and what is unwritten reads back as zeros
 * all the same. Each chunk's range is then read back and compared with the chunk (a copy that
 * does not hold the bytes read throws `mismatch(offset)`): the check of the whole file, done
 * while it is written, with a compare rather than a second hash of everything. A chunk is read
 * back while the next one is written (two chains, each in order). `finish()` sets the length (a
 * trailing hole included). The file MUST be new and empty (opened with `wx`).
 */
class SparseWriter {
  /** The bytes handed to `write` so far: where the next chunk goes. */
  private position = 0;
  private back: Buffer | null = null;
  /** The last chunk's write, and its read-back: each chunk's waits for the one before. */
  private writes: Promise<void> = Promise.resolve();
  private checks: Promise<void> = Promise.resolve();
  /** Bytes written since the last write-behind flush started. */
  private unflushed = 0;
  /** The write-behind flush running now, if any; its failure fails the copy. */
  private flushing: Promise<void> | null = null;
  private flushError: { error: unknown } | null = null;

  constructor(
    private readonly fh: FileHandle,
    private readonly mismatch: (offset: number) => Error,
    /** Writes and reads back a chunk in shared memory on the target's worker thread (SmallPuts.chunk); null: do it here. */
    private readonly onWorker: ((job: ChunkJob) => Promise<ChunkAnswer> | null) | null = null,
  ) {}

  /**
   * Resolves once `chunk` is written and read back. The next chunk may be given before that: it
   * is written after this one, beside this one's read-back. `chunk` MUST stay as it is until
   * this resolves. After a failure the chunks given later are not written, and reject. A chunk
   * in shared memory goes to the worker thread when there is one: its pieces' writes and its
   * read-back are one message there, against a thread-pool round trip each here.
   */
  write(chunk: Buffer): Promise<void> {
    const position = this.position;
    this.position += chunk.length;
    let viaWorker = false;
    const written = this.writes.then(async () => {
      if (this.flushError) throw this.flushError.error;
      const shared = chunk.buffer instanceof SharedArrayBuffer ? chunk.buffer : null;
      const answer = shared === null ? null : (this.onWorker?.({ fd: this.fh.fd, buffer: shared, offset: chunk.byteOffset, length: chunk.length, position }) ?? null);
      if (answer !== null) {
        viaWorker = true;
        const a = await answer;
        if ('error' in a) throw a.error;
        if (a.mismatchAt !== null) throw this.mismatch(a.mismatchAt);
      } else await this.writeSparse(chunk, position);
      this.unflushed += chunk.length;
      if (this.unflushed >= FLUSH_BEHIND && this.flushing === null) this.flushBehind();
    });
    const checked = Promise.all([written, this.checks]).then(() => (viaWorker ? undefined : this.readBack(chunk, position)));
    this.writes = written;
    this.checks = checked;
    // The chains hold these; a failure reaches the caller through what is returned.
    written.catch(() => undefined);
    checked.catch(() => undefined);
    return checked;
  }

  /**
   * Write-behind: an fdatasync started beside the copy, not waited for, so the disk writes what
   * is already copied while the rest is (the kernel would start only after 30 s, or at the final
   * fsync, which then waited for the whole file). Durability is still the final fsync's.
   */
  private flushBehind(): void {
    this.unflushed = 0;
    this.flushing = this.fh.datasync().then(
      () => {
        this.flushing = null;
      },
      (error: unknown) => {
        this.flushing = null;
        this.flushError ??= { error };
      },
    );
  }

  /** Resolves once no write, read-back or write-behind flush runs (before the descriptor is closed, failed or not). */
  async idle(): Promise<void> {
    await this.writes.catch(() => undefined);
    await this.checks.catch(() => undefined);
    while (this.flushing !== null) await this.flushing;
  }

  private async readBack(chunk: Buffer, position: number): Promise<void> {
    if (this.back === null || this.back.length < chunk.length) this.back = Buffer.allocUnsafe(chunk.length);
    const back = this.back.subarray(0, chunk.length);
    await readFilled(this.fh, back, position);
    if (!back.equals(chunk)) throw this.mismatch(position);
  }

  private async writeSparse(chunk: Buffer, position: number): Promise<void> {
    let start = 0;
    while (start < chunk.length) {
      // Pieces end at block boundaries of the file, so a zero piece is a whole block where it can.
      const end = Math.min(chunk.length, start + BLOCK - ((position + start) % BLOCK));
      if (isZero(chunk, start, end)) {
        start = end;
        continue;
      }
      // Coalesce the data pieces that follow into one write.
      let stop = end;
      for (;;) {
        if (stop >= chunk.length) break;
        const next = Math.min(chunk.length, stop + BLOCK);
        if (isZero(chunk, stop, next)) break;
        stop = next;
      }
      await writeAt(this.fh, chunk.subarray(start, stop), position + start);
      start = stop;
    }
  }

  /** Sets the file's length to the bytes written: a run of zeros at the end becomes a hole too. */
  async finish(): Promise<void> {
    await this.idle();
    if (this.flushError) throw this.flushError.error;
    await this.fh.truncate(this.position);
  }
}

/**
 * Fills `buf` from `position` of the file being written. Past its end reads as zeros: a hole not
 * yet covered by the file's length (set once the copy is over).
 */
async function readFilled(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  for (let got = 0; got < buf.length; ) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) {
      buf.fill(0, got);
      break;
    }
    got += bytesRead;
  }
}

function isZero(b: Buffer, start: number, end: number): boolean {
  // Most blocks of most files start or end with a byte that is not 0: no compare needed.
  if (b[start] !== 0 || b[end - 1] !== 0) return false;
  return b.subarray(start, end).equals(end - start === BLOCK ? ZEROS : ZEROS.subarray(0, end - start));
}

/**
 * The most one write(2) of a large file's copy asks for. A larger write lets the kernel put the
 * new bytes in a larger page-cache folio (ext4 has large folios since Linux 6.11), which it must
 * find as contiguous free memory: in a virtual machine whose balloon hands free memory back to
 * the host, that memory is mostly the host's again, and every page of it faults on first touch.
 * Measured on this VM (Linux 6.18, 1 GiB copied into a fresh file after 3 s idle, read in 1 MiB
 * chunks, then fsync): writes of 1 MiB took 2.5 s, of 128 KiB 0.7 s, of 64 KiB 0.7 s, while
 * `cp` + fsync took 1.1 s (it splices in 64 KiB pieces). On a machine without a balloon the
 * smaller writes cost a few more system calls per chunk, nothing more.
 */
const WRITE_PIECE = 128 * 1024;

/**
 * Writes `data` at `position` in pieces of at most WRITE_PIECE (see above), one after another:
 * sent at once, they only wait for each other on the file's lock (and spin on it: a tenth of the
 * copy's CPU in a profile).
 */
async function writeAt(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let start = 0; start < data.length; start += WRITE_PIECE) await writeAll(fh, data.subarray(start, Math.min(data.length, start + WRITE_PIECE)), position + start);
}

/** One piece of writeAt, written whole (a short write goes on from where it stopped). */
async function writeAll(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off, position + off);
    off += bytesWritten;
  }
}

/*
 * The small-file put of the local target, in batches, on a worker thread. Everything a small put
 * does to the archive's file system (the look at the final name, the temp file's create, writes,
 * mtime, mode and owner, its flush, read-back and compare, the rename, and the folder's flush) is
 * one function, `writeSmallBatch`, run on one worker thread per target (so the main thread's core
 * keeps the pipeline and the journal going while the other does the file calls), or on the main
 * thread where the worker cannot run. It reads the source too where the delivery offers its
 * descriptor (PutRequest.sourceFd). Puts that come in one event-loop turn go in a few batches
 * (see SPLIT), each one message and answered in one: its temp files are all written first, then
 * flushed together, then checked and renamed, then flushed again; only then does any put of the
 * batch resolve. Where the thread has the archive's flush barrier (kit/fs-barrier.ts: one syncfs
 * of its file system, shared with the other batches in flight) each flush is one barrier;
 * elsewhere each temp file is fsynced on the thread pool, and each folder touched once (an fsync
 * begun after those renames, shared with the other batches in flight on that thread: see
 * FolderSyncs). A put is recorded done only once its copy and its folder entry are durable, as
 * with one put at a time.
 *
 * The worker is started on the first small put, does not keep the process alive when idle, and
 * is ended by `close`. If it cannot start, or dies, a warning is logged and the small puts run on
 * the main thread from then on: the puts it held are run again there (their temp files removed
 * first), with the folder fsynced even where the copy is found already in place (the worker may
 * have renamed it without the folder's fsync).
 */

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

/**
 * The folder fsyncs of the batches in flight on one thread, by folder: the one running and the
 * one that starts after it. A batch that renamed into a folder joins the next fsync to start
 * there (queued behind the running one, or started now): one that began before its renames would
 * not cover them. The batches in flight at once mostly rename into the same folder or two (a
 * lease is in journal order, which is walk order), so they share the fsyncs.
 */
type FolderSyncs = Map<string, { running: Promise<unknown> | null; next: Promise<unknown> | null }>;

/** What `writeSmallBatch` calls: node:fs and createHash, the worker's own or the main thread's. */
export interface SmallDeps {
  /** Shared by every batch this thread runs (see FolderSyncs). */
  folderSyncs: FolderSyncs;
  /**
   * The archive's flush barrier for this thread (kit/fs-barrier.ts), or null: one syncfs for the
   * batch's temp files and one for its renames, in place of an fsync per temp file and per folder,
   * for the files on its file system.
   */
  barrier: Barrier | null;
  fs: Pick<
    typeof fs,
    | 'lstatSync'
    | 'fstatSync'
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
  const { fs: f, createHash: hashOf, folderSyncs, barrier } = deps;
  // Before the first write: a flush error reported from now on may be of this batch's pages.
  const mark = barrier === null ? 0 : barrier.mark();
  // Jobs whose temp file is on the barrier's file system: flushed by it, not by an fsync of their own.
  const covered: boolean[] = jobs.map(() => false);
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

  // The temp files on the barrier's file system: one flush begun after all their writes.
  if (barrier !== null) {
    for (let i = 0; i < jobs.length; i++) {
      const fd = fds[i];
      if (fd === null || fd === undefined) continue;
      try {
        covered[i] = f.fstatSync(fd).dev === barrier.dev;
      } catch {
        // Its own fsync, below, says what is wrong.
      }
    }
  }
  const tempsFlushed =
    barrier !== null && covered.includes(true)
      ? barrier.after().then(() => {
          const error = barrier.errorSince(mark);
          if (error === null) return;
          for (let i = 0; i < jobs.length; i++) {
            if (!covered[i] || fds[i] === null || fds[i] === undefined) continue;
            removeTemp(i);
            fail(i, { outcome: 'error', error, warnings: [] });
          }
        })
      : undefined;
  // Every other temp file fsynced at once: they wait on the disk together, on the thread pool.
  await Promise.all([
    tempsFlushed,
    ...jobs.map((_, i) => {
      const fd = fds[i];
      if (fd === null || fd === undefined || covered[i]) return undefined;
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
  ]);

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

  // One fsync of a folder: resolves with its error (opening, syncing or closing it), or null.
  const fsyncFolder = (dir: string): Promise<unknown> =>
    new Promise<unknown>((resolve) => {
      let dfd: number;
      try {
        dfd = f.openSync(dir, 'r');
      } catch (error) {
        resolve(error);
        return;
      }
      f.fsync(dfd, (error) => {
        try {
          f.closeSync(dfd);
        } catch (e) {
          resolve(error ?? e);
          return;
        }
        resolve(error ?? null);
      });
    });
  // The folder's next fsync to start, shared with the other batches of this thread (FolderSyncs).
  const syncAfterRenames = (dir: string): Promise<unknown> => {
    let s = folderSyncs.get(dir);
    if (s === undefined) {
      s = { running: null, next: null };
      folderSyncs.set(dir, s);
    }
    const entry = s;
    if (entry.next !== null) return entry.next;
    const start = (): Promise<unknown> => {
      const run = fsyncFolder(dir);
      entry.running = run;
      void run.then(() => {
        if (entry.running === run) entry.running = null;
        if (entry.running === null && entry.next === null && folderSyncs.get(dir) === entry) folderSyncs.delete(dir);
      });
      return run;
    };
    if (entry.running === null) return start();
    const next = entry.running.then(() => {
      entry.next = null;
      return start();
    });
    entry.next = next;
    return next;
  };

  // The folders on the barrier's file system (every put renamed into them flushed by it): one
  // flush begun after this batch's renames. Each other folder renamed into: an fsync of its own, all
  // at once, each begun after this batch's renames (and shared with other batches). A put is
  // answered after its folder's flush.
  const viaBarrier = [...renamed].filter(([, which]) => which.every((i) => covered[i]));
  const renamesFlushed =
    barrier !== null && viaBarrier.length > 0
      ? barrier.after().then(() => {
          const error = barrier.errorSince(mark);
          if (error !== null) for (const [, which] of viaBarrier) for (const i of which) fail(i, { outcome: 'error', error, warnings: [] });
        })
      : undefined;
  await Promise.all([
    renamesFlushed,
    ...[...renamed].map(async ([dir, which]) => {
      if (which.every((i) => covered[i])) return;
      const error = await syncAfterRenames(dir);
      if (error === null) return;
      // Some filesystems (certain FUSE and network mounts) cannot fsync a folder: not an error.
      const code = (error as { code?: string }).code;
      if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR') for (const i of which) fail(i, { outcome: 'error', error, warnings: [] });
    }),
  ]);
  return answers;
}

/**
 * One chunk of a large copy for the worker thread (see SparseWriter): `length` bytes at `offset`
 * of the shared `buffer`, to go at `position` of the file open as `fd` (the copy's temp file, open
 * until every chunk it sent is answered).
 */
export interface ChunkJob {
  fd: number;
  buffer: SharedArrayBuffer;
  offset: number;
  length: number;
  position: number;
}

/** What became of a chunk: written and read back the same (`mismatchAt` null), read back different from that byte of the file, or an error. */
export type ChunkAnswer = { mismatchAt: number | null } | { error: unknown };

/**
 * SparseWriter's write and read-back of one chunk with synchronous calls, for the worker thread:
 * every block-aligned run of zeros is left unwritten (a hole), the rest written in pieces of at
 * most 128 KiB (WRITE_PIECE), one after another, then the chunk's range read back and compared.
 * Self-contained (its source is the worker's): the constants are SparseWriter's. Never throws:
 * the answer says what happened.
 */
export function writeChunkSync(fs: Pick<typeof import('node:fs'), 'writeSync' | 'readSync'>, job: ChunkJob, back: { buffer: Buffer | null }): ChunkAnswer {
  const BLOCK_SIZE = 4096;
  const PIECE = 128 * 1024;
  const chunk = Buffer.from(job.buffer, job.offset, job.length);
  const zero = (start: number, end: number): boolean => {
    if (chunk[start] !== 0 || chunk[end - 1] !== 0) return false;
    for (let i = start; i < end; i++) if (chunk[i] !== 0) return false;
    return true;
  };
  try {
    let start = 0;
    while (start < chunk.length) {
      const end = Math.min(chunk.length, start + BLOCK_SIZE - ((job.position + start) % BLOCK_SIZE));
      if (zero(start, end)) {
        start = end;
        continue;
      }
      let stop = end;
      while (stop < chunk.length) {
        const next = Math.min(chunk.length, stop + BLOCK_SIZE);
        if (zero(stop, next)) break;
        stop = next;
      }
      for (let at = start; at < stop; ) {
        at += fs.writeSync(job.fd, chunk, at, Math.min(PIECE, stop - at), job.position + at);
      }
      start = stop;
    }
    if (back.buffer === null || back.buffer.length < chunk.length) back.buffer = Buffer.allocUnsafe(Math.max(chunk.length, 1024 * 1024));
    const got = back.buffer.subarray(0, chunk.length);
    for (let at = 0; at < chunk.length; ) {
      const n = fs.readSync(job.fd, got, at, chunk.length - at, job.position + at);
      // Past the end: a hole not yet covered by the length reads as zeros (finish() sets it).
      if (n === 0) {
        got.fill(0, at);
        break;
      }
      at += n;
    }
    return { mismatchAt: got.equals(chunk) ? null : job.position };
  } catch (error) {
    return { error };
  }
}

/**
 * `handle` for each message given to the function returned, one a turn of the event loop, in
 * order. The worker takes batches so: messages come in bursts, and a burst's messages are all
 * delivered in one go; taken one a turn, a flush that returned while a batch was written lets
 * the batch it covers rename and answer before the next is written, rather than after the whole
 * burst (the main thread then leases and reads the next puts meanwhile).
 *
 * MUST reference nothing outside itself: its source text is run on the worker thread.
 */
export function oneATurn<T>(handle: (m: T) => void): (m: T) => void {
  const inbox: T[] = [];
  const next = (): void => {
    try {
      handle(inbox.shift()!);
    } finally {
      // After this batch: what became ready meanwhile (a flush returned) runs before the next.
      if (inbox.length > 0) setImmediate(next);
    }
  };
  return (m) => {
    inbox.push(m);
    if (inbox.length === 1) setImmediate(next);
  };
}

/** The worker: CommonJS, run with `eval` (no file of its own to find in dist/ or under vitest). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const deps = { fs: require('node:fs'), createHash: require('node:crypto').createHash, folderSyncs: new Map(), barrier: null };
// Defined in case the function's source was compiled with names kept (esbuild's keepNames).
var __name = (f) => f;
const writeSmallBatch = ${writeSmallBatch.toString()};
const writeChunkSync = ${writeChunkSync.toString()};
const makeBarrier = ${makeBarrier.toString()};
// The native syncfs (kit/fs-barrier.ts), where the main thread found it; batches bring the
// descriptor to flush through (the main thread's, held open for this thread alone).
let syncfs = null;
try {
  if (workerData.barrierModule) syncfs = require(workerData.barrierModule).syncfs;
} catch {}
const errName = (errno) => {
  try {
    return require('node:util').getSystemErrorName(-errno);
  } catch {
    return 'E' + errno;
  }
};
let barrierAt = '';
const back = { buffer: null };
// Errors lose their own fields (code, errno, syscall, path) when posted: they go as plain data.
const plain = (e) => (e instanceof Error ? { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path, stack: e.stack } : { message: String(e) });
const oneATurn = ${oneATurn.toString()};
const takeBatch = oneATurn((m) => void handle(m));
parentPort.on('message', (m) => (m.chunk ? handle(m) : takeBatch(m)));
async function handle(m) {
  if (m.chunk) {
    const a = writeChunkSync(deps.fs, m.chunk, back);
    if ('error' in a) a.error = plain(a.error);
    parentPort.postMessage({ chunkId: m.chunkId, answer: a });
    return;
  }
  const flags = new Int32Array(m.flags);
  // A descriptor opened again (after an idle spell) may have the last one's number, and the
  // archive's disk mounted again another device: a new barrier for either.
  if (!m.barrier || !syncfs) deps.barrier = null;
  else if (m.barrier.fd + ':' + m.barrier.dev !== barrierAt || deps.barrier === null) {
    deps.barrier = makeBarrier(syncfs, errName, m.barrier, m.root);
    barrierAt = m.barrier.fd + ':' + m.barrier.dev;
  }
  const answers = await writeSmallBatch(deps, m.jobs, (i) => Atomics.load(flags, i) !== 0);
  for (const a of answers) {
    if (a.outcome === 'error' || a.outcome === 'source-error') a.error = plain(a.error);
    for (const w of a.warnings) w.error = plain(w.error);
  }
  parentPort.postMessage({ id: m.id, answers });
}
`;

interface PlainError {
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
  stack?: string;
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Nothing is flushed through it any more.
  }
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
/**
 * A turn that queues this many puts sends them at once, without waiting for the turn's end: the
 * worker writes them while this thread leases and reads the next ones. Sent only at the turn's
 * end, a lease's 512 puts went as one wave and came back as one (they share their flushes), and
 * the two threads took turns again: 10,000 files of 4 KiB on tmpfs took 2.0–2.2 s, with this and
 * the worker taking its batches one a turn (oneATurn) 1.7–1.8 s.
 */
const POST_AT = 64;

/** Small puts, and large copies' chunks, on the main thread instead of the worker (tests that fault node:fs in this thread). */
export const smallPutsInThread = { forced: false };

/**
 * The small puts of one local target: `put` queues a job, the jobs queued in one event-loop turn
 * go to the worker in a few batches, as soon as `POST_AT` are queued and at the turn's end (or,
 * without a worker, to `writeSmallBatch` on this thread, as one at the turn's end).
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
  /** The folder fsyncs of the batches run on this thread (see FolderSyncs). */
  readonly #folderSyncs: FolderSyncs = new Map();
  /** Chunks of large copies posted to the worker (see chunk), by id. */
  readonly #chunks = new Map<number, (a: ChunkAnswer) => void>();
  /**
   * The archive root's descriptors for flush barriers (kit/fs-barrier.ts), one for the worker and
   * one for this thread: undefined until opened, null where there is no barrier (no native
   * syncfs, or a file system it does not cover). Held only while batches are in flight, and
   * closed once none is (a flush that returned covers every batch before it: nothing is lost), so
   * that an idle daemon keeps no descriptor on the archive's disk (a USB disk can be unmounted).
   */
  #workerBarrier: BarrierFd | null | undefined;
  #hereBarrier: { at: BarrierFd; barrier: Barrier } | null | undefined;
  /** Batches run on this thread and not yet answered. */
  #hereInFlight = 0;
  /** Whether the barrier's use was logged (once per target). */
  #barrierLogged = false;

  /** `root`: the archive root, whose file system the barriers flush. */
  constructor(
    private readonly log: Logger,
    private readonly root: string,
  ) {}

  /** A descriptor of the root for a barrier, or null (none: see #workerBarrier), or undefined (not now). */
  #openBarrier(): BarrierFd | null | undefined {
    if (fsBarrierModule() === null) return null;
    try {
      const at = openBarrierFd(this.root);
      if (!this.#barrierLogged) {
        this.#barrierLogged = true;
        this.log.debug({ root: this.root, barrier: at !== null }, at !== null ? 'small puts flushed by one syncfs a batch' : 'small puts fsynced one by one: the file system is not one syncfs covers');
      }
      return at;
    } catch {
      return undefined;
    }
  }

  /** This thread's barrier (see #hereBarrier). */
  #barrierHere(): Barrier | null {
    if (this.#hereBarrier === undefined) {
      const syncfs = loadSyncfs();
      const at = syncfs === null ? null : this.#openBarrier();
      if (at === undefined) return null;
      this.#hereBarrier = at === null || syncfs === null ? null : { at, barrier: makeBarrier(syncfs, (errno) => getSystemErrorName(-errno), at, this.root) };
    }
    return this.#hereBarrier?.barrier ?? null;
  }

  /**
   * Writes and reads back one chunk of a large copy on the worker thread (writeChunkSync): one
   * message, where the main thread takes a thread-pool round trip for every piece it writes and
   * one for the read-back. Null when there is no worker (it failed, is closed, or puts run here):
   * the caller does it itself. A worker that fails or is closed meanwhile answers with an error.
   */
  chunk(job: ChunkJob): Promise<ChunkAnswer> | null {
    const worker = this.#inThread || this.#closed || smallPutsInThread.forced ? null : this.#theWorker();
    if (worker === null) return null;
    const chunkId = this.#nextId++;
    return new Promise((resolve) => {
      this.#chunks.set(chunkId, resolve);
      worker.ref();
      try {
        worker.postMessage({ chunkId, chunk: job });
      } catch (error) {
        this.#chunks.delete(chunkId);
        if (this.#posted.size === 0 && this.#chunks.size === 0) worker.unref();
        resolve({ error });
      }
    });
  }

  /** The chunks posted and not answered get `error` (the worker is gone: nothing of theirs still runs). */
  #dropChunks(error: Error): void {
    const waiting = [...this.#chunks.values()];
    this.#chunks.clear();
    for (const resolve of waiting) resolve({ error });
  }

  put(job: SmallJob, signal: AbortSignal | undefined): Promise<SmallAnswer> {
    return new Promise((resolve) => {
      if (this.#queue.length === 0) setImmediate(() => this.#flush());
      this.#queue.push({ job, signal, resolve });
      // On this thread, a batch gains nothing by going early: one a turn, as few flushes as can be.
      if (this.#queue.length >= POST_AT && !this.#inThread && !smallPutsInThread.forced) this.#flush();
    });
  }

  #flush(): void {
    const queued = this.#queue;
    if (queued.length === 0) return;
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
    if (this.#workerBarrier === undefined) this.#workerBarrier = this.#openBarrier();
    worker.ref();
    try {
      worker.postMessage({ id, jobs, flags: flags.buffer, barrier: this.#workerBarrier ?? null, root: this.root }, [packed]);
    } catch (err) {
      // Not sent (a job the worker cannot be given): this batch runs here; the worker stays.
      this.#posted.delete(id);
      unlisten();
      if (this.#posted.size === 0) this.#closeWorkerBarrier();
      if (this.#posted.size === 0 && this.#chunks.size === 0) worker.unref();
      this.log.warn({ err, puts: batch.length }, 'small puts not posted to the worker thread: run on the main thread');
      this.#runHere(batch);
    }
  }

  #runHere(batch: Waiting[]): void {
    this.#hereInFlight++;
    writeSmallBatch(
      { fs, createHash, folderSyncs: this.#folderSyncs, barrier: this.#barrierHere() },
      batch.map((w) => w.job),
      (i) => batch[i]!.signal?.aborted === true,
    )
      .then(
        (answers) => {
          for (const [i, w] of batch.entries()) w.resolve(answers[i]!);
        },
        // writeSmallBatch answers every job rather than throw: this is a bug, failed per put.
        (error: unknown) => {
          for (const w of batch) w.resolve({ outcome: 'error', error, warnings: [] });
        },
      )
      .finally(() => {
        if (--this.#hereInFlight === 0) this.#closeHereBarrier();
      });
  }

  /** No batch runs here: this thread's barrier descriptor is closed (opened again for the next). */
  #closeHereBarrier(): void {
    if (this.#hereBarrier) closeQuietly(this.#hereBarrier.at.fd);
    this.#hereBarrier = undefined;
  }

  #theWorker(): Worker | null {
    if (this.#worker) return this.#worker;
    let w: Worker;
    try {
      w = new Worker(WORKER_SOURCE, { eval: true, workerData: { barrierModule: fsBarrierModule() } });
    } catch (err) {
      this.#failed(err);
      return null;
    }
    w.unref();
    w.on('message', (m: { id: number; answers: SmallAnswer[] } | { chunkId: number; answer: ChunkAnswer }) => {
      if ('chunkId' in m) {
        const resolve = this.#chunks.get(m.chunkId);
        if (!resolve) return;
        this.#chunks.delete(m.chunkId);
        if (this.#posted.size === 0 && this.#chunks.size === 0) w.unref();
        const a = m.answer;
        resolve('error' in a ? { error: fromPlain(a.error as PlainError) } : a);
        return;
      }
      const posted = this.#posted.get(m.id);
      if (!posted) return;
      this.#posted.delete(m.id);
      posted.unlisten();
      const batch = posted.batch;
      // Every batch the worker flushed is answered: its barrier's descriptor is closed for now.
      if (this.#posted.size === 0) this.#closeWorkerBarrier();
      if (this.#posted.size === 0 && this.#chunks.size === 0) w.unref();
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
    this.#closeWorkerBarrier();
    this.#dropChunks(new Error(`the local target's worker thread failed during a copy: ${err instanceof Error ? err.message : String(err)}`));
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

  /**
   * Starts the worker ahead of the first batch: its start (~40–60 ms, more while the first walk
   * keeps the main thread busy) then overlaps the first puts' folder making rather than delaying
   * their batch.
   */
  warm(): void {
    if (!this.#inThread && !this.#closed && !smallPutsInThread.forced) this.#theWorker();
  }

  /** Ends the worker. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const w = this.#worker;
    this.#worker = null;
    if (w) await w.terminate();
    this.#closeWorkerBarrier();
    this.#closeHereBarrier();
    this.#dropChunks(new Error("the local target's worker thread was closed during a copy"));
  }

  /**
   * The worker's barrier descriptor closed: no batch of its is in flight, or the worker is gone (a
   * flush of its still running keeps the file open in the kernel). Opened again for the next batch.
   */
  #closeWorkerBarrier(): void {
    if (this.#workerBarrier) closeQuietly(this.#workerBarrier.fd);
    this.#workerBarrier = undefined;
  }
}
