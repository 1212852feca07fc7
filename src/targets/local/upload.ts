/**
 * The upload path of the local target. A put is atomic and durable: the bytes go to a temp file
 * beside the final name, which is read back and checked (a large file chunk by chunk as it is
 * written, against the bytes read), fsynced, and renamed over the final name; the folder is then
 * fsynced. A crash or a failure at any point leaves the previous copy
 * (or nothing) at the final name, never a part. A small file's file calls are made on a worker
 * thread, in batches (small-batch.ts). A large file's sha256 is computed on a worker
 * thread (archive/sha256-worker.ts) from the same reused shared chunks the copy writes, while
 * the next chunk is read and the previous one written and read back.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, type Stats } from 'node:fs';
import { copyFile, link, lstat, open, readlink, rename, rm, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { addAbortSignal } from 'node:stream';
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
import type { SmallJob, SmallPuts } from './small-batch.js';

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
 * sixth of the CPU), made in batches on the target's worker thread (small-batch.ts), so that they
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
  /** The small puts' batches and worker thread (see small-batch.ts). */
  small: SmallPuts;
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
  const ring: SharedArrayBuffer[] = [];
  for (let i = 0; i < COPY_RING; i++) ring.push(idleChunks.pop() ?? new SharedArrayBuffer(COPY_CHUNK));
  const busy: Array<Promise<void> | null> = ring.map(() => null);
  // The first failure of a chunk's hash or write (set from their callbacks, hence an object).
  const failed: { error?: unknown } = {};
  let writing: Promise<void> = Promise.resolve();
  let bytes = 0;
  let digested = false;
  try {
    for (let i = 0; ; i++) {
      const slot = i % COPY_RING;
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
      // Writes in order, one at a time; a failed one stops those after it.
      writing = writing.then(() => ('error' in failed ? undefined : sparse.write(chunk)));
      busy[slot] = Promise.all([hashed, writing]).then(
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
      // Zeros stay holes: a sparse source stays sparse here. Each chunk is read back as written.
      const sparse = new SparseWriter(fh, (at) => localError(ctx.targetId, 'write-mismatch', 'retry', `the file written at ${tmp} does not read back as the bytes read (from byte ${at})`));
      copied = await copyChecked(ctx, req, sparse);
      await sparse.finish();
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
 * `writeSmallBatch` (small-batch.ts) with the other small puts of this event-loop turn, on the
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
  await ctx.folders.ensureDir(dirname(final), dirMode);
  // Synchronous calls (on the worker) only where the archive is on a local file system (see syncCallsSafe).
  if (req.size <= SMALL_FILE && (await syncCallsSafe(ctx.folders.root))) {
    const put = await writeSmall(ctx, req, final, dirMode);
    if (put) return put;
  }
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
 * while it is written, with a compare rather than a second hash of everything. `finish()` sets
 * the length (a trailing hole included). The file MUST be new and empty (opened with `wx`).
 */
class SparseWriter {
  private position = 0;
  private back: Buffer | null = null;
  /** Bytes written since the last write-behind flush started. */
  private unflushed = 0;
  /** The write-behind flush running now, if any; its failure fails the copy. */
  private flushing: Promise<void> | null = null;
  private flushError: { error: unknown } | null = null;

  constructor(
    private readonly fh: FileHandle,
    private readonly mismatch: (offset: number) => Error,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    if (this.flushError) throw this.flushError.error;
    await this.writeSparse(chunk);
    await this.readBack(chunk, this.position);
    this.position += chunk.length;
    this.unflushed += chunk.length;
    if (this.unflushed >= FLUSH_BEHIND && this.flushing === null) this.flushBehind();
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

  /** Resolves once no write-behind flush runs (before the descriptor is closed, failed or not). */
  async idle(): Promise<void> {
    while (this.flushing !== null) await this.flushing;
  }

  private async readBack(chunk: Buffer, position: number): Promise<void> {
    if (this.back === null || this.back.length < chunk.length) this.back = Buffer.allocUnsafe(chunk.length);
    const back = this.back.subarray(0, chunk.length);
    for (let got = 0; got < chunk.length; ) {
      const { bytesRead } = await this.fh.read(back, got, chunk.length - got, position + got);
      // Past the end: a hole not yet covered by the length reads as zeros (finish() sets it).
      if (bytesRead === 0) {
        back.fill(0, got);
        break;
      }
      got += bytesRead;
    }
    if (!back.equals(chunk)) throw this.mismatch(position);
  }

  private async writeSparse(chunk: Buffer): Promise<void> {
    let start = 0;
    while (start < chunk.length) {
      // Pieces end at block boundaries of the file, so a zero piece is a whole block where it can.
      const end = Math.min(chunk.length, start + BLOCK - ((this.position + start) % BLOCK));
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
      await writeAt(this.fh, chunk.subarray(start, stop), this.position + start);
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

function isZero(b: Buffer, start: number, end: number): boolean {
  // Most blocks of most files start or end with a byte that is not 0: no compare needed.
  if (b[start] !== 0 || b[end - 1] !== 0) return false;
  return b.subarray(start, end).equals(end - start === BLOCK ? ZEROS : ZEROS.subarray(0, end - start));
}

async function writeAt(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off, position + off);
    off += bytesWritten;
  }
}
