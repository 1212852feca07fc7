/**
 * The local target: archives into a folder on a local or mounted disk. The embedded default,
 * and the reference the cloud targets are measured against by the conformance suite.
 *
 * A put is atomic and durable: the bytes go to a temp file beside the final name, which is
 * fsynced, checked, and renamed over the final name; the folder is then fsynced. A crash or a
 * failure at any point leaves the previous copy (or nothing) at the final name, never a part.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, lstatSync, type Stats } from 'node:fs';
import {
  copyFile,
  link,
  chmod,
  lstat,
  mkdir,
  open,
  readFile,
  readdir,
  readlink,
  realpath,
  rename,
  rm,
  stat as fsStat,
  statfs,
  unlink,
  utimes,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { addAbortSignal } from 'node:stream';
import { ConfigError, ShortReadError, TargetError, type ErrorKind } from '../../errors.js';
import { CountingHashStream, hashFile, verifySize } from '../../archive/hash.js';
import type {
  Features,
  PutRequest,
  PutResult,
  RemoteStat,
  Target,
  TargetContext,
  TargetFactory,
} from '../target.js';
import type { LocalOptions } from './api-types.js';
import { SourceError, classify, classifyRule } from './classify.js';
import { isTempName, localPathKey, mapLocalPath, tempName, versionName } from './names.js';

export type { LocalOptions } from './api-types.js';

/** What the local target declares: sha256, case-sensitive names, no chunking, no resume. */
export const LOCAL_FEATURES: Features = Object.freeze({
  hashKind: 'sha256',
  caseInsensitive: false,
  simpleUploadMax: Number.POSITIVE_INFINITY,
  chunkSize: 1024 * 1024,
  resumable: false,
});

// Errors of link(2) that mean "this filesystem has no hard links" (vfat, exfat, some SMB mounts).
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EMLINK', 'ENOSYS']);
// A kept version is named after the old copy's mtime; past this many same-second copies give up.
const MAX_VERSION_ATTEMPTS = 1000;
/** Folders remembered as existing (see ensureDir); past this many the memory starts afresh. */
const MAX_KNOWN_DIRS = 10_000;
/** Buffer of the read-back check. */
const READ_BACK_CHUNK = 1024 * 1024;
/** Mode of folders the target makes when the source's folder is not wider. */
const DIR_MODE = 0o700;
/** Mode of a copy whose source mode is unknown (a put without `source`). */
const FILE_MODE = 0o600;
/** Temp names start with this process's pid (hex), so leftovers of another process are known. */
const TEMP_OWNER = process.pid.toString(16).padStart(8, '0');

function errno(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function validate(options: LocalOptions): void {
  const o = options as unknown as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null) throw new ConfigError('', `Expected local target options to be an object, got ${String(o)}`);
  if (typeof o.id !== 'string' || o.id.length === 0) {
    throw new ConfigError('id', `Expected \`id\` to be a non-empty string, got ${JSON.stringify(o.id)}`);
  }
  if (typeof o.path !== 'string' || o.path.length === 0) {
    throw new ConfigError('path', `Expected \`path\` to be a non-empty string, got ${JSON.stringify(o.path)}`);
  }
  if (o.keepVersions !== undefined && typeof o.keepVersions !== 'boolean') {
    throw new ConfigError('keepVersions', `Expected \`keepVersions\` to be a boolean, got ${JSON.stringify(o.keepVersions)}`);
  }
  if (o.preserveOwner !== undefined && typeof o.preserveOwner !== 'boolean') {
    throw new ConfigError('preserveOwner', `Expected \`preserveOwner\` to be a boolean, got ${JSON.stringify(o.preserveOwner)}`);
  }
}

/** The pid part (8 hex) of a temp name this target made, or null for another shape. */
function tempOwner(name: string): string | null {
  return /\.stagecoach-([0-9a-f]{8})[0-9a-f]{12}\.tmp$/su.exec(name)?.[1] ?? null;
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return Buffer.from(String(chunk));
}

async function writeAll(fh: FileHandle, chunk: Buffer): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
    off += bytesWritten;
  }
}

/** fsync a folder so a rename or a new entry in it survives a power cut. */
async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    // Some filesystems (certain FUSE and network mounts) cannot fsync a folder: not an error.
    if (errno(err) !== 'EINVAL' && errno(err) !== 'ENOTSUP' && errno(err) !== 'EISDIR') throw err;
  } finally {
    await fh?.close();
  }
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** sha256 of the first `size` bytes of an open file, read back through its handle. */
async function hashHandle(fh: FileHandle, size: number, signal: AbortSignal | undefined): Promise<string> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.max(1, Math.min(size, READ_BACK_CHUNK)));
  for (let pos = 0; pos < size; ) {
    signal?.throwIfAborted();
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
    if (bytesRead === 0) break;
    h.update(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return h.digest('hex');
}

async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path);
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return null;
    throw err;
  }
}

/**
 * Makes a local target archiving under `options.path`.
 *
 * - `put` maps `remotePath` with `mapLocalPath` (NFC; refuses `..`, absolute, NUL, empty
 *   segments, names over 255 bytes), creates the parent folders, and writes atomically (see
 *   the module comment). When a regular file of the same size is already there, the source is
 *   hashed first and compared with it: same sha256 → `unchanged`, nothing written, the source
 *   read once; different → the source is opened a second time to write it.
 * - Before the rename, the temp file is read back and its sha256 compared with the hash of the
 *   bytes read from the source. This costs one more read of every file written, usually served
 *   from the page cache: it proves the write path (short or lost writes, a file altered under
 *   us), not the platters.
 * - `keepVersions`: a replaced copy is kept beside as `<stem>.<yyyymmdd-hhmmss>.<ext>` (its own
 *   mtime, UTC), by a hard link made before the rename, so the final name never goes missing;
 *   on filesystems without hard links, by an exclusive copy. Never overwrites a kept version.
 * - The mtime of the stored file is `req.mtimeMs`, set before the rename; its permission bits
 *   are the source's (`req.source.mode & 0o777`; 0600 without `source`), and with
 *   `preserveOwner`, when running as root, its owner and group too. Folders the put makes get
 *   0700, or the source folder's bits when wider, set exactly whatever the umask.
 * - Nothing below the root is followed: a symbolic link on the way to the file or at its name
 *   fails the put (`archive-path-link`, fail-item); the temp file is opened O_EXCL under a name
 *   of its own per upload, and its descriptor's real path checked to be under the root.
 * - The archive root is created on first use. If it disappears later (an unmounted disk) puts
 *   fail `fatal` rather than writing into the empty mount point.
 * - `stat` hashes the whole file (sha256 is what the target verifies with): one read of it.
 * - `close` resolves once the puts in flight have settled; later puts fail `fatal` (`closed`).
 * - Errors are TargetErrors with code `local.<rule>` (see classify.ts), ShortReadError when the
 *   source's length differs from `size`, or an AbortError when `req.signal` fired; in every case
 *   the temp file is removed and the previous copy is untouched.
 */
export function createLocalTarget(options: LocalOptions, ctx: TargetContext): Target {
  validate(options);
  const id = options.id;
  const root = resolve(options.path);
  const keepVersions = options.keepVersions ?? false;
  const log = ctx.log;
  const inFlight = new Set<Promise<unknown>>();
  let rootReady: Promise<void> | null = null;
  /** The root with its links resolved: a descriptor's real path must start with it. */
  let realRoot = root;
  const preserveOwner = (options.preserveOwner ?? false) && process.getuid?.() === 0;
  const knownDirs = new Set<string>();
  const dirSyncs = new Map<string, { running: Promise<void> | null; next: Promise<void> | null }>();
  let closing: Promise<void> | null = null;

  function abortError(signal: AbortSignal): Error {
    const err = new Error(`[stagecoach] [${id}] aborted: the put was cancelled`, { cause: signal.reason });
    err.name = 'AbortError';
    return err;
  }

  function fail(rule: string, kind: ErrorKind, detail: string, cause?: unknown): TargetError {
    return new TargetError(id, kind, `${rule}: ${detail}`, { code: `local.${rule}`, cause });
  }

  /** Every error leaving the target goes through here, so `classify` sees only known shapes. */
  function wrap(err: unknown, signal?: AbortSignal): unknown {
    if (signal?.aborted) return err instanceof Error && err.name === 'AbortError' ? err : abortError(signal);
    if (err instanceof TargetError || err instanceof ShortReadError) return err;
    if (err instanceof Error && err.name === 'AbortError') return err;
    if (err instanceof SourceError && err.cause instanceof ShortReadError) return err.cause;
    const { kind, rule } = classifyRule(err);
    const detail = err instanceof SourceError ? `source: ${message(err.cause)}` : message(err);
    return fail(rule, kind, detail, err);
  }

  function ensureRoot(): Promise<void> {
    rootReady ??= (async () => {
      try {
        const made = await mkdir(root, { recursive: true, mode: DIR_MODE });
        if (made !== undefined) log.info({ root }, 'archive root created');
        // The root itself may be a link the user configured; nothing below it may be.
        realRoot = await realpath(root);
      } catch (err) {
        // No put can succeed without the root: that is the target's problem, not the item's.
        throw fail('archive-root-unusable', 'fatal', `the archive root ${root} cannot be created: ${message(err)}`, err);
      }
    })().catch((err: unknown) => {
      rootReady = null;
      throw err;
    });
    return rootReady;
  }

  function linkRefused(path: string): TargetError {
    return fail('archive-path-link', 'fail-item', `${path} is a symbolic link: the local target follows no link below its root`);
  }

  /**
   * mkdir -p `dir` under the root, never through a link: every folder between the root and `dir`
   * is lstat'ed on every put (a link planted there since fails the put with `archive-path-link`)
   * and the missing ones are made one by one with `dirMode`, set exactly (the umask neither widens
   * nor narrows it), fsyncing each parent that gained an entry. The root's own check is
   * remembered per folder; a put that then finds the folder gone (ENOENT) forgets every folder and
   * comes back here (see `openTemp`).
   */
  async function ensureDir(dir: string, dirMode = DIR_MODE): Promise<void> {
    await ensureRoot();
    if (!knownDirs.has(dir)) {
      try {
        const st = await fsStat(root);
        if (!st.isDirectory()) throw fail('archive-root-gone', 'fatal', `the archive root ${root} is not a folder`);
      } catch (err) {
        if (errno(err) === 'ENOENT') {
          throw fail('archive-root-gone', 'fatal', `the archive root ${root} has disappeared (an unmounted disk?)`, err);
        }
        throw err;
      }
    }
    if (dir !== root) {
      let d = root;
      for (const part of relative(root, dir).split(sep)) {
        d = join(d, part);
        let st: Stats | null = null;
        try {
          st = lstatSync(d);
        } catch (err) {
          if (errno(err) !== 'ENOENT') throw err;
        }
        if (st === null) {
          try {
            await mkdir(d, { mode: dirMode });
            await chmod(d, dirMode);
            // A new folder is an entry in its parent: fsync it, so the path to the file survives
            // a power cut as well as the file.
            await fsyncDir(dirname(d));
            continue;
          } catch (err) {
            if (errno(err) !== 'EEXIST') throw err;
            st = lstatSync(d);
          }
        }
        if (st.isSymbolicLink()) throw linkRefused(d);
        if (!st.isDirectory()) throw fail('archive-path-blocked', 'fail-item', `${d} is not a folder`);
      }
    }
    if (!knownDirs.has(dir)) await sweepLeftovers(dir);
    if (knownDirs.size >= MAX_KNOWN_DIRS) knownDirs.clear();
    knownDirs.add(dir);
  }

  /**
   * Removes the temp files another process left in `dir` (a put cut by SIGKILL): once per folder
   * per process, at its first put there. This process's own temps (its pid in the name) stay:
   * they belong to puts running now.
   */
  async function sweepLeftovers(dir: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      log.warn({ err, dir }, 'cannot list the folder for leftover temp files');
      return;
    }
    for (const n of names) {
      if (!isTempName(n) || tempOwner(n) === TEMP_OWNER) continue;
      await unlink(join(dir, n)).catch((e: unknown) => {
        if (errno(e) !== 'ENOENT') log.warn({ err: e, path: join(dir, n) }, 'leftover temp file not removed');
      });
    }
  }

  /**
   * fsyncs `dir` after a rename into it. Puts into one folder share the fsyncs: a caller joins
   * the next fsync that has not started yet (it starts after the caller's rename, so it covers
   * it), and at most one runs per folder at a time.
   */
  function syncDirAfterRename(dir: string): Promise<void> {
    let s = dirSyncs.get(dir);
    if (!s) {
      s = { running: null, next: null };
      dirSyncs.set(dir, s);
    }
    if (s.next) return s.next;
    const state = s;
    const before = state.running ?? Promise.resolve();
    const p: Promise<void> = before
      .catch(() => undefined)
      .then(() => {
        state.running = p;
        state.next = null;
        return fsyncDir(dir);
      })
      .finally(() => {
        if (state.running !== p) return;
        state.running = null;
        if (!state.next) dirSyncs.delete(dir);
      });
    state.next = p;
    return p;
  }

  /** Streams the source through a counter, handing each chunk to `onChunk`; checks the size. */
  async function readSource(
    req: PutRequest,
    onChunk: ((chunk: Buffer) => Promise<void>) | null,
  ): Promise<CountingHashStream> {
    const signal = req.signal;
    let src: Readable;
    try {
      src = req.open();
    } catch (err) {
      throw new SourceError(err);
    }
    if (signal) addAbortSignal(signal, src);
    const counter = new CountingHashStream(['sha256'], { maxBytes: req.size });
    const it = src[Symbol.asyncIterator]() as AsyncIterator<unknown>;
    try {
      for (;;) {
        let next: IteratorResult<unknown>;
        try {
          next = await it.next();
        } catch (err) {
          if (signal?.aborted) throw abortError(signal);
          throw new SourceError(err);
        }
        if (next.done) break;
        const chunk = toBuffer(next.value);
        counter.feed(chunk);
        if (onChunk) await onChunk(chunk);
      }
    } finally {
      src.destroy();
    }
    verifySize(req.size, counter.bytes);
    return counter;
  }

  /** Keeps the copy at `final` as a version beside it; returns the version's path. */
  async function keepPrevious(final: string, dir: string, name: string, old: Stats): Promise<string | null> {
    for (let attempt = 0; attempt < MAX_VERSION_ATTEMPTS; attempt++) {
      const candidate = join(dir, versionName(name, old.mtime, attempt));
      try {
        await link(final, candidate);
        return candidate;
      } catch (err) {
        const code = errno(err);
        if (code === 'EEXIST') continue;
        if (code === 'ENOENT') return null;
        if (!code || !NO_HARD_LINKS.has(code)) throw err;
      }
      try {
        await copyFile(final, candidate, fsConstants.COPYFILE_EXCL);
      } catch (err) {
        if (errno(err) === 'EEXIST') continue;
        if (errno(err) === 'ENOENT') return null;
        throw err;
      }
      await utimes(candidate, old.atime, old.mtime);
      await fsyncFile(candidate);
      return candidate;
    }
    throw fail('version-names-exhausted', 'retry', `${MAX_VERSION_ATTEMPTS} kept versions of ${final} share one timestamp`);
  }

  /**
   * Opens the temp file, new (O_EXCL: never through a link), mode 0600 until the copy is
   * complete. A folder that vanished since it was checked (ENOENT) is made again, once. Where
   * /proc tells, the descriptor's real path must be the temp's place under the real root: a
   * folder swapped for a link between the check and the open leaves nothing written there.
   */
  async function openTemp(tmp: string, dir: string, dirMode: number): Promise<FileHandle> {
    let fh: FileHandle;
    for (let attempt = 0; ; attempt++) {
      try {
        fh = await open(tmp, 'wx+', FILE_MODE);
        break;
      } catch (err) {
        if (attempt > 0 || errno(err) !== 'ENOENT') throw err;
        knownDirs.clear();
        await ensureDir(dir, dirMode);
      }
    }
    const at = await readlink(`/proc/self/fd/${fh.fd}`).catch(() => null);
    if (at !== null && at !== join(realRoot, relative(root, tmp))) {
      await fh.close().catch(() => undefined);
      await unlink(at).catch((e: unknown) => log.warn({ err: e, path: at }, 'temp file not removed'));
      throw linkRefused(dir);
    }
    return fh;
  }

  async function writeNew(req: PutRequest, final: string, previous: Stats | null, dirMode: number): Promise<PutResult> {
    const dir = dirname(final);
    const name = basename(final);
    // A temp name of its own per upload: two puts into one folder never share one.
    const tmp = join(dir, tempName(name, `${TEMP_OWNER}${randomBytes(6).toString('hex')}`));
    let tmpExists = false;
    try {
      const fh = await openTemp(tmp, dir, dirMode);
      tmpExists = true;
      let counter: CountingHashStream;
      let written: string;
      try {
        counter = await readSource(req, (chunk) => writeAll(fh, chunk));
        const mtime = new Date(req.mtimeMs);
        await fh.utimes(mtime, mtime);
        // The source's owner first (chown clears set-id bits), then its permission bits exactly.
        if (preserveOwner && req.source) await fh.chown(req.source.uid, req.source.gid);
        await fh.chmod(req.source ? req.source.mode & 0o777 : FILE_MODE);
        await fh.sync();
        written = await hashHandle(fh, counter.bytes, req.signal);
      } catch (err) {
        await fh.close().catch(() => undefined);
        throw err;
      }
      // close() can report a delayed write error (NFS): it must not be ignored here.
      await fh.close();
      const hash = counter.digest('sha256');
      if (written !== hash) {
        throw fail('write-mismatch', 'retry', `the file written at ${tmp} does not hash as the bytes read (${written} ≠ ${hash})`);
      }
      if (req.signal?.aborted) throw abortError(req.signal);
      const kept = keepVersions && previous?.isFile() ? await keepPrevious(final, dir, name, previous) : null;
      try {
        await rename(tmp, final);
      } catch (err) {
        if (kept) await unlink(kept).catch((e: unknown) => log.warn({ err: e, path: kept }, 'kept version not removed'));
        throw err;
      }
      tmpExists = false;
      await syncDirAfterRename(dir);
      if (kept) log.debug({ path: final, kept }, 'previous copy kept');
      return { remoteId: final, size: counter.bytes, hash, hashKind: 'sha256', unchanged: false, bytesSent: counter.bytes };
    } finally {
      if (tmpExists) {
        await rm(tmp, { force: true }).catch((e: unknown) => log.warn({ err: e, path: tmp }, 'temp file not removed'));
      }
    }
  }

  async function doPut(req: PutRequest): Promise<PutResult> {
    try {
      if (req.signal?.aborted) throw abortError(req.signal);
      const final = join(root, mapLocalPath(req.remotePath, id));
      // Folders 0700, or as wide as the source's own folder when that is wider.
      const dirMode = DIR_MODE | ((req.source?.dirMode ?? 0) & 0o777);
      await ensureDir(dirname(final), dirMode);
      const existing = await lstatOrNull(final);
      if (existing?.isSymbolicLink()) throw linkRefused(final);
      if (existing?.isDirectory()) throw fail('archive-path-blocked', 'fail-item', `a folder is at ${final}`);
      if (existing?.isFile() && existing.size === req.size) {
        const [source, stored] = await Promise.all([readSource(req, null), hashFile('sha256', final, req.signal)]);
        const hash = source.digest('sha256');
        if (hash === stored) {
          return { remoteId: final, size: req.size, hash, hashKind: 'sha256', unchanged: true, bytesSent: 0 };
        }
      }
      return await writeNew(req, final, existing, dirMode);
    } catch (err) {
      throw wrap(err, req.signal);
    }
  }

  const target: Target = {
    id,
    type: 'local',
    features: LOCAL_FEATURES,
    nameKey: localPathKey,

    put(req: PutRequest): Promise<PutResult> {
      if (closing) return Promise.reject(fail('closed', 'fatal', 'the target is closed'));
      const p = doPut(req);
      inFlight.add(p);
      const untrack = (): void => void inFlight.delete(p);
      p.then(untrack, untrack);
      return p;
    },

    async stat(remotePath: string): Promise<RemoteStat | null> {
      try {
        const path = join(root, mapLocalPath(remotePath, id));
        const st = await lstatOrNull(path);
        if (!st?.isFile()) return null;
        return { remoteId: path, size: st.size, hash: await hashFile('sha256', path) };
      } catch (err) {
        throw wrap(err);
      }
    },

    async ensureFolder(remotePath: string): Promise<string> {
      try {
        const path = remotePath === '' ? root : join(root, mapLocalPath(remotePath, id));
        await ensureDir(path);
        return path;
      } catch (err) {
        throw wrap(err);
      }
    },

    classify,

    async check(): Promise<string> {
      const probe = join(root, `.stagecoach-probe-${randomBytes(6).toString('hex')}`);
      try {
        await mkdir(root, { recursive: true });
        const st = await fsStat(root);
        if (!st.isDirectory()) throw Object.assign(new Error(`${root} is not a folder`), { code: 'ENOTDIR' });
        const body = `stagecoach probe ${probe}\n`;
        await writeFile(probe, body, { flag: 'wx' });
        await fsyncFile(probe);
        if ((await readFile(probe, 'utf8')) !== body) throw new Error(`the probe file ${probe} read back different`);
        await unlink(probe);
        const fs = await statfs(root);
        const free = fs.bavail * fs.bsize;
        return `local folder ${root} is writable, ${(free / 2 ** 30).toFixed(1)} GiB free`;
      } catch (err) {
        await rm(probe, { force: true }).catch(() => undefined);
        const { rule } = classifyRule(err);
        throw fail(rule === 'unknown' ? 'archive-unusable' : rule, 'fatal', `the archive root ${root} is not usable: ${message(err)}`, err);
      }
    },

    close(): Promise<void> {
      closing ??= Promise.allSettled([...inFlight]).then(() => undefined);
      return closing;
    },
  };
  return target;
}

/** The local target's factory, as the registry knows it. */
export const local = createLocalTarget satisfies TargetFactory<LocalOptions>;
