/**
 * Putting one file on Box, once its folder is known: the "already there" check, the multipart
 * upload for small files, and the chunked upload through an upload session for large ones,
 * resumable from a saved handle. Every path hashes (SHA-1) exactly the bytes it sends and checks
 * Box's `sha1` and `size` of the stored file against them.
 *
 * Memory: a small file (≤ `simpleUploadMax`, 20,000,000 bytes) is held whole, because the SDK's
 * multipart upload buffers its body anyway; a large one is read one part at a time (Box's
 * `part_size`), the next part read and hashed while one is sent, and the SDK buffers the part
 * sent once more to be able to replay it after a 401.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { dateTimeFromString } from 'box-node-sdk/lib/internal/utils';
import type { Logger } from 'pino';
import { ShortReadError, TargetError } from '../../errors.js';
import { parseRetryAfter } from '../../retry/delay.js';
import type { PutRequest, PutResult } from '../target.js';
import type { BoxFileJson, BoxFilesJson, BoxPartJson, BoxPartsPage, BoxResumeHandle, BoxUploadSessionJson } from './api-types.js';
import { SourceError } from '../kit/classify.js';
import { BoxHttpError } from './classify.js';
import type { BoxEntry, FolderTree } from './folders.js';
import { conflictOf } from './folders.js';
import type { BoxApi } from './transport.js';
import { nameKey } from './names.js';
import { readSmallSync } from '../kit/chunks.js';
import { ReadAhead } from '../kit/read-ahead.js';

/** Box's smallest upload session, in bytes: files up to this size go in one request. */
export const BOX_MIN_SESSION_SIZE = 20_000_000;
/** Longest wait for one 202 of a commit (Box says how long in Retry-After). */
const MAX_COMMIT_WAIT_MS = 60_000;
/** Pages of a session's part list, 1000 parts each (Box allows 10,000 parts). */
const MAX_PART_PAGES = 100;

/** What the upload code needs from the target. */
export interface UploadContext {
  api: BoxApi;
  tree: FolderTree;
  targetId: string;
  log: Logger;
  simpleUploadMax: number;
  maxCommitPolls: number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  now(): number;
  abortError(signal: AbortSignal): Error;
}

/** Where a file goes: its folder, its Box name, and what is there now under that name. */
export interface Destination {
  parentId: string;
  name: string;
  existing: BoxEntry | undefined;
}

/** The put must look at the folder again (an item appeared or vanished meanwhile). */
export const RESTART = Symbol('restart');

function fail(ctx: UploadContext, kind: 'retry' | 'fail-item' | 'fatal', rule: string, detail: string, extra?: { cause?: unknown; retryAfterMs?: number }): TargetError {
  return new TargetError(ctx.targetId, kind, `${rule}: ${detail}`, { code: `box.${rule}`, ...extra });
}

function sha1(buf: Buffer): { hex: string; b64: string } {
  const d = createHash('sha1').update(buf).digest();
  return { hex: d.toString('hex'), b64: d.toString('base64') };
}

/** The parts of an upload session, whose SHA-1s the reader takes as it reads (see SourceReader). */
interface PartLayout {
  /** The file's size: bytes past it are in no part. */
  size: number;
  /** Box's `part_size`: part i is bytes [i·partSize, min((i+1)·partSize, size)). */
  partSize: number;
}

/**
 * Reads a source in pieces of exactly the size asked for, counting and failing cleanly: errors
 * of the source become SourceError, an abort stops the reading. Given a session's `parts`, it
 * reads one part ahead of the consumer (ReadAhead) and takes, as the bytes arrive, the SHA-1 of
 * each part and of the whole file: the next part is read and hashed while one is sent.
 */
export class SourceReader {
  readonly #ahead: ReadAhead;
  readonly #whole = createHash('sha1');
  #part = createHash('sha1');
  /** SHA-1s of the parts read whole, not yet taken (`partSha1`). */
  readonly #partDigests: Buffer[] = [];
  /** Bytes hashed (those of the parts). */
  #hashed = 0;
  #pending: Buffer | null = null;
  #done = false;
  /** Bytes handed out so far. */
  bytes = 0;

  constructor(
    stream: Readable,
    private readonly signal: AbortSignal | undefined,
    private readonly abortError: (signal: AbortSignal) => Error,
    parts?: PartLayout,
  ) {
    this.#ahead = new ReadAhead(stream, {
      limit: parts?.partSize ?? 0,
      ...(parts ? { onChunk: (chunk: Buffer) => this.#hash(chunk, parts) } : {}),
      sourceError: (err) => {
        if (signal?.aborted) return abortError(signal);
        if (err instanceof ShortReadError) return err;
        return new SourceError(err);
      },
    });
  }

  /** Feeds the whole-file and the part hashes, a part's digest kept as its last byte arrives. */
  #hash(chunk: Buffer, { size, partSize }: PartLayout): void {
    let at = 0;
    while (at < chunk.length && this.#hashed < size) {
      const end = Math.min(size, this.#hashed - (this.#hashed % partSize) + partSize);
      const take = Math.min(chunk.length - at, end - this.#hashed);
      const piece = take === chunk.length ? chunk : chunk.subarray(at, at + take);
      this.#whole.update(piece);
      this.#part.update(piece);
      this.#hashed += take;
      at += take;
      if (this.#hashed === end) {
        this.#partDigests.push(this.#part.digest());
        this.#part = createHash('sha1');
      }
    }
  }

  async #pull(): Promise<Buffer | null> {
    if (this.#pending) {
      const p = this.#pending;
      this.#pending = null;
      return p;
    }
    if (this.#done) return null;
    if (this.signal?.aborted) throw this.abortError(this.signal);
    const chunk = await this.#ahead.next();
    if (this.signal?.aborted) throw this.abortError(this.signal);
    if (chunk === null) this.#done = true;
    return chunk;
  }

  /**
   * The next `n` bytes, or fewer only at the end of the source; into `into` when given (it must
   * hold them: a part's buffer used again, rather than a new one a part for the collector).
   */
  async read(n: number, into?: Buffer): Promise<Buffer> {
    const out = into ? into.subarray(0, n) : Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = await this.#pull();
      if (chunk === null) break;
      const take = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, take);
      filled += take;
      if (take < chunk.length) this.#pending = chunk.subarray(take);
    }
    this.bytes += filled;
    return filled === n ? out : out.subarray(0, filled);
  }

  /** Throws ShortReadError unless the source ends here (it must hold exactly `size` bytes). */
  async expectEnd(size: number): Promise<void> {
    let extra = 0;
    // Count a little of the excess for the message; the file is wrong either way.
    for (let i = 0; i < 4; i++) {
      const chunk = await this.#pull();
      if (chunk === null || chunk.length === 0) {
        if (chunk === null) break;
        continue;
      }
      extra += chunk.length;
    }
    if (extra > 0) throw new ShortReadError(size, size + extra);
  }

  /** The SHA-1 of the next part, in order: call after `read` handed out the whole part. */
  partSha1(): { hex: string; b64: string } {
    const d = this.#partDigests.shift();
    if (d === undefined) throw new Error('[stagecoach] [box] internal: a part was taken before it was read');
    return { hex: d.toString('hex'), b64: d.toString('base64') };
  }

  /** The SHA-1 of the parts' bytes (the whole file once every part was read). */
  digest(): Buffer {
    return this.#whole.digest();
  }

  close(): void {
    this.#ahead.close();
  }
}

/** The whole source (`req.size` bytes, checked) in one buffer. For small files only. */
export async function readWhole(ctx: UploadContext, req: PutRequest): Promise<Buffer> {
  // A small source offers synchronous reads through its checked descriptor: no stream, no
  // thread-pool round trips.
  const small = readSmallSync(req);
  if (small) return small;
  const reader = new SourceReader(req.open(0), req.signal, ctx.abortError);
  try {
    const buf = await reader.read(req.size);
    if (buf.length < req.size) throw new ShortReadError(req.size, buf.length);
    await reader.expectEnd(req.size);
    return buf;
  } finally {
    reader.close();
  }
}

/** The SHA-1 (hex) of the whole source, streamed; checks its size. */
export async function hashSource(ctx: UploadContext, req: PutRequest): Promise<string> {
  const reader = new SourceReader(req.open(0), req.signal, ctx.abortError);
  const h = createHash('sha1');
  try {
    const piece = 1 << 20;
    for (let off = 0; off < req.size; off += piece) {
      const want = Math.min(piece, req.size - off);
      const buf = await reader.read(want);
      h.update(buf);
      if (buf.length < want) throw new ShortReadError(req.size, off + buf.length);
    }
    await reader.expectEnd(req.size);
    return h.digest('hex');
  } finally {
    reader.close();
  }
}

/** Box's view of file `id` now, or null when it is gone. */
export async function liveFile(ctx: UploadContext, id: string, signal?: AbortSignal): Promise<BoxFileJson | null> {
  try {
    const res = await ctx.api.call<BoxFileJson>({
      method: 'GET',
      url: `${ctx.api.baseUrl}/2.0/files/${id}`,
      params: { fields: 'type,id,name,size,sha1' },
      signal,
    });
    return res.data;
  } catch (err) {
    if (err instanceof BoxHttpError && err.status === 404) return null;
    throw err;
  }
}

function verify(ctx: UploadContext, file: BoxFileJson | undefined, sentSha1: string, size: number): BoxFileJson {
  if (!file || typeof file.id !== 'string') throw fail(ctx, 'retry', 'bad-answer', 'Box answered the upload without the file');
  if (file.sha1 !== sentSha1 || file.size !== size) {
    throw fail(
      ctx,
      'retry',
      'hash-mismatch',
      `Box stored ${String(file.size)} bytes with sha1 ${String(file.sha1)}, but ${size} bytes with sha1 ${sentSha1} were sent`,
    );
  }
  return file;
}

function mtimeAttr(mtimeMs: number): string {
  // Box keeps whole seconds.
  return new Date(Math.floor(mtimeMs / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, '+00:00');
}

function done(file: BoxFileJson, sha1hex: string, size: number, bytesSent: number): PutResult {
  return { remoteId: file.id, size, hash: sha1hex, hashKind: 'sha1', unchanged: false, bytesSent };
}

// ---------------------------------------------------------------------------------------------
// Small files

/**
 * One multipart request: a new file (`uploads.uploadFile`), or a new version of the existing one
 * (`uploads.uploadFileVersion`, keeping its stored name). A name taken meanwhile (409 with a
 * file) becomes a new version of that file; a file gone meanwhile (404) becomes a new file — or,
 * when another file has taken its name on Box (409 again), a new version of that one.
 */
export async function simpleUpload(ctx: UploadContext, req: PutRequest, dest: Destination, held?: Buffer): Promise<PutResult> {
  const data = held ?? (await readWhole(ctx, req));
  const digest = sha1(data).hex;
  if (req.signal?.aborted) throw ctx.abortError(req.signal);
  const modified = dateTimeFromString(mtimeAttr(req.mtimeMs));
  const signal = req.signal;
  const asNew = (): Promise<BoxFileJson | undefined> =>
    ctx.api.sdk(async (c) => {
      const r = await c.uploads.uploadFile(
        { attributes: { name: dest.name, parent: { id: dest.parentId }, contentModifiedAt: modified }, file: bodyOf(data) },
        signal ? { cancellationToken: signal } : {},
      );
      return r.entries?.[0] as BoxFileJson | undefined;
    });
  const asVersion = (id: string, name: string): Promise<BoxFileJson | undefined> =>
    ctx.api.sdk(async (c) => {
      const r = await c.uploads.uploadFileVersion(
        id,
        { attributes: { name, contentModifiedAt: modified }, file: bodyOf(data) },
        signal ? { cancellationToken: signal } : {},
      );
      return r.entries?.[0] as BoxFileJson | undefined;
    });

  /** A new file; a 409 whose conflict names a file makes this a new version of that file. */
  const asNewOrVersion = async (): Promise<BoxFileJson | undefined> => {
    try {
      return await asNew();
    } catch (err) {
      const clash = conflictOf(err);
      if (clash?.type !== 'file') throw err;
      ctx.log.debug({ name: dest.name, fileId: clash.id }, 'name taken meanwhile; uploading a new version');
      return asVersion(clash.id!, clash.name ?? dest.name);
    }
  };

  let file: BoxFileJson | undefined;
  const existing = dest.existing?.type === 'file' ? dest.existing : undefined;
  if (!existing) file = await asNewOrVersion();
  else {
    try {
      file = await asVersion(existing.id, existing.name);
    } catch (err) {
      if (!(err instanceof BoxHttpError && err.status === 404)) throw err;
      // The file we knew is gone from Box: upload anew (or over whatever took its name).
      await ctx.tree.forget(dest.parentId, existing.name);
      file = await asNewOrVersion();
    }
  }
  const ok = verify(ctx, file, digest, req.size);
  await ctx.tree.note(dest.parentId, { type: 'file', id: ok.id, name: ok.name ?? dest.name, size: ok.size, sha1: ok.sha1 });
  return done(ok, digest, req.size, req.size);
}

/** The body the SDK reads (and buffers once more, to replay after a 401). */
function bodyOf(data: Buffer): Readable {
  return Readable.from([data]);
}

// ---------------------------------------------------------------------------------------------
// Upload sessions

/** The handle saved in the store, parsed; null when it is not a Box handle of ours. */
export function parseHandle(text: string | null): BoxResumeHandle | null {
  if (!text) return null;
  try {
    const h = JSON.parse(text) as Partial<BoxResumeHandle>;
    if (h.v !== 1 || h.provider !== 'box' || typeof h.sessionId !== 'string' || typeof h.fileSize !== 'number') return null;
    if (typeof h.partSize !== 'number' || h.partSize <= 0 || typeof h.totalParts !== 'number') return null;
    const e = h.endpoints;
    if (!e || typeof e.uploadPart !== 'string' || typeof e.listParts !== 'string' || typeof e.commit !== 'string' || typeof e.abort !== 'string') return null;
    return h as BoxResumeHandle;
  } catch {
    return null;
  }
}

/**
 * Session URLs get the bearer token: accept only Box's own https hosts or the configured
 * endpoints' origins (a tampered store must not send the token elsewhere).
 */
function trustedUrl(ctx: UploadContext, url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  const known = [ctx.api.baseUrl, ctx.api.uploadUrl].map((b) => new URL(b).origin);
  if (known.includes(u.origin)) return true;
  return u.protocol === 'https:' && (u.hostname === 'box.com' || u.hostname.endsWith('.box.com'));
}

function handleFits(ctx: UploadContext, h: BoxResumeHandle, req: PutRequest, dest: Destination): boolean {
  if (h.fileSize !== req.size || h.totalParts !== Math.ceil(req.size / h.partSize)) return false;
  if (h.expiresAt && Date.parse(h.expiresAt) <= ctx.now() + 60_000) return false;
  if (!Object.values(h.endpoints).every((u) => trustedUrl(ctx, u))) return false;
  const existing = dest.existing?.type === 'file' ? dest.existing : undefined;
  if (h.fileId !== null) return existing?.id === h.fileId;
  return !existing && h.folderId === dest.parentId && h.fileName !== null && nameKey(h.fileName) === nameKey(dest.name);
}

async function abortSession(ctx: UploadContext, h: BoxResumeHandle | null): Promise<void> {
  if (!h || !trustedUrl(ctx, h.endpoints.abort)) return;
  try {
    await ctx.api.call({ method: 'DELETE', url: h.endpoints.abort });
  } catch (err) {
    // The session expires on its own after 7 days; nothing depends on this.
    ctx.log.debug({ sessionId: h.sessionId, err: err instanceof Error ? err.message : String(err) }, 'upload session not aborted');
  }
}

async function listParts(ctx: UploadContext, h: BoxResumeHandle, signal?: AbortSignal): Promise<Map<number, BoxPartJson>> {
  const out = new Map<number, BoxPartJson>();
  for (let page = 0; page < MAX_PART_PAGES; page++) {
    const res = await ctx.api.call<BoxPartsPage>({
      method: 'GET',
      url: h.endpoints.listParts,
      params: { offset: String(page * 1000), limit: '1000' },
      signal,
    });
    const entries = res.data.entries ?? [];
    for (const p of entries) out.set(p.offset, p);
    const total = res.data.total_count ?? out.size;
    if (entries.length === 0 || out.size >= total) break;
  }
  return out;
}

async function createSession(ctx: UploadContext, req: PutRequest, dest: Destination, versionOf: BoxEntry | undefined): Promise<BoxResumeHandle> {
  const res = versionOf
    ? await ctx.api.call<BoxUploadSessionJson>({
        method: 'POST',
        url: `${ctx.api.uploadUrl}/2.0/files/${versionOf.id}/upload_sessions`,
        json: { file_size: req.size },
        signal: req.signal,
      })
    : await ctx.api.call<BoxUploadSessionJson>({
        method: 'POST',
        url: `${ctx.api.uploadUrl}/2.0/files/upload_sessions`,
        json: { folder_id: dest.parentId, file_size: req.size, file_name: dest.name },
        signal: req.signal,
      });
  const s = res.data;
  const e = s.session_endpoints;
  if (!s.id || !(s.part_size > 0) || !e?.upload_part || !e.list_parts || !e.commit || !e.abort) {
    throw fail(ctx, 'retry', 'bad-answer', 'Box answered the upload session request without the session');
  }
  return {
    v: 1,
    provider: 'box',
    sessionId: s.id,
    fileSize: req.size,
    partSize: s.part_size,
    totalParts: s.total_parts ?? Math.ceil(req.size / s.part_size),
    expiresAt: s.session_expires_at ?? null,
    endpoints: { uploadPart: e.upload_part, listParts: e.list_parts, commit: e.commit, abort: e.abort },
    fileId: versionOf ? versionOf.id : null,
    folderId: versionOf ? null : dest.parentId,
    fileName: versionOf ? null : dest.name,
  };
}

/** The session can no longer be used: drop it, and say why (the next attempt starts a new one). */
async function dropSession(ctx: UploadContext, req: PutRequest, h: BoxResumeHandle, rule: string, detail: string, cause?: unknown): Promise<TargetError> {
  await abortSession(ctx, h);
  await req.saveResume(null);
  return fail(ctx, 'retry', rule, detail, cause === undefined ? undefined : { cause });
}

/**
 * A chunked upload through an upload session: the saved session when it still fits (its parts
 * are listed, and only the missing ones are sent), else a new one (new file, or new version of
 * the existing file), saved as the resume handle at once. The source is read from byte 0 in
 * parts of the session's `part_size`, so the whole-file SHA-1 covers every byte; a part Box
 * already holds is checked against the bytes read (a file changed since must not be committed)
 * and skipped. The commit carries the whole-file digest; a 202 is waited out (Retry-After) and
 * the same session committed again, up to `maxCommitPolls` times.
 */
export async function chunkedUpload(ctx: UploadContext, req: PutRequest, dest: Destination): Promise<PutResult | typeof RESTART> {
  const existing = dest.existing?.type === 'file' ? dest.existing : undefined;
  let handle = parseHandle(req.resume);
  let held = new Map<number, BoxPartJson>();
  if (handle && handleFits(ctx, handle, req, dest)) {
    try {
      held = await listParts(ctx, handle, req.signal);
      ctx.log.info({ sessionId: handle.sessionId, partsHeld: held.size, totalParts: handle.totalParts }, 'resuming upload session');
    } catch (err) {
      if (!(err instanceof BoxHttpError && err.status === 404)) throw err;
      // Gone: expired, aborted, or committed by the attempt that was cut. Look at the folder again.
      ctx.log.info({ sessionId: handle.sessionId }, 'upload session gone; starting again');
      await req.saveResume(null);
      ctx.tree.invalidate(dest.parentId);
      return RESTART;
    }
  } else if (req.resume !== null) {
    await abortSession(ctx, handle);
    await req.saveResume(null);
    handle = null;
  }
  if (!handle) {
    try {
      handle = await createSession(ctx, req, dest, existing);
    } catch (err) {
      const clash = conflictOf(err, 'file');
      if (!existing && clash) {
        await ctx.tree.note(dest.parentId, { type: 'file', id: clash.id!, name: clash.name ?? dest.name });
        return RESTART;
      }
      if (existing && err instanceof BoxHttpError && err.status === 404) {
        // The file we knew is gone from Box: start over as a new file (or over what took its name).
        await ctx.tree.forget(dest.parentId, existing.name);
        return RESTART;
      }
      throw err;
    }
    await req.saveResume(JSON.stringify(handle));
    ctx.log.debug({ sessionId: handle.sessionId, partSize: handle.partSize, totalParts: handle.totalParts }, 'upload session created');
  }
  const h = handle;

  // Each part is read and hashed while the one before it is sent.
  const reader = new SourceReader(req.open(0), req.signal, ctx.abortError, { size: req.size, partSize: h.partSize });
  const parts: BoxPartJson[] = [];
  let sent = 0;
  // One buffer for every part: a part's request is over before the next part is read into it.
  const partBuf = Buffer.allocUnsafe(Math.min(h.partSize, req.size));
  try {
    for (let i = 0; i < h.totalParts; i++) {
      const offset = i * h.partSize;
      const len = Math.min(h.partSize, req.size - offset);
      const buf = await reader.read(len, partBuf);
      if (buf.length < len) throw new ShortReadError(req.size, offset + buf.length);
      const d = reader.partSha1();
      const have = held.get(offset);
      if (have) {
        if (have.sha1 !== d.hex || have.size !== len) {
          throw await dropSession(ctx, req, h, 'session-stale', `part ${i + 1} held by Box differs from the file: the file changed since the upload began`);
        }
        parts.push(have);
        continue;
      }
      parts.push(await uploadPart(ctx, req, h, buf, offset, d));
      sent += len;
    }
    await reader.expectEnd(req.size);
  } catch (err) {
    // A file that changed while read will never match this session.
    if (err instanceof ShortReadError) {
      await abortSession(ctx, h);
      await req.saveResume(null);
    }
    throw err;
  } finally {
    reader.close();
  }
  const digest = reader.digest();
  const file = await commit(ctx, req, h, parts, digest);
  if (file === RESTART) return RESTART;
  const hex = digest.toString('hex');
  const ok = verify(ctx, file, hex, req.size);
  await ctx.tree.note(dest.parentId, { type: 'file', id: ok.id, name: ok.name ?? dest.name, size: ok.size, sha1: ok.sha1 });
  return done(ok, hex, req.size, sent);
}

async function uploadPart(
  ctx: UploadContext,
  req: PutRequest,
  h: BoxResumeHandle,
  buf: Buffer,
  offset: number,
  d: { hex: string; b64: string },
): Promise<BoxPartJson> {
  const range = `bytes ${offset}-${offset + buf.length - 1}/${h.fileSize}`;
  let part: BoxPartJson | undefined;
  try {
    const res = await ctx.api.call<{ part?: BoxPartJson }>({
      method: 'PUT',
      url: h.endpoints.uploadPart,
      headers: { digest: `sha=${d.b64}`, 'content-range': range },
      body: buf,
      signal: req.signal,
    });
    part = res.data.part;
  } catch (err) {
    if (!(err instanceof BoxHttpError)) throw err;
    if (err.status === 409) {
      // Already there (an earlier PUT landed but its answer was lost): use it if it is these bytes.
      const listed = (await listParts(ctx, h, req.signal)).get(offset);
      if (listed && listed.sha1 === d.hex && listed.size === buf.length) return listed;
      throw await dropSession(ctx, req, h, 'session-stale', `Box holds other bytes at ${range}`, err);
    }
    if (err.status === 416) throw await dropSession(ctx, req, h, 'session-range', `Box refused the range ${range} (${err.message}); the session is restarted`, err);
    if (err.status === 404) {
      await req.saveResume(null);
      throw fail(ctx, 'retry', 'session-gone', `the upload session expired or was removed (${err.message})`, { cause: err });
    }
    throw err;
  }
  if (!part || part.sha1 !== d.hex || part.size !== buf.length || part.offset !== offset) {
    throw await dropSession(ctx, req, h, 'hash-mismatch', `Box acknowledged ${range} with sha1 ${String(part?.sha1)}, sent ${d.hex}`);
  }
  return part;
}

async function commit(ctx: UploadContext, req: PutRequest, h: BoxResumeHandle, parts: BoxPartJson[], digest: Buffer): Promise<BoxFileJson | typeof RESTART> {
  const body = {
    parts: parts.map((p) => ({ part_id: p.part_id, offset: p.offset, size: p.size, sha1: p.sha1 })),
    attributes: { content_modified_at: mtimeAttr(req.mtimeMs) },
  };
  const headers = { digest: `sha=${digest.toString('base64')}` };
  for (let poll = 1; ; poll++) {
    if (req.signal?.aborted) throw ctx.abortError(req.signal);
    let res;
    try {
      res = await ctx.api.call<BoxFilesJson>({ method: 'POST', url: h.endpoints.commit, headers, json: body, signal: req.signal });
    } catch (err) {
      if (!(err instanceof BoxHttpError)) throw err;
      const clash = conflictOf(err, 'file');
      if (clash && h.fileId === null) {
        // The name was taken since the session began: this session can only make a new file.
        await abortSession(ctx, h);
        await req.saveResume(null);
        await ctx.tree.note(h.folderId!, { type: 'file', id: clash.id!, name: clash.name ?? h.fileName! });
        return RESTART;
      }
      if (err.status === 404) {
        await req.saveResume(null);
        throw fail(ctx, 'retry', 'session-gone', `the upload session expired or was removed before the commit (${err.message})`, { cause: err });
      }
      if (err.status === 400 && (err.boxCode === 'digest_mismatch' || err.boxCode === 'parts_mismatch')) {
        throw await dropSession(ctx, req, h, err.boxCode === 'digest_mismatch' ? 'hash-mismatch' : 'session-broken', `Box refused the commit: ${err.message}`, err);
      }
      throw err;
    }
    if (res.status !== 202) {
      await req.saveResume(null);
      return res.data.entries?.[0] as BoxFileJson;
    }
    const wait = Math.min(MAX_COMMIT_WAIT_MS, parseRetryAfter(res.headers['retry-after'], ctx.now()) ?? 1000);
    if (poll >= ctx.maxCommitPolls) {
      // The session and its parts stay; the next attempt lists them and commits again.
      throw fail(ctx, 'retry', 'commit-pending', `Box is still processing the upload after ${poll} commits`, { retryAfterMs: wait });
    }
    ctx.log.debug({ sessionId: h.sessionId, waitMs: wait, poll }, 'commit accepted (202); committing again after Retry-After');
    await ctx.sleep(wait, req.signal);
  }
}
