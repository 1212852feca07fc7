/**
 * Uploads to Drive, streamed from the source with memory bounded by two chunks (the one sent, and
 * the next, read and hashed while it is: `SourceReader`'s read-ahead):
 * - simple: one multipart request (metadata + a Readable media part) through the SDK, for files
 *   up to the simple-upload limit;
 * - resumable: a session (POST or, for a new version of a file, PATCH `uploadType=resumable`),
 *   then chunks of `chunkSize` bytes (a multiple of 256 KiB) PUT with `Content-Range`; each
 *   308 answer's `Range` says what the server kept, and the next chunk starts there (Google may
 *   keep less than it was sent). A cut session is resumed from a saved handle: a probe
 *   (`Content-Range: bytes *\/N`) tells how far it got. The session's creation is journaled
 *   before it is made and its URI before any byte is sent (`openSession`).
 *
 * Every byte read from the source is counted and md5-hashed once, in order, whether sent or
 * skipped (a resumed session's prefix is read from disk and hashed without sending), so the
 * digest always covers the whole file and can be compared with Drive's md5Checksum.
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, addAbortSignal, type TransformCallback } from 'node:stream';
import { ShortReadError, TargetError } from '../../errors.js';
import type { PutRequest } from '../target.js';
import { CHUNK_GRANULARITY, FILE_FIELDS, type DriveFileFields, type ResumeHandle } from './api-types.js';
import { abortError } from '../kit/abort.js';
import { SourceError } from '../kit/classify.js';
import { redact } from './classify.js';
import type { DriveApi } from './transport.js';
import { multipartBoundary } from '../kit/boundary.js';
import { readSmallSync } from '../kit/chunks.js';
import { ReadAhead } from '../kit/read-ahead.js';
import { hashBuffer } from '../../archive/hash.js';

/** Where an upload goes: a new file (`fileId` null) or a new version of an existing one. */
export interface UploadDest {
  parentId: string;
  name: string;
  fileId: string | null;
  mtimeMs: number;
}

export interface UploadOutcome {
  /** Drive's answer for the stored file (FILE_FIELDS). */
  file: DriveFileFields;
  /** md5 (hex) of every byte read from the source. */
  md5: string;
  /** Bytes read from the source (its size, once verified). */
  bytes: number;
  /** Bytes sent to Drive in this call. */
  bytesSent: number;
}

export interface UploadContext {
  api: DriveApi;
  targetId: string;
  signal: AbortSignal | undefined;
}

/** The AbortError a put throws when its signal fired. */
function openSource(req: PutRequest, start?: number): Readable {
  let src: Readable;
  try {
    src = start === undefined ? req.open() : req.open(start);
  } catch (err) {
    throw new SourceError(err, redact);
  }
  if (req.signal) addAbortSignal(req.signal, src);
  return src;
}

/**
 * A pass-through that counts and md5-hashes what goes through it, fails at once with
 * ShortReadError when more than `size` bytes arrive, and refuses to end short of `size`:
 * a short source never lets a multipart body reach its closing boundary, so Drive never
 * stores a truncated file.
 */
export class MeteredStream extends Transform {
  #bytes = 0;
  readonly #hash: Hash = createHash('md5');
  readonly #size: number;
  #digest: string | null = null;

  constructor(size: number) {
    super();
    this.#size = size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  override _transform(chunk: Buffer | string, _enc: BufferEncoding, cb: TransformCallback): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.#bytes += buf.length;
    if (this.#bytes > this.#size) {
      cb(new ShortReadError(this.#size, this.#bytes));
      return;
    }
    this.#hash.update(buf);
    cb(null, buf);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#bytes !== this.#size) {
      cb(new ShortReadError(this.#size, this.#bytes));
      return;
    }
    cb();
  }

  /** The md5 (hex) of the bytes passed; call once the stream has ended. */
  digest(): string {
    this.#digest ??= this.#hash.digest('hex');
    return this.#digest;
  }
}

/**
 * Reads a source sequentially in exact byte counts, hashing each byte once as it is read.
 * Errors: ShortReadError when the source ends before `size` or holds more; SourceError when
 * the source itself fails; an AbortError when the put's signal fired. With `ahead` > 0 the
 * source is read, counted and hashed up to `ahead` bytes before it is asked for (ReadAhead), so
 * the next chunk is ready while a request is in flight; errors still come in the order of the
 * bytes.
 */
export class SourceReader {
  readonly #ahead: ReadAhead;
  readonly #size: number;
  readonly #hash: Hash = createHash('md5');
  readonly #targetId: string;
  readonly #signal: AbortSignal | undefined;
  #pending: Buffer | null = null;
  /** Bytes pulled from the source (counted and hashed), ahead of those handed out. */
  #read = 0;
  #ended = false;

  constructor(src: Readable, size: number, targetId: string, signal: AbortSignal | undefined, ahead = 0) {
    this.#size = size;
    this.#targetId = targetId;
    this.#signal = signal;
    this.#ahead = new ReadAhead(src, {
      limit: ahead,
      onChunk: (buf) => {
        this.#read += buf.length;
        if (this.#read > size) throw new ShortReadError(size, this.#read);
        this.#hash.update(buf);
      },
      sourceError: (err) => (signal?.aborted ? abortError(targetId, signal) : new SourceError(err, redact)),
    });
  }

  /** Bytes read from the source so far (all of them once `expectEnd` passed). */
  get bytes(): number {
    return this.#read;
  }

  async #next(): Promise<Buffer | null> {
    if (this.#pending) {
      const b = this.#pending;
      this.#pending = null;
      return b;
    }
    if (this.#ended) return null;
    if (this.#signal?.aborted) throw abortError(this.#targetId, this.#signal);
    const b = await this.#ahead.next();
    if (b === null) this.#ended = true;
    return b;
  }

  async #take(n: number, sink: (piece: Buffer) => void): Promise<void> {
    let need = n;
    while (need > 0) {
      const b = await this.#next();
      if (b === null) throw new ShortReadError(this.#size, this.#read);
      if (b.length > need) {
        sink(b.subarray(0, need));
        this.#pending = b.subarray(need);
        need = 0;
      } else {
        sink(b);
        need -= b.length;
      }
    }
  }

  /** Reads exactly `n` bytes into `dst` at `offset`. */
  readInto(dst: Buffer, offset: number, n: number): Promise<void> {
    let at = offset;
    return this.#take(n, (piece) => {
      piece.copy(dst, at);
      at += piece.length;
    });
  }

  /** Reads and hashes `n` bytes without keeping them (a resumed session's prefix). */
  skip(n: number): Promise<void> {
    return this.#take(n, () => undefined);
  }

  /** Confirms the source ends here, at `size` bytes (a file still growing fails). */
  async expectEnd(): Promise<void> {
    for (;;) {
      const b = await this.#next();
      if (b === null) break;
      if (b.length > 0) throw new ShortReadError(this.#size, this.#read);
    }
    if (this.#read !== this.#size) throw new ShortReadError(this.#size, this.#read);
  }

  /** The md5 (hex) of every byte read; call after `expectEnd`. */
  digest(): string {
    return this.#hash.digest('hex');
  }

  close(): void {
    this.#ahead.close();
  }
}

/** The md5 of the whole source, read once (the idempotence check, a finished session). */
export async function hashSource(req: PutRequest, targetId: string): Promise<string> {
  const reader = new SourceReader(openSource(req), req.size, targetId, req.signal);
  try {
    await reader.skip(req.size);
    await reader.expectEnd();
    return reader.digest();
  } finally {
    reader.close();
  }
}

function fileMetadata(dest: UploadDest, forCreate: boolean): Record<string, unknown> {
  const modifiedTime = new Date(dest.mtimeMs).toISOString();
  return forCreate ? { name: dest.name, parents: [dest.parentId], modifiedTime } : { modifiedTime };
}

/**
 * One multipart request: metadata, then the file. A small source with `readSync` is read whole
 * first (or `held`, as the caller read it) and sent from that buffer (multipartBytes); any other
 * through the SDK's files.create / files.update as a stream (multipartStream).
 * Safe to call again after a 401 (it reads the source anew).
 */
export async function simpleUpload(ctx: UploadContext, req: PutRequest, dest: UploadDest, held: Buffer | null = null): Promise<UploadOutcome> {
  // A small source offers synchronous reads through its checked descriptor: read whole, it is
  // sent from memory in one multipart body.
  const whole = held ?? readSmallSync(req);
  if (whole !== null) return multipartBytes(ctx, dest, whole);
  return multipartStream(ctx, req, dest);
}

/**
 * The multipart upload of bytes in hand, as Drive documents it (POST …/upload/drive/v3/files or
 * PATCH …/files/{id}, `uploadType=multipart`, a `multipart/related` body: the JSON metadata,
 * then the media: developers.google.com/workspace/drive/api/guides/manage-uploads#multipart),
 * sent through the SDK's auth client as one buffer. The SDK's own files.create takes the media
 * as a stream only, and built each small body from a stream of its parts, an AbortController and
 * a piped meter: more of the main thread than the request itself.
 */
async function multipartBytes(ctx: UploadContext, dest: UploadDest, bytes: Buffer): Promise<UploadOutcome> {
  const { api, signal } = ctx;
  if (signal?.aborted) throw abortError(ctx.targetId, signal);
  const boundary = multipartBoundary('stagecoach-', [bytes]);
  const create = dest.fileId === null;
  const head = `--${boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n${JSON.stringify(fileMetadata(dest, create))}\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\n`;
  const body = Buffer.concat([Buffer.from(head), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]);
  const params = new URLSearchParams({ uploadType: 'multipart', fields: FILE_FIELDS, supportsAllDrives: 'true' });
  const url = `${api.rootUrl}upload/drive/v3/files${create ? '' : `/${encodeURIComponent(dest.fileId!)}`}?${params}`;
  try {
    const res = await api.request<DriveFileFields>(
      { url, method: create ? 'POST' : 'PATCH', headers: { 'Content-Type': `multipart/related; boundary=${boundary}` }, data: body },
      { bytes: bytes.length, ...(signal ? { signal } : {}) },
    );
    return { file: res.data, md5: hashBuffer('md5', bytes), bytes: bytes.length, bytesSent: bytes.length };
  } catch (err) {
    if (signal?.aborted) throw abortError(ctx.targetId, signal);
    throw err;
  }
}

/**
 * One multipart request with the source as a Readable (the SDK crashes on a Buffer body). The
 * SDK pipes the body without passing errors on, so a failing, short or over-long source aborts
 * the request through its own AbortController; the source's error is thrown.
 */
async function multipartStream(ctx: UploadContext, req: PutRequest, dest: UploadDest): Promise<UploadOutcome> {
  const { api, signal } = ctx;
  const ac = new AbortController();
  const onAbort = (): void => ac.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  let failure: unknown = null;
  const fail = (err: unknown): void => {
    failure ??= err;
    ac.abort();
  };
  const src = openSource(req);
  const meter = new MeteredStream(req.size);
  src.on('error', (err) => {
    fail(signal?.aborted ? abortError(ctx.targetId, signal) : new SourceError(err, redact));
    meter.destroy();
  });
  meter.on('error', (err) => fail(err));
  src.pipe(meter);
  try {
    const media = { mimeType: 'application/octet-stream', body: meter };
    const opts = api.callOptions({ signal: ac.signal, bytes: req.size });
    const res =
      dest.fileId === null
        ? await api.drive.files.create({ requestBody: fileMetadata(dest, true), media, fields: FILE_FIELDS, supportsAllDrives: true }, opts)
        : await api.drive.files.update({ fileId: dest.fileId, requestBody: fileMetadata(dest, false), media, fields: FILE_FIELDS, supportsAllDrives: true }, opts);
    if (failure) throw failure;
    return { file: res.data as DriveFileFields, md5: meter.digest(), bytes: meter.bytes, bytesSent: meter.bytes };
  } catch (err) {
    if (failure) throw failure;
    if (signal?.aborted) throw abortError(ctx.targetId, signal);
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    src.destroy();
    meter.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Resumable

type SessionState = { done: true; file: DriveFileFields } | { done: false; received: number };

const sessionStatus = (s: number): boolean => s === 200 || s === 201 || s === 308;

function readState(status: number, range: string | null, data: unknown): SessionState {
  if (status === 200 || status === 201) return { done: true, file: data as DriveFileFields };
  const m = range ? /^bytes=0-(\d+)$/.exec(range.trim()) : null;
  return { done: false, received: m ? Number(m[1]) + 1 : 0 };
}

function status(err: unknown): number | undefined {
  const s = (err as { response?: { status?: unknown } } | null)?.response?.status;
  return typeof s === 'number' ? s : undefined;
}

/** The resume handle for `handle`, as stored (JSON; it holds the session URI: a secret). */
export function encodeHandle(handle: ResumeHandle): string {
  return JSON.stringify(handle);
}

/** The handle in `raw`, or null when it is absent or not one of ours. */
export function decodeHandle(raw: string | null): ResumeHandle | null {
  if (!raw) return null;
  try {
    const h = JSON.parse(raw) as Partial<ResumeHandle>;
    if (h.v !== 1 || (typeof h.uri !== 'string' && h.uri !== null) || typeof h.size !== 'number') return null;
    if (h.uri !== null && !/^https?:\/\//.test(h.uri)) return null;
    return { v: 1, uri: h.uri, size: h.size, fileId: typeof h.fileId === 'string' ? h.fileId : null };
  } catch {
    return null;
  }
}

async function startSession(ctx: UploadContext, dest: UploadDest, size: number): Promise<string> {
  const { api } = ctx;
  const create = dest.fileId === null;
  const path = create ? 'upload/drive/v3/files' : `upload/drive/v3/files/${encodeURIComponent(dest.fileId!)}`;
  const params = new URLSearchParams({ uploadType: 'resumable', fields: FILE_FIELDS, supportsAllDrives: 'true' });
  const res = await api.authed(() =>
    api.request(
      {
        url: `${api.rootUrl}${path}?${params}`,
        method: create ? 'POST' : 'PATCH',
        headers: {
          'Content-Type': 'application/json; charset=UTF-8',
          'X-Upload-Content-Length': String(size),
          'X-Upload-Content-Type': 'application/octet-stream',
        },
        data: fileMetadata(dest, create),
      },
      ctx.signal ? { signal: ctx.signal } : {},
    ),
  );
  const location = res.headers.get('location');
  if (!location) throw new TargetError(ctx.targetId, 'retry', 'no-session: Drive opened no resumable session (no Location header)', { code: 'gdrive.no-session' });
  return location;
}

/** The state of a session, or null when it is gone (expired, unknown: 404/410). */
async function probe(ctx: UploadContext, uri: string, size: number): Promise<SessionState | null> {
  try {
    const res = await ctx.api.authed(() =>
      ctx.api.request(
        { url: uri, method: 'PUT', headers: { 'Content-Range': `bytes */${size}` }, data: Buffer.alloc(0), validateStatus: sessionStatus },
        ctx.signal ? { signal: ctx.signal } : {},
      ),
    );
    return readState(res.status, res.headers.get('range'), res.data);
  } catch (err) {
    const s = status(err);
    if (s === 404 || s === 410) return null;
    throw err;
  }
}

function sessionGone(targetId: string, cause: unknown): TargetError {
  return new TargetError(targetId, 'retry', 'session-gone: the resumable session expired or is unknown to Drive; the next attempt starts a new one', {
    code: 'gdrive.session-gone',
    cause: cause instanceof Error ? new Error(`HTTP ${status(cause) ?? '?'}`) : undefined,
  });
}

export interface ResumableOptions {
  chunkSize: number;
  /** A handle saved by an earlier attempt (already checked to match this request). */
  resume: ResumeHandle | null;
  saveResume(handle: string | null): Promise<void>;
  log: { debug(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/**
 * Opens a session with its creation journaled first. Drive answers the session URI only in the
 * initiation's `Location` header, lists no open sessions and documents no way to cancel one (an
 * unused session expires after a week and creates no file: developers.google.com/workspace/drive/
 * api/guides/manage-uploads, "Perform a resumable upload"). So the one window where a kill loses
 * a session is the create itself: a marker (a handle whose `uri` is null) is saved before it and
 * the URI right after, before any byte is sent. A kill in between leaves at most that one empty
 * session, and the next attempt, finding the marker, says so and opens one new session.
 */
async function openSession(ctx: UploadContext, dest: UploadDest, size: number, opts: ResumableOptions): Promise<string> {
  await opts.saveResume(encodeHandle({ v: 1, uri: null, size, fileId: dest.fileId }));
  let uri: string;
  try {
    uri = await startSession(ctx, dest, size);
  } catch (err) {
    // Drive answered with an error: it opened no session, and the marker would only mislead.
    // Without an answer (cut connection, abort) a session may exist: the marker stays.
    if (status(err) !== undefined) await opts.saveResume(null);
    throw err;
  }
  await opts.saveResume(encodeHandle({ v: 1, uri, size, fileId: dest.fileId }));
  return uri;
}

/**
 * Uploads `req` through a resumable session, continuing `opts.resume` when it still lives
 * (probed first; a finished one is only verified, nothing is sent) and opening a new one
 * otherwise; the new handle is saved as soon as the session exists, and kept on failure so
 * the next attempt resumes. A session gone mid-upload clears the handle and throws retry
 * `session-gone`. The caller clears the handle on success.
 */
export async function resumableUpload(ctx: UploadContext, req: PutRequest, dest: UploadDest, opts: ResumableOptions): Promise<UploadOutcome> {
  const { targetId, signal } = ctx;
  const size = req.size;
  if (opts.chunkSize <= 0 || opts.chunkSize % CHUNK_GRANULARITY !== 0) {
    throw new TargetError(targetId, 'fatal', `chunk-size: the chunk size must be a positive multiple of ${CHUNK_GRANULARITY}, got ${opts.chunkSize}`, { code: 'gdrive.chunk-size' });
  }
  let uri: string | null = null;
  let offset = 0;
  if (opts.resume?.uri === null) {
    opts.log.warn(
      { size },
      'an earlier attempt was cut while opening a Drive resumable session: Drive may hold one empty session of it, which it neither lists nor lets us cancel; it creates no file and expires within a week. Opening a new session',
    );
  } else if (opts.resume) {
    const st = await probe(ctx, opts.resume.uri, size);
    if (st === null) {
      opts.log.debug({ size }, 'the saved resumable session is gone; starting a new one');
      await opts.saveResume(null);
    } else if (st.done) {
      opts.log.debug({ size }, 'the saved resumable session had already finished; verifying only');
      const md5 = await hashSource(req, targetId);
      return { file: st.file, md5, bytes: size, bytesSent: 0 };
    } else {
      uri = opts.resume.uri;
      offset = st.received;
      opts.log.debug({ size, offset }, 'resuming a resumable session');
    }
  }
  uri ??= await openSession(ctx, dest, size, opts);
  const sessionUri = uri;

  // The next chunk is read and hashed while one is sent: one chunk ahead at most.
  const reader = new SourceReader(openSource(req), size, targetId, signal, opts.chunkSize);
  try {
    await reader.skip(offset);
    const buf = Buffer.allocUnsafe(Math.min(opts.chunkSize, size));
    let filled = 0;
    let sent = 0;
    let stalls = 0;
    let endChecked = false;
    // Each pass sends one chunk and either advances or counts a stall: bounded.
    while (stalls < 3) {
      if (signal?.aborted) throw abortError(targetId, signal);
      const len = Math.min(opts.chunkSize, size - offset);
      if (filled < len) {
        await reader.readInto(buf, filled, len - filled);
        filled = len;
      }
      if (offset + len === size && !endChecked) {
        // The last chunk completes the file on Drive: a source still growing must fail first.
        await reader.expectEnd();
        endChecked = true;
      }
      const range = len > 0 ? `bytes ${offset}-${offset + len - 1}/${size}` : `bytes */${size}`;
      let st: SessionState;
      try {
        const res = await ctx.api.authed(() =>
          ctx.api.request(
            {
              url: sessionUri,
              method: 'PUT',
              headers: { 'Content-Range': range, 'Content-Type': 'application/octet-stream' },
              // The request settles before the buffer is refilled, so no copy is needed.
              data: buf.subarray(0, len),
              validateStatus: sessionStatus,
            },
            { ...(signal ? { signal } : {}), bytes: len },
          ),
        );
        st = readState(res.status, res.headers.get('range'), res.data);
      } catch (err) {
        const s = status(err);
        if (s === 404 || s === 410) {
          await opts.saveResume(null);
          throw sessionGone(targetId, err);
        }
        throw err;
      }
      sent += len;
      if (st.done) {
        if (!endChecked) await reader.expectEnd();
        return { file: st.file, md5: reader.digest(), bytes: reader.bytes, bytesSent: sent };
      }
      const received = st.received;
      if (received < offset || received > offset + len) {
        // The server went back before this chunk (or past it): what it holds is unknown here.
        throw new TargetError(targetId, 'retry', `session-confused: Drive reports ${received} bytes stored after a chunk at ${offset}-${offset + len - 1}`, { code: 'gdrive.session-confused' });
      }
      stalls = received > offset ? 0 : stalls + 1;
      // Bytes the server did not keep are still in the buffer: move them to its front.
      const kept = received - offset;
      if (kept < len) buf.copy(buf, 0, kept, len);
      filled = len - kept;
      offset = received;
    }
    throw new TargetError(targetId, 'retry', `upload-stalled: the resumable session made no progress at byte ${offset}`, { code: 'gdrive.upload-stalled' });
  } catch (err) {
    if (signal?.aborted) throw abortError(targetId, signal);
    if (err instanceof ShortReadError || (err instanceof SourceError && err.cause instanceof ShortReadError)) {
      // The session holds bytes of another version of the file: it cannot be resumed.
      await opts.saveResume(null);
    }
    throw err;
  } finally {
    reader.close();
  }
}
