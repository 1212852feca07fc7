/**
 * Dropbox uploads: `files/upload` for small files, upload sessions for large ones, both verified
 * against the content hash of the bytes read from disk.
 *
 * - Small (≤ `IN_MEMORY_MAX`, 1 MiB, and ≤ `simpleUploadMax`): read once, whole, hashed as it is
 *   read, and sent from that buffer with its content hash (`readWhole`, `uploadBytes`).
 * - Simple (≤ `simpleUploadMax`, 8 MiB by default): the file is read once to hash it (Dropbox's
 *   content hash goes in the request's `Dropbox-API-Arg` header, before the body), then streamed
 *   as the body through a counter that hashes it again. Dropbox refuses the bytes if they do not
 *   hash as announced (`content_hash_mismatch`); the counter fails the request (so nothing is
 *   committed) when the file is shorter or longer than `size`.
 * - Sessions: `upload_session/start`, `append_v2`, `finish` in chunks of `chunkSize` (8 MiB by
 *   default, a multiple of 4 MiB), each read from disk into one buffer: memory is bounded by two
 *   chunks per upload (the one sent, and the next, read and hashed while it is: `SourceReader`'s
 *   read-ahead). Each request carries the content hash of its own bytes, which Dropbox
 *   checks; the whole-file hash is folded while reading and compared with the `content_hash`
 *   `finish` returns. After each request the resume handle `{sessionId, offset}` is saved; a put
 *   given a handle first asks Dropbox where the session stands (an empty `append_v2` at the saved
 *   offset: Dropbox answers `incorrect_offset` with the offset it holds when an append's answer
 *   was lost), hashes that prefix from disk without sending it, and appends from there. An
 *   `incorrect_offset` later on moves the same way, reading the source from Dropbox's offset; a
 *   session gone (expired after 7 days, committed) starts over once.
 * - Both commit with mode `overwrite`: a changed file replaces the same path (same file id),
 *   never an `add` or an autorenamed copy. `client_modified` is the source's mtime.
 */
import { addAbortSignal, pipeline, type Readable, type TransformCallback } from 'node:stream';
import type { Logger } from 'pino';
import { DropboxContentHasher } from '../../archive/dropbox-hash.js';
import { CountingHashStream, verifySize } from '../../archive/hash.js';
import { ShortReadError, TargetError } from '../../errors.js';
import type { PutRequest } from '../target.js';
import type { DropboxFileMetadata, DropboxResumeHandle } from './api-types.js';
import type { DropboxSession } from './auth.js';
import { SourceError } from '../kit/classify.js';
import { correctOffsetOf, isSessionGone } from './classify.js';
import { pathKey } from './names.js';
import { readSmallSync } from '../kit/chunks.js';
import { ReadAhead } from '../kit/read-ahead.js';

/** Dropbox's content-hash block size: session chunks are a multiple of it. */
export const DROPBOX_BLOCK = 4 * 1024 * 1024;
/** Default size limit of the simple upload and default chunk size: 8 MiB. */
export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;
/** Dropbox's limit on one upload request's body. */
export const MAX_REQUEST_BYTES = 150 * 1024 * 1024;
/** `incorrect_offset` answers followed within one put before giving up (`retry`). */
const MAX_OFFSET_CORRECTIONS = 3;

/** What the upload functions need of the target. */
export interface UploadContext {
  session: DropboxSession;
  targetId: string;
  log: Logger;
  chunkSize: number;
  abortError(signal: AbortSignal): Error;
}

/** `YYYY-MM-DDTHH:MM:SSZ`: Dropbox takes whole seconds in UTC. */
export function dropboxTimestamp(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The content hash of one buffer. */
function chunkHash(buf: Buffer): string {
  return new DropboxContentHasher().update(buf).digest();
}

/**
 * Reads the source from the start in order, hashing every byte it reads (those it hands out or
 * skips, and with `ahead` those read before they are asked for), and checking the size: reading
 * past `size` or an end before it throws ShortReadError. Errors of the source come out as
 * SourceError (or the put's AbortError), in the order of the bytes.
 */
export class SourceReader {
  readonly #req: PutRequest;
  readonly #uctx: UploadContext;
  readonly #ahead: ReadAhead;
  readonly #hasher: DropboxContentHasher;
  #left: Buffer | null = null;
  #pos = 0;
  #ended = false;

  /**
   * `ahead`: bytes read and hashed before they are asked for (ReadAhead; 0: none). A reader that
   * reads ahead sends its bytes in requests, and keeps its blocks' digests for `hashOf`.
   */
  constructor(uctx: UploadContext, req: PutRequest, ahead = 0) {
    this.#uctx = uctx;
    this.#req = req;
    this.#hasher = new DropboxContentHasher({ keepBlocks: ahead > 0 });
    let stream: Readable;
    try {
      stream = req.open(0);
    } catch (err) {
      throw new SourceError(err);
    }
    const signal = req.signal;
    if (signal) addAbortSignal(signal, stream);
    this.#ahead = new ReadAhead(stream, {
      limit: ahead,
      // Every byte pulled is hashed, in order, as it arrives: the same bytes, ahead of their use.
      onChunk: (chunk) => this.#hasher.update(chunk),
      sourceError: (err) => (signal?.aborted ? uctx.abortError(signal) : new SourceError(err)),
    });
  }

  /** Bytes handed out (or skipped) so far. */
  get pos(): number {
    return this.#pos;
  }

  /** The next piece of at most `max` bytes; null at the end of the source. */
  async #pull(max: number): Promise<Buffer | null> {
    let piece = this.#left;
    this.#left = null;
    if (piece === null) {
      if (this.#ended) return null;
      const signal = this.#req.signal;
      if (signal?.aborted) throw this.#uctx.abortError(signal);
      piece = await this.#ahead.next();
      if (piece === null) {
        this.#ended = true;
        return null;
      }
    }
    if (piece.length > max) {
      this.#left = piece.subarray(max);
      piece = piece.subarray(0, max);
    }
    this.#pos += piece.length;
    return piece;
  }

  /**
   * Exactly `min(n, size - pos)` bytes, in one buffer: `into` when given (it must hold them), so
   * a session's chunks can use one buffer again and again.
   */
  async read(n: number, into?: Buffer): Promise<Buffer> {
    const want = Math.max(0, Math.min(n, this.#req.size - this.#pos));
    const out = into ? into.subarray(0, want) : Buffer.allocUnsafe(want);
    let filled = 0;
    while (filled < want) {
      const piece = await this.#pull(want - filled);
      if (piece === null) throw new ShortReadError(this.#req.size, this.#pos);
      piece.copy(out, filled);
      filled += piece.length;
    }
    return out;
  }

  /** Reads and hashes, without keeping, up to byte `target` (≥ pos, ≤ size). */
  async skipTo(target: number): Promise<void> {
    while (this.#pos < target) {
      const piece = await this.#pull(target - this.#pos);
      if (piece === null) throw new ShortReadError(this.#req.size, this.#pos);
    }
    // No request carries the bytes skipped: their blocks' digests are not kept for one.
    this.#hasher.dropBlocksBefore(this.#pos);
  }

  /** Checks that the source ends exactly at `size` (call once pos === size). */
  async checkEnd(): Promise<void> {
    if (this.#pos !== this.#req.size) throw new ShortReadError(this.#req.size, this.#pos);
    const more = await this.#pull(Number.MAX_SAFE_INTEGER);
    if (more !== null && more.length > 0) throw new ShortReadError(this.#req.size, this.#pos);
  }

  /**
   * The content hash of `chunk`, the bytes `read` just handed out (a request's `content_hash`):
   * from the digests of the blocks the file's hash already made when the chunk starts on a
   * block boundary (chunk sizes are multiples of 4 MiB), else by hashing it.
   */
  hashOf(chunk: Buffer): string {
    const start = this.#pos - chunk.length;
    const fromBlocks = this.#hasher.rangeHash(start, this.#pos);
    this.#hasher.dropBlocksBefore(this.#pos);
    return fromBlocks ?? chunkHash(chunk);
  }

  /** The content hash of every byte read; call once, at the end. */
  digest(): string {
    return this.#hasher.digest();
  }

  close(): void {
    this.#ahead.close();
  }
}

/** Hashes the whole source (one read), checking its size. */
export async function hashSource(uctx: UploadContext, req: PutRequest): Promise<string> {
  const reader = new SourceReader(uctx, req);
  try {
    await reader.skipTo(req.size);
    await reader.checkEnd();
    return reader.digest();
  } finally {
    reader.close();
  }
}

/** Sources up to this size are read once, whole, and sent from memory (`readWhole`, `uploadBytes`). */
export const IN_MEMORY_MAX = 1024 * 1024;

/**
 * The whole source (at most `IN_MEMORY_MAX` bytes) in one buffer, with its content hash, in one
 * read: exactly `size` bytes or ShortReadError.
 */
export async function readWhole(uctx: UploadContext, req: PutRequest): Promise<{ bytes: Buffer; hash: string }> {
  // A small source offers synchronous reads through its checked descriptor: no stream, no
  // thread-pool round trips.
  const small = readSmallSync(req);
  if (small) return { bytes: small, hash: chunkHash(small) };
  const reader = new SourceReader(uctx, req);
  try {
    const bytes = await reader.read(req.size);
    await reader.checkEnd();
    return { bytes, hash: reader.digest() };
  } finally {
    reader.close();
  }
}

/**
 * `files/upload` of `bytes` (the source as `readWhole` read it, hashing as `hash`) to `path`: a
 * small file is sent from memory, without a second read of the source and a stream to pace it.
 * Verifies that Dropbox stored `size` bytes hashing as those sent.
 */
export async function uploadBytes(uctx: UploadContext, req: PutRequest, path: string, bytes: Buffer, hash: string): Promise<UploadOutcome> {
  const meta = await uctx.session
    .call(async (dbx) => (await dbx.filesUpload({ ...commitInfo(path, req), content_hash: hash, contents: bytes })).result as unknown as DropboxFileMetadata, req.signal)
    .catch((err: unknown) => {
      if (req.signal?.aborted) throw uctx.abortError(req.signal);
      throw err;
    });
  if (meta.size !== req.size || meta.content_hash !== hash) throw hashMismatch(uctx, path, meta, req.size, hash);
  return { meta, hash, bytesSent: bytes.length };
}

/** Counts and hashes the body of a simple upload; fails the stream unless exactly `size` bytes pass. */
class ExactSizeStream extends CountingHashStream {
  readonly #size: number;
  constructor(size: number) {
    super(['dropbox'], { maxBytes: size });
    this.#size = size;
  }

  override _flush(cb: TransformCallback): void {
    // Failing here keeps the request from ending: Dropbox never sees a complete short body.
    cb(this.bytes === this.#size ? null : new ShortReadError(this.#size, this.bytes));
  }
}

function hashMismatch(uctx: UploadContext, path: string, got: DropboxFileMetadata, size: number, sent: string): TargetError {
  return new TargetError(
    uctx.targetId,
    'retry',
    `hash-mismatch: Dropbox stored ${got.size} bytes hashing ${got.content_hash ?? '(none)'} at ${JSON.stringify(path)}, but ${size} bytes hashing ${sent} were sent`,
    { code: 'dropbox.hash-mismatch' },
  );
}

/** The commit part of an upload: overwrite, never rename, keep the source's mtime. */
function commitInfo(path: string, req: PutRequest) {
  return {
    path,
    mode: { '.tag': 'overwrite' as const },
    autorename: false,
    mute: true,
    client_modified: dropboxTimestamp(req.mtimeMs),
  };
}

/** A committed upload: Dropbox's metadata, the content hash of the bytes read, bytes sent now. */
export interface UploadOutcome {
  meta: DropboxFileMetadata;
  hash: string;
  bytesSent: number;
}

/**
 * `files/upload` of the whole source to `path`, streamed, with `content_hash` = `expected` (the
 * hash of a first read). Verifies that Dropbox stored `size` bytes hashing as those sent.
 */
export async function simpleUpload(uctx: UploadContext, req: PutRequest, path: string, expected: string): Promise<UploadOutcome> {
  const { session } = uctx;
  let counter: ExactSizeStream | null = null;
  let sourceError: unknown;
  const meta = await session
    .call(async (dbx) => {
      const body = new ExactSizeStream(req.size);
      counter = body;
      let src: Readable;
      try {
        src = req.open(0);
      } catch (err) {
        throw new SourceError(err);
      }
      if (req.signal) addAbortSignal(req.signal, src);
      src.once('error', (e) => {
        sourceError ??= e;
      });
      // Errors of either stream reach `body`, which the fetch wrapper watches.
      pipeline(src, body, () => undefined);
      const res = await dbx.filesUpload({ ...commitInfo(path, req), content_hash: expected, contents: body });
      return res.result as unknown as DropboxFileMetadata;
    }, req.signal)
    .catch((err: unknown) => {
      if (req.signal?.aborted) throw uctx.abortError(req.signal);
      if (err instanceof ShortReadError) throw err;
      if (sourceError !== undefined && err === sourceError) throw new SourceError(err);
      throw err;
    });
  const sent = counter as ExactSizeStream | null;
  if (!sent) throw new Error('[stagecoach] [dropbox] internal: upload ran without a body');
  verifySize(req.size, sent.bytes);
  const hash = sent.digest('dropbox');
  if (meta.size !== req.size || meta.content_hash !== hash) throw hashMismatch(uctx, path, meta, req.size, hash);
  return { meta, hash, bytesSent: sent.bytes };
}

/** Reads a saved handle; null when absent, unreadable, or made for another file or path. */
export function parseHandle(raw: string | null, size: number, path: string): DropboxResumeHandle | null {
  if (raw === null) return null;
  let h: Partial<DropboxResumeHandle>;
  try {
    h = JSON.parse(raw) as Partial<DropboxResumeHandle>;
  } catch {
    return null;
  }
  if (typeof h !== 'object' || h === null || h.v !== 1 || h.provider !== 'dropbox') return null;
  if (typeof h.sessionId !== 'string' || h.sessionId === '') return null;
  if (typeof h.offset !== 'number' || !Number.isInteger(h.offset) || h.offset < 0 || h.offset > size) return null;
  if (h.size !== size || h.path !== pathKey(path)) return null;
  return h as DropboxResumeHandle;
}

/** The handle to save for `sessionId` at `offset`. */
export function formatHandle(sessionId: string, offset: number, size: number, path: string): string {
  const h: DropboxResumeHandle = { v: 1, provider: 'dropbox', sessionId, offset, size, path: pathKey(path) };
  return JSON.stringify(h);
}

/**
 * Asks Dropbox where a saved session stands, with an empty `append_v2` at the saved offset:
 * resolves with the offset to continue from (the saved one, or the `correct_offset` Dropbox
 * names when an append's answer was lost), or null when the session is gone (the handle is
 * then cleared). Costs one request without a body, and spares re-sending a chunk Dropbox holds.
 */
async function probe(uctx: UploadContext, req: PutRequest, handle: DropboxResumeHandle): Promise<number | null> {
  const { session } = uctx;
  try {
    await session.call(
      (dbx) => dbx.filesUploadSessionAppendV2({ cursor: { session_id: handle.sessionId, offset: handle.offset }, close: false, contents: Buffer.alloc(0) }),
      req.signal,
    );
    return handle.offset;
  } catch (err) {
    const correct = correctOffsetOf(err);
    if (correct !== undefined && correct <= req.size) return correct;
    if (isSessionGone(err)) {
      uctx.log.info({ sessionId: handle.sessionId }, 'the saved upload session is gone (expired or finished); starting over');
      await req.saveResume(null);
      return null;
    }
    throw err;
  }
}

/**
 * Uploads the source to `path` through an upload session, resuming `req.resume` when it names
 * a session for this file: see the module comment. Verifies the whole-file content hash.
 */
export async function chunkedUpload(uctx: UploadContext, req: PutRequest, path: string): Promise<UploadOutcome> {
  const { session, log, chunkSize } = uctx;
  const size = req.size;
  const signal = req.signal;
  const handle = parseHandle(req.resume, size, path);
  if (req.resume !== null && handle === null) log.debug({ path }, 'the saved resume handle is for another upload; starting a new session');
  const save = (sessionId: string, offset: number): Promise<void> => req.saveResume(formatHandle(sessionId, offset, size, path));
  const checkAbort = (): void => {
    if (signal?.aborted) throw uctx.abortError(signal);
  };

  // Each reader reads and hashes the next chunk while one is sent: one chunk ahead at most.
  let reader = new SourceReader(uctx, req, chunkSize);
  // Where the session stands: its id, and the bytes Dropbox holds (the next request's offset).
  const at = { sessionId: '', offset: 0 };
  let bytesSent = 0;
  let resumed = false;

  // One buffer for every chunk: a chunk's request is over before the next chunk is read into it.
  const chunkBuf = Buffer.allocUnsafe(Math.min(chunkSize, size));
  const start = async (): Promise<void> => {
    checkAbort();
    const first = await reader.read(chunkSize, chunkBuf);
    const hash = reader.hashOf(first);
    const res = await session.call(
      (dbx) => dbx.filesUploadSessionStart({ close: false, content_hash: hash, contents: first }),
      signal,
    );
    at.sessionId = res.result.session_id;
    at.offset = first.length;
    bytesSent += first.length;
    await save(at.sessionId, at.offset);
  };

  try {
    const probed = handle ? await probe(uctx, req, handle) : null;
    if (handle && probed !== null) {
      // The prefix is on Dropbox already: hash it from disk, send nothing.
      at.sessionId = handle.sessionId;
      at.offset = probed;
      await reader.skipTo(at.offset);
      if (probed !== handle.offset) await save(at.sessionId, at.offset);
      resumed = true;
      log.info({ path, offset: at.offset, size }, 'resuming the saved upload session');
    } else {
      await start();
    }

    let corrections = 0;
    let meta: DropboxFileMetadata;
    for (;;) {
      checkAbort();
      // Reading must stand where Dropbox does, or the loop would send the wrong bytes (or none).
      if (reader.pos !== at.offset) {
        throw new TargetError(uctx.targetId, 'retry', `internal: the source is read at ${reader.pos}, the session stands at ${at.offset}`, { code: 'dropbox.internal' });
      }
      const last = size - at.offset <= chunkSize;
      const chunk = await reader.read(last ? size - at.offset : chunkSize, chunkBuf);
      if (last) await reader.checkEnd();
      const hash = reader.hashOf(chunk);
      const cursor = { session_id: at.sessionId, offset: at.offset };
      try {
        if (last) {
          const res = await session.call(
            (dbx) => dbx.filesUploadSessionFinish({ cursor: { ...cursor }, commit: commitInfo(path, req), content_hash: hash, contents: chunk }),
            signal,
          );
          meta = res.result as unknown as DropboxFileMetadata;
          bytesSent += chunk.length;
          break;
        }
        await session.call(
          (dbx) => dbx.filesUploadSessionAppendV2({ cursor: { ...cursor }, close: false, content_hash: hash, contents: chunk }),
          signal,
        );
        at.offset += chunk.length;
        bytesSent += chunk.length;
        await save(at.sessionId, at.offset);
      } catch (err) {
        const correct = correctOffsetOf(err);
        if (correct !== undefined && correct <= size && corrections < MAX_OFFSET_CORRECTIONS) {
          corrections++;
          log.info({ path, sent: at.offset, correct }, 'Dropbox holds another offset of the session; continuing from it');
          if (correct < reader.pos) {
            // Behind what was read: the hash must be folded again from the start.
            reader.close();
            reader = new SourceReader(uctx, req, chunkSize);
          }
          await reader.skipTo(correct);
          at.offset = correct;
          await save(at.sessionId, at.offset);
          continue;
        }
        if (isSessionGone(err)) {
          // Useless from now on, whatever happens next.
          await req.saveResume(null);
          if (resumed) {
            resumed = false;
            log.info({ path }, 'the saved upload session is gone (expired or finished); starting over');
            reader.close();
            reader = new SourceReader(uctx, req, chunkSize);
            await start();
            continue;
          }
        }
        throw err;
      }
    }
    const hash = reader.digest();
    // Committed: the session cannot be used again, whatever the verdict below.
    await req.saveResume(null);
    if (meta.size !== size || meta.content_hash !== hash) throw hashMismatch(uctx, path, meta, size, hash);
    return { meta, hash, bytesSent };
  } finally {
    reader.close();
  }
}
