import { closeSync, constants as fsc, fstatSync, openSync, readSync, readlinkSync, realpathSync, statSync, type Stats } from 'node:fs';
import { lstat, open as openFile, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { syncCallsSafe } from '../targets/kit/fs-kind.js';
import { fileStatOf } from './watch-source.js';
import { collisionName } from '../archive/remote-path.js';
import { rootIdentity, waitForRoot, waitingReason } from './roots.js';
import { rawJoin } from './walk.js';
import { StagecoachError } from '../errors.js';
import { RetriesExhaustedError, withRetry } from '../retry/pacer.js';
import { throttleStream, type TokenBucket } from '../retry/rate-limit.js';
import type { DelayPolicy } from '../retry/delay.js';
import { leaseClaim, type Delivery, type LeaseClaims, type Store } from '../state/store.js';
import type { Emitter } from '../telemetry/bus.js';
import type { PipelineEvents } from '../telemetry/events.js';
import type { PutResult, SourceInfo, Target } from '../targets/target.js';
import { journal, journalErrorIn } from '../state/journal-error.js';

export interface DeliverContext {
  target: Target;
  store: Store;
  retry: DelayPolicy & { retries: number };
  log: Logger;
  bus?: Emitter<PipelineEvents>;
  /** Aborted on shutdown or when the uploader stops: the upload stops, the delivery goes back to pending. */
  signal: AbortSignal;
  /** The target's limits: uploads started per second, and bytes read for it per second. */
  limits?: TargetLimits;
  /**
   * When the remote path is owned by another file on this target (same name under the target's
   * comparison): `rename` (default) stores this one under `collisionName`, `fail` fails it.
   */
  onCollision?: 'rename' | 'fail';
  /** Aborted at the start of a shutdown: a wait between retries ends, the delivery goes back to pending. */
  waitSignal?: AbortSignal;
  /**
   * Called once the target holds the file and only the journal's record of it is left to make:
   * the upload no longer needs its slot (the uploader asks for its next delivery, whose lease
   * commits this completion with it).
   */
  onPutDone?: () => void;
}

export interface TargetLimits {
  requests?: TokenBucket;
  bytes?: TokenBucket;
}

/**
 * The target cannot work for now: its retries ran out, or it said the error is fatal (revoked
 * credentials, storage full). The delivery was put back to pending; the uploader crashes with
 * this error so that the supervisor restarts or parks the target.
 */
export class TargetTroubleError extends StagecoachError {
  constructor(
    readonly target: string,
    readonly kind: 'retry' | 'fatal',
    reason: string,
    readonly retryAfterMs: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(kind === 'fatal' ? 'target.fatal' : 'target.unavailable', `[stagecoach] [${target}] ${reason}`, options);
    this.name = 'TargetTroubleError';
  }
}

/**
 * How a delivery's remote path is claimed on `target` (see Store.claimRemotePath): the target's
 * name comparison, and with `onCollision: rename` (the default) `collisionName` for a taken one.
 */
export function leaseClaims(target: Pick<Target, 'nameKey'>, onCollision: 'rename' | 'fail' | undefined): LeaseClaims {
  return {
    keyOf: (p) => target.nameKey?.(p) ?? p.normalize('NFC'),
    ...(onCollision === 'fail' ? {} : { alternative: (wanted: string, owner: string, attempt: number) => collisionName(wanted, owner, attempt) }),
  };
}

export type DeliverOutcome = 'done' | 'failed' | 'skipped' | 'released';

/**
 * A delivery whose root folder is missing keeps its slot until the folder is back, then is
 * delivered from the start; a shutdown meanwhile puts it back to pending.
 */
async function waitForRootThenDeliver(d: Delivery, ctx: DeliverContext): Promise<DeliverOutcome> {
  ctx.log.debug({ deliveryId: d.id, relPath: d.relPath, root: d.rootPath }, 'the watched folder is missing: the delivery waits for it');
  try {
    await waitForRoot(d.rootPath, ctx.signal);
  } catch {
    await journal('put a delivery back to pending', () => ctx.store.release(d.id, waitingReason(d.rootPath)));
    return 'released';
  }
  return deliver(d, ctx);
}

/**
 * The source's path, as bytes: a name that is not valid UTF-8 is opened by its bytes (relPath
 * holds its escaped form); `under` replaces the root (its real path, for comparisons).
 */
function sourcePath(d: Delivery, under = d.rootPath): Buffer {
  return d.rawRelPath ? rawJoin(under, d.rawRelPath) : Buffer.from(path.join(under, ...d.relPath.split('/')), 'utf8');
}

/** The folder part of a path in bytes (up to its last `/`). */
function parentOf(p: Buffer): Buffer {
  return p.subarray(0, p.lastIndexOf(0x2f));
}

const CHUNK = 1 << 20;
const MIN_CHUNK = 4 * 1024;

/**
 * Delivers one leased delivery to its target and records the outcome in the store. The source
 * is opened once, by descriptor, from inside its root (see openSource): vanished, a symlink, or
 * a folder on its path swapped for a link → skipped with the reason; another inode, size or
 * mtime than journaled → failed with a reason (the watcher journals the new version once it is
 * stable). Then `put` under the retry policy, every attempt reading through that descriptor
 * after checking it again, so the hash checked with the provider is that of the bytes read there.
 * Per-item errors fail the delivery with the target's reason; a shutdown puts it back to pending;
 * a target-level problem puts it back to pending and throws TargetTroubleError. Only the provider
 * call is classified by the target: a journal call that fails (recording the outcome, saving a
 * resume handle, claiming the remote name) throws its JournalError (`state.*`), whatever the
 * upload did.
 */
export async function deliver(d: Delivery, ctx: DeliverContext): Promise<DeliverOutcome> {
  const { target, store, log } = ctx;
  // `routine`: nothing is lost (a file that changed again is archived once it is stable): info, not warn.
  const end = async (status: 'failed' | 'skipped', reason: string, routine = false): Promise<DeliverOutcome> => {
    if (status === 'failed') await journal('record a failed delivery', () => store.fail(d.id, d.generation, reason));
    else await journal('record a skipped delivery', () => store.skip(d.id, d.generation, reason));
    log[routine ? 'info' : 'warn']({ deliveryId: d.id, relPath: d.relPath, reason }, status === 'failed' ? 'delivery failed' : 'delivery skipped');
    ctx.bus?.emit('upload.exception', { target: target.id, deliveryId: d.id, remotePath: d.remotePath, status, reason });
    return status;
  };

  const opened = await openSource(d, d.size <= SMALL_SOURCE && (await syncCallsSafe(d.rootPath)) ? syncFs : asyncFs);
  if ('rootGone' in opened) return waitForRootThenDeliver(d, ctx);
  if ('skip' in opened) return end('skipped', opened.skip);
  if ('fail' in opened) return end('failed', opened.fail, opened.routine);
  const { fh, source, stat: checked } = opened;
  try {
    // No two files on one remote name: the journal says which file owns each name on this target.
    const owner = `${d.root}/${d.relPath}`;
    // Made with the lease when the store could (Store.lease with leaseClaims); else here.
    const claim = d.claim ?? (await journal('claim a remote name', () => store.claimRemotePath(leaseClaim(d, leaseClaims(target, ctx.onCollision)))));
    if (claim.takenBy !== null) {
      if (ctx.onCollision === 'fail') {
        return await end('failed', `remote name ${d.remotePath} is already ${claim.takenBy}'s on ${target.id} (onCollision: fail): ${owner} and ${claim.takenBy} map to one name there`);
      }
      log.warn({ deliveryId: d.id, relPath: d.relPath, wanted: d.remotePath, remotePath: claim.remotePath, takenBy: claim.takenBy }, 'remote name taken by another file; stored under another name');
    }
    return await send({ ...d, remotePath: claim.remotePath }, ctx, fh, source, checked, end, d);
  } finally {
    await fh.close().catch((e: unknown) => log.warn({ err: e, deliveryId: d.id }, 'source descriptor not closed'));
  }
}

/** Why the descriptor no longer shows the journaled version, or null when it does. */
function mismatch(d: Delivery, s: Stats): string | null {
  if (!s.isFile()) return 'source is no longer a regular file';
  const st = fileStatOf(s);
  if (st.ino !== d.ino || (d.dev !== null && st.dev !== d.dev)) {
    return 'source was replaced by another file since it was queued; the new one is archived once it is stable';
  }
  if (st.size !== d.size || st.mtimeMs !== d.mtimeMs) {
    return `source changed since it was queued (size ${d.size} → ${st.size}); it is archived again once it is stable`;
  }
  return null;
}

/**
 * A stream of `fh` from byte `start`, by positional reads. Not fh.createReadStream: destroying
 * that stream closes the handle, and a target may drop one attempt's stream and open another.
 * Destroying this one leaves the handle open; once the handle is closed, reads fail (EBADF).
 */
function readFrom(fh: SourceFd, start: number, chunk: number): Readable {
  let pos = start;
  return new Readable({
    highWaterMark: chunk,
    read() {
      // A read buffer of its own for each chunk: the one pushed is kept by the reader.
      const buf = Buffer.allocUnsafe(chunk);
      fh.read(buf, 0, chunk, pos).then(
        ({ bytesRead }) => {
          if (bytesRead === 0) {
            this.push(null);
            return;
          }
          pos += bytesRead;
          this.push(bytesRead === chunk ? buf : buf.subarray(0, bytesRead));
        },
        (e: unknown) => this.destroy(e as Error),
      );
    },
  });
}

class SourceChangedError extends StagecoachError {
  constructor(
    reason: string,
    readonly status: 'failed' | 'skipped' = 'failed',
  ) {
    super('source.changed', reason);
    this.name = 'SourceChangedError';
  }
}

/** The source's name no longer leads to the opened file: why, from what is there now. */
async function goneError(d: Delivery): Promise<SourceChangedError> {
  try {
    const s = await lstat(sourcePath(d));
    if (!s.isFile()) return new SourceChangedError('source is no longer a regular file', 'skipped');
    return new SourceChangedError('source was replaced by another file since it was queued; the new one is archived once it is stable');
  } catch {
    return new SourceChangedError('source vanished before upload', 'skipped');
  }
}

/**
 * Sources up to this size are opened, checked and read with synchronous calls (`syncFs`): a few
 * µs each for a small file on a local disk, against a thread-pool round trip and its wake-ups for
 * each promise-based call (ten per delivery: realpaths, open, readlink, stats, reads, close). The
 * checks are the same calls in the same order. The local target's small-file path matches. Not
 * on a network or FUSE file system (`syncCallsSafe`), where one call can block for minutes.
 */
const SMALL_SOURCE = 64 * 1024;

/** The source's descriptor as a delivery uses it: a FileHandle, or a plain descriptor (`SyncFd`). */
interface SourceFd {
  readonly fd: number;
  stat(): Promise<Stats>;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/** A descriptor used with synchronous calls, each result given as a settled promise. */
class SyncFd implements SourceFd {
  #closed = false;
  constructor(readonly fd: number) {}
  async stat(): Promise<Stats> {
    this.#check();
    return fstatSync(this.fd);
  }
  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return { bytesRead: this.readSync(buffer, offset, length, position) };
  }
  readSync(buffer: Buffer, offset: number, length: number, position: number): number {
    this.#check();
    return readSync(this.fd, buffer, offset, length, position);
  }
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.fd);
  }
  /** Closed: EBADF, as a FileHandle's calls fail, never another file that took the number since. */
  #check(): void {
    if (this.#closed) throw Object.assign(new Error('EBADF: file descriptor closed'), { code: 'EBADF' });
  }
}

/** The calls openSource makes, promise-based or synchronous. */
interface SourceFs {
  realpath(p: string): Promise<string>;
  realpathBuffer(p: Buffer): Promise<Buffer>;
  open(p: Buffer, flags: number): Promise<SourceFd>;
  readlink(p: string): Promise<Buffer>;
  stat(p: Buffer): Promise<Stats>;
}

const asyncFs: SourceFs = {
  realpath: (p) => realpath(p),
  realpathBuffer: (p) => realpath(p, { encoding: 'buffer' }),
  open: (p, flags) => openFile(p, flags),
  readlink: (p) => readlink(p, { encoding: 'buffer' }),
  stat: (p) => stat(p),
};

// realpathSync.native: realpath(3), as the promise-based realpath (not the JS walk of realpathSync).
const syncFs: SourceFs = {
  realpath: async (p) => realpathSync.native(p),
  realpathBuffer: async (p) => realpathSync.native(p, { encoding: 'buffer' }),
  open: async (p, flags) => new SyncFd(openSync(p, flags)),
  readlink: async (p) => readlinkSync(p, { encoding: 'buffer' }),
  stat: async (p) => statSync(p),
};

// O_NONBLOCK: a FIFO put in the file's place must not hang the open; no effect on a file.
const SOURCE_FLAGS = fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK;

/** An opened source comes with the descriptor's stat that passed the checks (`stat`). */
type Opened = { fh: SourceFd; stat: Stats; source: SourceInfo } | { skip: string } | { fail: string; routine?: boolean } | { rootGone: true };

/**
 * Opens the journaled source for reading, from inside its root only: the last component is
 * opened with O_NOFOLLOW (a symlink there is refused by the kernel), the folder holding it must
 * resolve (realpath) to the same place under the root's real path — no symlinked folder between
 * — and, where /proc tells, the descriptor's own path must be that place too (no swap between
 * the check and the open). Then the descriptor's device, inode, size and mtime must be those
 * journaled. Everything sent is read through this descriptor. A root whose real path is known
 * takes the fast path first (openKnown): the same guarantee from /proc alone, or this full check.
 */
async function openSource(d: Delivery, fs: SourceFs): Promise<Opened> {
  const abs = sourcePath(d);
  const known = realRoots.get(d.rootPath);
  if (known !== undefined && procFds) {
    const fast = await openKnown(d, fs, abs, known);
    if (fast !== null) return fast;
  }
  // Its whole root is gone (unmounted): the file is not, it waits for the root's return.
  const vanished = async (): Promise<Opened> =>
    (await rootIdentity(d.rootPath)) === null ? { rootGone: true } : { skip: 'source vanished before upload' };
  let expected: Buffer;
  let realRoot: string;
  try {
    realRoot = await fs.realpath(d.rootPath);
    rememberRealRoot(d.rootPath, realRoot);
    expected = sourcePath(d, realRoot);
    const parent = await fs.realpathBuffer(parentOf(abs));
    if (!parent.equals(parentOf(expected))) {
      return { skip: 'a folder on the source path is now a symbolic link out of its place; not followed' };
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return vanished();
    return { fail: `cannot read source: ${code ?? (e as Error).message}` };
  }
  let fh: SourceFd;
  const flags = SOURCE_FLAGS;
  try {
    fh = await fs.open(abs, flags);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return vanished();
    if (code !== 'ELOOP') return { fail: `cannot read source: ${code ?? (e as Error).message}` };
    // A link is followed only to a file inside the root (a root with followSymlinks journals
    // such links); the device and inode check below tells whether it is the journaled file.
    const inside = await linkInside(abs, realRoot);
    if (inside === null) return { skip: 'source is now a symbolic link; not followed' };
    try {
      fh = await fs.open(inside, flags);
      expected = inside;
    } catch (e2) {
      const code2 = (e2 as NodeJS.ErrnoException).code;
      if (code2 === 'ENOENT' || code2 === 'ENOTDIR' || code2 === 'ELOOP') return { skip: 'source is now a symbolic link; not followed' };
      return { fail: `cannot read source: ${code2 ?? (e2 as Error).message}` };
    }
  }
  try {
    const at = await fs.readlink(`/proc/self/fd/${fh.fd}`).catch(() => null);
    if (at !== null && !at.equals(expected)) {
      await fh.close();
      if (at.equals(Buffer.concat([expected, Buffer.from(' (deleted)')]))) return { skip: 'source vanished before upload' };
      return { skip: 'a folder on the source path was swapped for a symbolic link; not followed' };
    }
  } catch (e) {
    await fh.close().catch(() => undefined);
    return { fail: `cannot read source: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  return checkOpened(d, fs, fh, expected);
}

/**
 * Each root's real path as last resolved (openSource's full check). A root is resolved again
 * whenever the fast path's check fails (a root re-pointed, a folder swapped), and at most
 * MAX_REAL_ROOTS are kept.
 */
const realRoots = new Map<string, string>();
const MAX_REAL_ROOTS = 1000;
/** False once /proc/self/fd was found missing (not Linux, no /proc mounted): no fast path then. */
let procFds = true;

function rememberRealRoot(root: string, real: string): void {
  if (!realRoots.has(root) && realRoots.size >= MAX_REAL_ROOTS) realRoots.clear();
  realRoots.set(root, real);
}

/**
 * openSource's fast path, for a root whose real path is known: the file is opened (O_NOFOLLOW)
 * without resolving the root and the folder first, and kept only when /proc says the
 * descriptor's own path is exactly the file's place under the root's real path: the kernel's
 * path of the open file proves that no link on the way led elsewhere, which is what the two
 * realpath(3) calls of the full check (about ten system calls) establish. Anything else — no
 * /proc, another path (a folder swapped for a link, the root re-pointed, the file deleted), an
 * open that fails — closes what was opened and returns null: the full check then decides, as
 * it would have without this path.
 */
async function openKnown(d: Delivery, fs: SourceFs, abs: Buffer, realRoot: string): Promise<Opened | null> {
  let fh: SourceFd;
  try {
    fh = await fs.open(abs, SOURCE_FLAGS);
  } catch {
    return null;
  }
  const expected = sourcePath(d, realRoot);
  const at = await fs.readlink(`/proc/self/fd/${fh.fd}`).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') procFds = false;
    return null;
  });
  if (at === null || !at.equals(expected)) {
    await fh.close().catch(() => undefined);
    return null;
  }
  return checkOpened(d, fs, fh, expected);
}

/**
 * The checks of a source opened at its place (`expected`, under the root's real path): the
 * descriptor's device, inode, size and mtime must be those journaled; then what the target is
 * told of it (mode, owner, its folder's mode).
 */
async function checkOpened(d: Delivery, fs: SourceFs, fh: SourceFd, expected: Buffer): Promise<Opened> {
  try {
    const s = await fh.stat();
    const why = mismatch(d, s);
    if (why !== null) {
      await fh.close();
      // A file that changed again is archived once it is stable: nothing lost, routine.
      return s.isFile() ? { fail: why, routine: true } : { skip: why };
    }
    const dirMode = await folderMode(fs, parentOf(expected));
    return { fh, stat: s, source: { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, dirMode } };
  } catch (e) {
    await fh.close().catch(() => undefined);
    return { fail: `cannot read source: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
}

/**
 * The permission bits of a source folder, stat'ed once per folder per event-loop turn: the
 * deliveries of one lease start in one turn and mostly share their folders. Only the mode of
 * the archive's new folders depends on it (SourceInfo.dirMode), never what is read.
 */
const folderModes = new Map<string, Promise<number>>();

function folderMode(fs: SourceFs, dir: Buffer): Promise<number> {
  const key = dir.toString('latin1');
  let mode = folderModes.get(key);
  if (mode === undefined) {
    // The promise is kept, so deliveries that ask while the stat runs share it; a failure is not.
    mode = fs.stat(dir).then((s) => s.mode & 0o7777);
    mode.catch(() => folderModes.delete(key));
    if (folderModes.size === 0) setImmediate(() => folderModes.clear());
    folderModes.set(key, mode);
  }
  return mode;
}

/** The real path of the link `abs` when it leads to a place under `realRoot`, else null. */
async function linkInside(abs: Buffer, realRoot: string): Promise<Buffer | null> {
  try {
    const to = await realpath(abs, { encoding: 'buffer' });
    const prefix = Buffer.from(realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep, 'utf8');
    return to.length > prefix.length && to.subarray(0, prefix.length).equals(prefix) ? to : null;
  } catch {
    return null;
  }
}

async function send(
  d: Delivery,
  ctx: DeliverContext,
  fh: SourceFd,
  source: SourceInfo,
  /** The descriptor's stat as openSource checked it: the first attempt's, made just before. */
  opened: Stats,
  end: (status: 'failed' | 'skipped', reason: string, routine?: boolean) => Promise<DeliverOutcome>,
  /** The delivery as leased (its remote path before the claim): what a new start delivers. */
  leased: Delivery,
): Promise<DeliverOutcome> {
  const { target, store, log } = ctx;
  const started = Date.now();
  ctx.bus?.emit('upload.start', { target: target.id, deliveryId: d.id, remotePath: d.remotePath, size: d.size });
  let resume = d.resumeHandle;
  const release = (reason: string | null) => journal('put a delivery back to pending', () => store.release(d.id, reason));
  let result: PutResult;
  let first: Stats | null = opened;
  // See PutRequest.firstPut: the journal knows of no earlier attempt of this file on this target.
  let firstPut = d.generation === 1 && d.attempts === 0 && d.lastError === null && d.resumeHandle === null;
  // Only the provider call is classified by the provider: a journal error is the journal's.
  try {
    const { requests, bytes } = ctx.limits ?? {};
    const open = (start = 0) => {
      // A read buffer the size of the file (up to 1 MiB, at least 4 KiB): each read allocates
      // one, and 1 MiB (later 64 KiB) for every 4 KiB file made garbage collection the cost of
      // small files. Through the descriptor checked above, never the path: a link or a swapped
      // folder put there since cannot change what is read.
      const file = readFrom(fh, start, Math.min(CHUNK, Math.max(MIN_CHUNK, d.size - start + 1)));
      if (!bytes) return file;
      // Errors of the file must reach the reader of the throttled stream.
      const paced = throttleStream(bytes, ctx.signal);
      file.once('error', (e) => paced.destroy(e));
      return file.pipe(paced);
    };
    result = await withRetry(
      async () => {
        await requests?.take(1, ctx.signal);
        // Before every attempt, a retry and a resume as much as the first: the bytes still
        // those journaled (same inode, size and mtime), or nothing is sent. The first attempt
        // takes the stat openSource checked just before (the claim in between touches no file),
        // unless it waited for the target's request limit: then time passed, and it stats again.
        const now = first !== null && !requests ? first : await fh.stat();
        first = null;
        // Unlinked since it was opened (nlink 0): what is at the path now decides, as for a
        // delivery that had not opened it yet.
        if (now.nlink === 0) throw await goneError(d);
        const why = mismatch(d, now);
        if (why !== null) throw new SourceChangedError(why);
        const isFirst = firstPut;
        firstPut = false;
        return target.put({
          remotePath: d.remotePath,
          size: d.size,
          mtimeMs: d.mtimeMs,
          // The creation time where the platform gives one: Linux without statx btime reports 0.
          ...(now.birthtimeMs > 0 ? { birthtimeMs: now.birthtimeMs } : {}),
          open,
          ...(fh instanceof SyncFd && !bytes ? { readSync: (b: Buffer, o: number, l: number, p: number) => fh.readSync(b, o, l, p), sourceFd: fh.fd } : {}),
          ...(bytes ? {} : { read: async (b: Buffer, o: number, l: number, p: number) => (await fh.read(b, o, l, p)).bytesRead, sourceFd: fh.fd }),
          resume,
          saveResume: async (h) => {
            resume = h;
            await journal('save a resume handle', () => store.saveResume(d.id, h));
          },
          signal: ctx.signal,
          ...(isFirst ? { firstPut: true } : {}),
          source,
        });
      },
      {
        ...ctx.retry,
        classify: (e) =>
          journalErrorIn(e)
            ? { kind: 'fatal', reason: 'the journal failed' }
            : e instanceof SourceChangedError
              ? { kind: 'fail-item', reason: e.message }
              : target.classify(e),
        signal: ctx.signal,
        waitSignal: ctx.waitSignal,
        onRetry: async ({ attempt, classified, delayMs }) => {
          await journal('note a failed attempt', () => store.noteAttempt(d.id, classified.reason));
          // At debug: one warn when the target starts failing, one info when it recovers (target-report.ts).
          log.debug({ deliveryId: d.id, attempt, delayMs, reason: classified.reason }, 'upload attempt failed; retrying');
          ctx.bus?.emit('upload.retry', { target: target.id, deliveryId: d.id, attempt, reason: classified.reason, delayMs });
        },
      },
    );
  } catch (error) {
    const journalError = journalErrorIn(error);
    if (journalError) throw journalError;
    if (error instanceof SourceChangedError) return end(error.status, error.message, error.status === 'failed');
    if (ctx.signal.aborted) {
      await release('interrupted: the uploader stopped before the upload finished');
      return 'released';
    }
    if (ctx.waitSignal?.aborted && error === ctx.waitSignal.reason) {
      await release('interrupted: stopped while waiting to retry');
      return 'released';
    }
    if (error instanceof RetriesExhaustedError) {
      await release(error.message);
      throw new TargetTroubleError(target.id, 'retry', error.message, error.classified.retryAfterMs, { cause: error });
    }
    const c = target.classify(error);
    if (c.kind === 'fatal') {
      await release(c.reason);
      throw new TargetTroubleError(target.id, 'fatal', c.reason, c.retryAfterMs, { cause: error });
    }
    // Moved or deleted while it uploaded: not a failure. The watcher pairs a move with the new
    // path, which is journaled and archived on its own.
    if (await gone(sourcePath(d))) {
      if ((await rootIdentity(d.rootPath)) === null) return waitForRootThenDeliver(leased, ctx);
      return end('skipped', 'source vanished during its upload: moved or deleted (a moved file is archived at its new path)');
    }
    return end('failed', c.reason);
  }
  if (result.size !== d.size) return end('failed', `remote copy holds ${result.size} bytes, expected ${d.size}`);
  ctx.onPutDone?.();
  await journal('record a delivery done', () => store.complete(d.id, d.generation, { remoteId: result.remoteId, remoteHash: result.hash, bytesSent: result.bytesSent }));
  const durationMs = Date.now() - started;
  log.debug({ deliveryId: d.id, remotePath: d.remotePath, bytesSent: result.bytesSent, durationMs, unchanged: result.unchanged }, 'archived');
  ctx.bus?.emit('upload.stop', {
    target: target.id,
    deliveryId: d.id,
    remotePath: d.remotePath,
    bytes: d.size,
    bytesSent: result.bytesSent,
    durationMs,
    unchanged: result.unchanged,
  });
  return 'done';
}

/** Whether nothing is at the source path any more (a stat that fails with ENOENT or ENOTDIR). */
async function gone(abs: string | Buffer): Promise<boolean> {
  try {
    await stat(abs);
    return false;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR';
  }
}
