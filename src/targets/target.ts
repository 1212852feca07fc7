import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { ErrorKind } from '../errors.js';

/** The hash a provider reports for stored content, and that we compute while streaming. */
export type HashKind = 'sha256' | 'md5' | 'dropbox' | 'sha1' | 'quickxor';

/** What a target can do; optional abilities are declared here, never probed at run time. */
export interface Features {
  /** The hash this target verifies uploads with. */
  hashKind: HashKind;
  /** Two names differing only in case are the same file on this target. */
  caseInsensitive: boolean;
  /** Files above this size use the chunked / resumable protocol. */
  simpleUploadMax: number;
  /** Chunk size for chunked uploads (a multiple of the provider's rule). */
  chunkSize: number;
  /** A cut upload can resume from a saved handle. */
  resumable: boolean;
  /** `download` honours `start` by asking the provider for a byte range (a cut download resumes). */
  rangedDownload?: boolean;
}

/**
 * One upload. The target owns the bytes it reads: it MUST count them and fail with
 * ShortReadError when they differ from `size`, and MUST hash exactly the bytes it sent.
 */
export interface PutRequest {
  /** Remote path relative to the target's configured root, POSIX separators, NFC not yet applied. */
  remotePath: string;
  size: number;
  mtimeMs: number;
  /** The source's creation time where the platform gives one (st_birthtime), else absent. */
  birthtimeMs?: number;
  /** A fresh stream of the source from byte `start` (default 0); may be called once per attempt. */
  open(start?: number): Readable;
  /** The resume handle saved by an earlier, cut attempt, if any. */
  resume: string | null;
  /** Persist (or clear, with null) the resume handle of the upload under way. */
  saveResume(handle: string | null): Promise<void>;
  signal?: AbortSignal;
  /**
   * True when the journal knows of no earlier attempt to put this file to this target: its first
   * version (generation 1), never attempted, no error, no resume handle, and this is the
   * delivery's first attempt. Then no process can have put it there moments ago, and a target may
   * answer "what is already at the path" from a listing of the folder taken within the last
   * seconds (src/targets/kit/listings.ts). Otherwise (a changed file, a retry, a delivery another
   * daemon released) it asks the service by name.
   */
  firstPut?: boolean;
  /** What the source's descriptor showed: a target that keeps permissions (local) copies them. */
  source?: SourceInfo;
  /**
   * Present for a small source whose bytes are not paced (see SMALL_SOURCE in
   * src/pipeline/deliver.ts): reads up to `length` bytes at `position` synchronously, through the
   * same checked descriptor as `open`; returns the bytes read, 0 at the end. A target MAY read the
   * whole file with it instead of `open`; errors are the source's.
   */
  readSync?(buffer: Buffer, offset: number, length: number, position: number): number;
  /**
   * Present with `readSync` or `read`: the descriptor they read through, open until the put
   * settles. A target MAY read the source with pread(2) on it from another thread of this process
   * (the local target's worker, src/targets/local/upload.ts, `SmallPuts`) instead of calling
   * `readSync`, or copy from it in the kernel (the local target's large files, copy_file_range);
   * it MUST NOT close it, move its offset or read it after the put has settled.
   */
  sourceFd?: number;
  /**
   * Present when the source's bytes are not paced: reads up to `length` bytes at `position`
   * through the same checked descriptor as `open`, into the caller's buffer; resolves to the bytes
   * read, 0 at the end. A target MAY read the file with it instead of `open` (no stream, no buffer
   * allocated per chunk); errors are the source's.
   */
  read?(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
}

/** The source file's permission bits and owner, and its folder's permission bits. */
export interface SourceInfo {
  /** st_mode & 0o7777. */
  mode: number;
  uid: number;
  gid: number;
  /** Permission bits of the folder holding the source. */
  dirMode: number;
}

export interface PutResult {
  /** Provider id of the stored file (for local: its path). */
  remoteId: string;
  /** Bytes the remote copy holds. */
  size: number;
  /** The provider's hash of the stored copy, equal to the hash of the bytes sent. */
  hash: string;
  hashKind: HashKind;
  /** True when an identical copy was already there and nothing was sent. */
  unchanged: boolean;
  /** Bytes actually sent in this call (0 when unchanged; less than size when resumed). */
  bytesSent: number;
}

export interface RemoteStat {
  remoteId: string;
  size: number;
  hash: string | null;
}

/** One file of a target's listing (see `Target.list`). */
export interface RemoteEntry {
  /**
   * Its path relative to the target's root, POSIX separators, with the names as the provider
   * stores them (mapped: `nameKey` of it equals `nameKey` of the path it was put under).
   */
  path: string;
  /** Bytes; null when the listing does not tell (local: no stat per file). */
  size: number | null;
  /** The provider's hash (`features.hashKind`) when the listing gives it, else null. */
  hash: string | null;
}

/** One download (see `Target.download`). */
export interface DownloadRequest {
  /** Remote path relative to the target's root, as given to `put`. */
  remotePath: string;
  /** First byte wanted (default 0). */
  start?: number;
  signal?: AbortSignal;
}

/** A remote copy being read. */
export interface RemoteDownload {
  remoteId: string;
  /** The whole remote copy's size (not what is left after `start`). */
  size: number;
  /** The provider's hash of the copy when the lookup gave it, else null. */
  hash: string | null;
  /** The bytes from `start` to the end. The caller MUST consume or destroy it. */
  stream: Readable;
}

export interface Classified {
  kind: ErrorKind;
  retryAfterMs?: number;
  reason: string;
}

/**
 * A place to archive to. A target is a plain object made by a factory. Every method may be
 * called concurrently, up to the target's maxDemand puts at once. `put` MUST leave nothing
 * half-written at `remotePath`: a failed put leaves the previous copy (or nothing) in place.
 */
export interface Target {
  /** The instance name from the config (`targets[].id`). */
  readonly id: string;
  /** The provider: local, gdrive, dropbox, box, onedrive (or a test's own). */
  readonly type: string;
  readonly features: Features;
  put(req: PutRequest): Promise<PutResult>;
  /** The file at `remotePath`: its provider id, size and provider hash; null when none (or a folder). */
  stat(remotePath: string): Promise<RemoteStat | null>;
  /**
   * Reads the file at `remotePath` from byte `start`; null when there is none. Optional: a
   * target without it cannot be restored from. With `features.rangedDownload` only the range is
   * fetched; without, a `start` > 0 is honoured by skipping bytes. Errors as for `put`.
   */
  download?(req: DownloadRequest): Promise<RemoteDownload | null>;
  /**
   * Every file under the target's root (recursive, read page by page), leaving out the target's
   * own bookkeeping (temp files, kept versions, probes). Optional: `verify` counts remote files the
   * journal does not know (`extra`) only on a target with it. Errors as for `stat`.
   */
  list?(): AsyncIterable<RemoteEntry>;
  ensureFolder(remotePath: string): Promise<string>;
  /**
   * A hint: files at these remote paths are about to be put (leased ahead of the uploads). A
   * target that must find or make a file's folder before its put may begin that now, so that
   * the puts of a run of files moving into a new folder do not all wait for it. Never throws;
   * what fails here is the put's to meet. Optional.
   */
  prepare?(remotePaths: readonly string[]): void;
  /**
   * The key two remote paths share when this target would store them as one file (its case
   * folding, Unicode normalisation, character mapping). Pure, never throws. Absent: the NFC form.
   * The uploader keeps, per target, which source owns each key (no two files on one name).
   */
  nameKey?(remotePath: string): string;
  /** Tells what an error thrown by this target means. Pure. */
  classify(error: unknown): Classified;
  /** Check that the target is reachable and usable (for `stagecoach check`). */
  check(): Promise<string>;
  /** Idempotent. */
  close(): Promise<void>;
}

export interface TargetContext {
  /** Already a child logger bound to this target (`{ target: id }`). */
  log: Logger;
  /** Folder for this target's own state (tokens), mode 0700. */
  stateDir: string;
  /** Present when several daemons share one journal: secrets they must share (Box's rotating tokens). */
  shared?: SharedSecrets;
  /** Present when several daemons share one journal: locks they all honour (Drive's folder creation). */
  locks?: FleetLocks;
}

/**
 * Secrets kept once for every daemon sharing a journal (docs/scale-out.md). `update(key, fn)`
 * runs `fn` with the stored value (null when none) while holding a fleet-wide lock on `key`;
 * the `value` fn returns, if any, is stored before the lock is released, and a throw stores
 * nothing. So two daemons never act on the same stored value at once: a rotating refresh token
 * is spent by one daemon only, and the next finds the new one.
 */
export interface SharedSecrets {
  update<T>(key: string, fn: (current: string | null) => Promise<{ value?: string; result: T }>): Promise<T>;
}

/**
 * Locks held across every daemon sharing a journal (docs/scale-out.md). `run(key, fn)` runs `fn`
 * while this daemon holds the lock named `key`; another daemon's `run` of the same key waits
 * until `fn` has settled. For what a service cannot make atomic itself: Drive takes two folders
 * of one name, so "look the folder up, make it if missing" must not run on two daemons at once.
 * If the journal connection holding the lock is lost while `fn` runs, `run` rejects once `fn`
 * has settled (the lock may have been released early).
 */
export interface FleetLocks {
  run<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

/**
 * The one signature of every provider's factory (`create<Provider>Target` in src/targets/<id>/index.ts):
 * the options its config entry resolves to, the daemon's context, and the knobs for tests and
 * benchmarks (`<Provider>Internals`, each with a production default; the config sets only
 * `requestTimeoutMs`, which provider.ts passes in). A provider without knobs (local) takes none.
 */
export type TargetFactory<O, I = never> = (options: O, ctx: TargetContext, internals?: I) => Target;

/** What a sign-in flow (`stagecoach auth <id>`) needs of the terminal. */
export interface AuthIO {
  print(line: string): void;
  prompt(question: string): Promise<string>;
}
