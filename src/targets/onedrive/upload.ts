/**
 * Uploads of the OneDrive target, both verified the same way: the bytes read equal `size`, and
 * the stored item's `size` and `file.hashes.quickXorHash` equal the count and the QuickXorHash of
 * the bytes read (the whole file, also when a resumed upload sent only its tail).
 *
 * - Simple: files up to 4 MiB are read into one Buffer (Graph's simple upload takes no more, and a
 *   Buffer can be replayed after a 401) and sent with `PUT …:/name:/content` and
 *   `@microsoft.graph.conflictBehavior=replace` — so a changed file replaces the same item. A
 *   simple upload carries no metadata, so a `PATCH` of the item's `fileSystemInfo` follows to
 *   keep the file's modification time, and its creation time where the source has one
 *   (driveItem: update).
 * - Upload session: `createUploadSession` (item conflictBehavior `replace` and `fileSystemInfo`
 *   with the modification and creation times), then sequential
 *   fragments of `fragmentSize` bytes (10 × 320 KiB by default: fragments other than the last
 *   must be multiples of 320 KiB, each under 60 MiB) PUT to the pre-authenticated `uploadUrl`
 *   with `Content-Range` and no Authorization, read in turn from the source, the next one read
 *   and hashed while one is sent: memory is bounded by two fragments. 202 answers carry
 *   `nextExpectedRanges`; the last fragment answers 201 (new) or 200 (replaced) with the item.
 * - Resume: the session's `uploadUrl` is saved with `req.saveResume` as soon as the session
 *   exists. A later attempt asks the URL for its status (`GET`), reads and hashes the bytes the
 *   service already holds from the source without sending them, and sends the rest. A session
 *   gone (404) or made for another size or destination starts over. A 416 (a range sent twice,
 *   e.g. after a lost answer) is settled by asking the status and continuing from there. The
 *   handle is cleared when the upload completes, when the source changed, and when the hash
 *   check fails.
 */
import type { Readable } from 'node:stream';
import { addAbortSignal } from 'node:stream';
import type { Logger } from 'pino';
import { ShortReadError, TargetError } from '../../errors.js';
import { CountingHashStream, hashBuffer, verifySize } from '../../archive/hash.js';
import { parseRetryAfter } from '../../retry/delay.js';
import type { PutRequest, PutResult } from '../target.js';
import type { DriveItemJson, GraphErrorBody, ResumeHandle, UploadSessionJson } from './api-types.js';
import { SourceError } from '../kit/classify.js';
import { OneDriveHttpError } from './classify.js';
import { childPath, itemPath } from './folders.js';
import { abortError } from '../kit/abort.js';
import type { GraphApi } from './transport.js';
import { parseJson, readBody, sendHttp, type UrlRewrite } from './transport.js';
import { nameKey } from './names.js';
import { readSmallSync } from '../kit/chunks.js';
import { ReadAhead } from '../kit/read-ahead.js';

/** What the uploads need from the target. */
export interface UploadContext {
  api: GraphApi;
  targetId: string;
  log: Logger;
  /** Bytes per session fragment (a multiple of 320 KiB, under 60 MiB). */
  fragmentSize: number;
  /** Idle timeout of fragment requests, ms (0: none). */
  timeoutMs: number;
  rewrite: UrlRewrite | undefined;
}

/** Where a file goes: its parent folder's id and its (mapped) name. */
export interface Destination {
  parentId: string;
  name: string;
}

/**
 * The source of one attempt, read in exact pieces. Every byte pulled is counted and hashed
 * (QuickXorHash) in order, so the digest covers the whole file whatever was sent; with `ahead`,
 * as it is read ahead of the fragment being sent. More bytes than `size` fail with
 * ShortReadError once the pieces before them are taken; fewer when the source ends. Errors of
 * the source come as SourceError, a fired signal as the AbortError.
 */
export class SourceReader {
  private readonly ahead: ReadAhead;
  private readonly counter: CountingHashStream;
  private pending: Buffer | null = null;
  private ended = false;

  /** `ahead`: bytes read, counted and hashed before they are asked for (ReadAhead; 0: none). */
  constructor(
    private readonly req: PutRequest,
    private readonly targetId: string,
    ahead = 0,
  ) {
    let src: Readable;
    try {
      src = req.open(0);
    } catch (err) {
      throw new SourceError(err);
    }
    const signal = req.signal;
    if (signal) addAbortSignal(signal, src);
    const counter = new CountingHashStream(['quickxor'], { maxBytes: req.size });
    this.counter = counter;
    this.ahead = new ReadAhead(src, {
      limit: ahead,
      onChunk: (chunk) => counter.feed(chunk),
      sourceError: (err) => (signal?.aborted ? abortError(targetId, signal) : new SourceError(err)),
    });
  }

  /** Bytes pulled from the source so far. */
  get bytes(): number {
    return this.counter.bytes;
  }

  private async next(): Promise<Buffer | null> {
    if (this.pending) {
      const p = this.pending;
      this.pending = null;
      return p;
    }
    if (this.ended) return null;
    if (this.req.signal?.aborted) throw abortError(this.targetId, this.req.signal);
    const c = await this.ahead.next();
    if (c === null) this.ended = true;
    return c;
  }

  /** Exactly `n` bytes (into `into` when given, which must hold them). */
  async read(n: number, into?: Buffer): Promise<Buffer> {
    const buf = into ? into.subarray(0, n) : Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = await this.next();
      if (!c) throw new ShortReadError(this.req.size, this.counter.bytes);
      const take = Math.min(c.length, n - off);
      c.copy(buf, off, 0, take);
      off += take;
      if (take < c.length) this.pending = c.subarray(take);
    }
    return buf;
  }

  /** Reads and hashes `n` bytes without keeping them (the part a resumed session already holds). */
  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      const c = await this.next();
      if (!c) throw new ShortReadError(this.req.size, this.counter.bytes);
      if (c.length > left) this.pending = c.subarray(left);
      left -= Math.min(left, c.length);
    }
  }

  /** Checks that the source holds nothing more, and that it held exactly `size` bytes. */
  async end(): Promise<void> {
    const more = await this.next();
    if (more && more.length > 0) throw new ShortReadError(this.req.size, this.counter.bytes);
    verifySize(this.req.size, this.counter.bytes);
  }

  /** The QuickXorHash (base64) of every byte read. Call once, after `end()`. */
  digest(): string {
    return this.counter.digest('quickxor');
  }

  close(): void {
    this.ahead.close();
  }
}

/** Reads the whole (small) source: its bytes and their QuickXorHash. */
export async function readWhole(req: PutRequest, targetId: string): Promise<{ bytes: Buffer; hash: string }> {
  // A small source offers synchronous reads through its checked descriptor: no stream, no
  // thread-pool round trips.
  const small = readSmallSync(req);
  if (small) return { bytes: small, hash: hashBuffer('quickxor', small) };
  const reader = new SourceReader(req, targetId);
  try {
    const bytes = await reader.read(req.size);
    await reader.end();
    return { bytes, hash: reader.digest() };
  } finally {
    reader.close();
  }
}

/** The QuickXorHash of the whole source, read as a stream (memory bounded by its chunks). */
export async function hashSource(req: PutRequest, targetId: string): Promise<string> {
  const reader = new SourceReader(req, targetId);
  try {
    await reader.skip(req.size);
    await reader.end();
    return reader.digest();
  } finally {
    reader.close();
  }
}

/** The QuickXorHash Graph reports for `item`, if any. */
export function remoteHash(item: DriveItemJson): string | undefined {
  const h = item.file?.hashes?.quickXorHash;
  return typeof h === 'string' && h !== '' ? h : undefined;
}

/**
 * Checks the stored item against what was read: size and QuickXorHash. A mismatch throws
 * TargetError `retry` (`size-mismatch`, `hash-mismatch`, or `hash-missing` when Graph reports
 * no hash for a non-empty file). An empty file may come without a hash.
 */
export function verifyItem(targetId: string, item: DriveItemJson, size: number, hash: string, what: string): void {
  const fail = (rule: string, detail: string): TargetError => new TargetError(targetId, 'retry', `${rule}: ${detail}`, { code: `onedrive.${rule}` });
  if (item.size !== size) throw fail('size-mismatch', `OneDrive stored ${String(item.size)} bytes of ${what}, ${size} were sent`);
  const stored = remoteHash(item);
  if (stored === undefined) {
    if (size === 0) return;
    throw fail('hash-missing', `OneDrive reported no quickXorHash for ${what}`);
  }
  if (stored !== hash) throw fail('hash-mismatch', `OneDrive's quickXorHash of ${what} is ${stored}, the bytes sent hash to ${hash}`);
}

/**
 * Simple upload of bytes already read (≤ 4 MiB): `PUT …:/name:/content?@microsoft.graph.conflictBehavior=replace`,
 * then the check. Replayed once after a 401 (the body is a Buffer).
 */
export async function simpleUpload(ctx: UploadContext, req: PutRequest, dest: Destination, bytes: Buffer, hash: string): Promise<PutResult> {
  const item = await ctx.api.putBytes<DriveItemJson>(`${childPath(ctx.api.drive, dest.parentId, dest.name)}/content`, bytes, {
    query: { '@microsoft.graph.conflictBehavior': 'replace' },
    signal: req.signal,
  });
  verifyItem(ctx.targetId, item, req.size, hash, JSON.stringify(req.remotePath));
  // The upload time would show otherwise: the simple upload cannot carry fileSystemInfo.
  await ctx.api.patch<DriveItemJson>(itemPath(ctx.api.drive, item.id), { fileSystemInfo: fileSystemInfo(req) }, { signal: req.signal });
  return { remoteId: item.id, size: req.size, hash, hashKind: 'quickxor', unchanged: false, bytesSent: bytes.length };
}

/**
 * The file's own times as Graph's fileSystemInfo facet: the modification time, and the creation
 * time when the source has one (without it OneDrive keeps the upload time as createdDateTime).
 */
function fileSystemInfo(req: PutRequest): { lastModifiedDateTime: string; createdDateTime?: string } {
  const times: { lastModifiedDateTime: string; createdDateTime?: string } = { lastModifiedDateTime: new Date(req.mtimeMs).toISOString() };
  if (req.birthtimeMs !== undefined) times.createdDateTime = new Date(req.birthtimeMs).toISOString();
  return times;
}

/** Parses a saved resume handle; null when absent or unreadable (an unreadable one starts over). */
export function parseHandle(text: string | null): ResumeHandle | null {
  if (!text) return null;
  try {
    const h = JSON.parse(text) as Partial<ResumeHandle>;
    if (h.v !== 1 || typeof h.uploadUrl !== 'string' || typeof h.size !== 'number' || typeof h.dest !== 'string') return null;
    new URL(h.uploadUrl);
    return h as ResumeHandle;
  } catch {
    return null;
  }
}

/** The first byte the service still needs, from `nextExpectedRanges` (`["N-"]` or `["N-M"]`); null when it needs none. */
export function nextOffset(ranges: readonly string[] | undefined): number | null {
  const first = ranges?.[0];
  if (first === undefined) return null;
  const m = /^(\d+)-/.exec(first.trim());
  return m ? Number(m[1]) : null;
}

function errorFromAnswer(status: number, body: unknown, headers: Record<string, string | string[] | undefined>, fallback: string): OneDriveHttpError {
  const e = (body as Partial<GraphErrorBody> | undefined)?.error;
  const header = (k: string): string | undefined => {
    const v = headers[k];
    return Array.isArray(v) ? v[0] : v;
  };
  const inner = e?.innerError?.code ?? e?.innererror?.code;
  return new OneDriveHttpError({
    status,
    graphCode: typeof e?.code === 'string' ? e.code : undefined,
    innerCode: typeof inner === 'string' ? inner : undefined,
    message: typeof e?.message === 'string' && e.message !== '' ? e.message : fallback,
    retryAfterMs: parseRetryAfter(header('retry-after')),
    requestId: header('request-id'),
  });
}

type Answer = { status: number; body: unknown; headers: Record<string, string | string[] | undefined> };

/** One request to the pre-authenticated upload URL: no Authorization, whatever the method. */
async function toUploadUrl(ctx: UploadContext, url: string, method: string, body: Buffer | null, headers: Record<string, string>, signal?: AbortSignal): Promise<Answer> {
  try {
    const res = await sendHttp(new URL(url), { method, headers, body, signal, rewrite: ctx.rewrite, timeoutMs: ctx.timeoutMs });
    const raw = await readBody(res);
    return { status: res.statusCode ?? 0, body: parseJson(raw), headers: res.headers };
  } catch (err) {
    if (signal?.aborted) throw abortError(ctx.targetId, signal);
    throw err;
  }
}

/** The status of a session: null when it is gone (404). */
async function sessionStatus(ctx: UploadContext, url: string, signal?: AbortSignal): Promise<UploadSessionJson | null> {
  const a = await toUploadUrl(ctx, url, 'GET', null, {}, signal);
  if (a.status === 404) return null;
  if (a.status !== 200) throw errorFromAnswer(a.status, a.body, a.headers, 'the upload session status could not be read');
  return (a.body ?? {}) as UploadSessionJson;
}

/** Cancels a session (best effort: it expires by itself anyway). */
async function cancelSession(ctx: UploadContext, url: string): Promise<void> {
  try {
    await toUploadUrl(ctx, url, 'DELETE', null, {});
  } catch (err) {
    ctx.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'upload session not cancelled');
  }
}

async function createSession(ctx: UploadContext, req: PutRequest, dest: Destination): Promise<string> {
  const answer = await ctx.api.post<UploadSessionJson>(
    `${childPath(ctx.api.drive, dest.parentId, dest.name)}/createUploadSession`,
    { item: { '@microsoft.graph.conflictBehavior': 'replace', fileSize: req.size, fileSystemInfo: fileSystemInfo(req) } },
    { signal: req.signal },
  );
  const url = answer.uploadUrl;
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) {
    throw new TargetError(ctx.targetId, 'retry', 'bad-session: createUploadSession answered without an upload URL', { code: 'onedrive.bad-session' });
  }
  return url;
}

/** Forgets a saved session (the file is already there): cancels it on the service, clears the handle. */
export async function dropSavedSession(ctx: UploadContext, req: PutRequest): Promise<void> {
  const saved = parseHandle(req.resume);
  if (saved) await cancelSession(ctx, saved.uploadUrl);
  if (req.resume !== null) await req.saveResume(null);
}

/** `<parent id>/<name key>`: the destination a saved session belongs to. */
export function destKey(dest: Destination): string {
  return `${dest.parentId}/${nameKey(dest.name)}`;
}

/**
 * Upload session, new or resumed from `req.resume` (see the module comment). Resolves with the
 * verified result; `bytesSent` counts only the bytes sent in this call.
 */
export async function sessionUpload(ctx: UploadContext, req: PutRequest, dest: Destination): Promise<PutResult> {
  const { targetId, log } = ctx;
  const key = destKey(dest);
  let url: string | null = null;
  let offset = 0;
  const saved = parseHandle(req.resume);
  if (req.resume !== null && !saved) await req.saveResume(null);
  if (saved && (saved.size !== req.size || saved.dest !== key)) {
    log.debug({ path: req.remotePath }, 'saved upload session is for another size or place; starting over');
    await cancelSession(ctx, saved.uploadUrl);
    await req.saveResume(null);
  } else if (saved) {
    const status = await sessionStatus(ctx, saved.uploadUrl, req.signal);
    const next = status ? nextOffset(status.nextExpectedRanges) : null;
    // A session holding every byte but not committed (the service's matter) is not resumed.
    if (status && next !== null && next < req.size) {
      url = saved.uploadUrl;
      offset = next;
      log.debug({ path: req.remotePath, offset, size: req.size }, 'resuming the upload session');
    } else {
      log.debug({ path: req.remotePath, gone: status === null }, 'saved upload session cannot be resumed; starting over');
      if (status) await cancelSession(ctx, saved.uploadUrl);
      await req.saveResume(null);
    }
  }
  if (url === null) {
    url = await createSession(ctx, req, dest);
    const handle: ResumeHandle = { v: 1, uploadUrl: url, size: req.size, dest: key };
    await req.saveResume(JSON.stringify(handle));
    log.debug({ path: req.remotePath, size: req.size }, 'upload session created');
  }

  // The next fragment is read and hashed while one is sent: one fragment ahead at most.
  const reader = new SourceReader(req, targetId, ctx.fragmentSize);
  const what = JSON.stringify(req.remotePath);
  let sent = 0;
  try {
    await reader.skip(offset);
    const frag = Buffer.allocUnsafe(Math.min(ctx.fragmentSize, req.size - offset));
    let pos = offset;
    let item: DriveItemJson | null = null;
    while (item === null) {
      const len = Math.min(ctx.fragmentSize, req.size - pos);
      const buf = await reader.read(len, frag);
      // The last fragment commits the file: the source must be whole before it goes.
      if (pos + len === req.size) await reader.end();
      const start = pos;
      let from = pos;
      // One fragment, sent again only from where the service says it stands (416 / short 202).
      for (let round = 0; ; round++) {
        const part = buf.subarray(from - start);
        const a = await toUploadUrl(
          ctx,
          url,
          'PUT',
          part,
          { 'content-length': String(part.length), 'content-range': `bytes ${from}-${from + part.length - 1}/${req.size}` },
          req.signal,
        );
        if (a.status === 200 || a.status === 201) {
          sent += part.length;
          item = (a.body ?? {}) as DriveItemJson;
          break;
        }
        let next: number | null;
        if (a.status === 202) {
          sent += part.length;
          next = nextOffset((a.body as UploadSessionJson | undefined)?.nextExpectedRanges);
        } else if (a.status === 416) {
          const status = await sessionStatus(ctx, url, req.signal);
          if (!status) throw sessionGone(targetId);
          next = nextOffset(status.nextExpectedRanges);
        } else if (a.status === 404) {
          throw sessionGone(targetId);
        } else {
          throw errorFromAnswer(a.status, a.body, a.headers, `an upload fragment was refused (${a.status})`);
        }
        const end = start + len;
        if (next === end) break;
        if (next === null || next < start || next > end || round >= 2) {
          // The service and this attempt disagree: the next attempt asks the service afresh.
          throw new TargetError(targetId, 'retry', `session-out-of-step: the upload session expects byte ${String(next)}, this fragment is ${start}-${end - 1}`, {
            code: 'onedrive.session-out-of-step',
          });
        }
        from = next;
      }
      pos += len;
    }
    const hash = reader.digest();
    try {
      verifyItem(targetId, item, req.size, hash, what);
    } finally {
      // The session is spent either way: a failed check starts the next attempt over.
      await req.saveResume(null);
    }
    return { remoteId: item.id, size: req.size, hash, hashKind: 'quickxor', unchanged: false, bytesSent: sent };
  } catch (err) {
    if (err instanceof ShortReadError || (err instanceof SourceError && err.cause instanceof ShortReadError)) {
      // The file changed: what the session holds is of no use.
      await cancelSession(ctx, url);
      await req.saveResume(null);
    } else if (err instanceof OneDriveHttpError && err.status === 409) {
      // A folder took the name: nothing will commit into this session.
      await cancelSession(ctx, url);
      await req.saveResume(null);
    } else if (err instanceof TargetError && err.code === 'onedrive.session-expired') {
      await req.saveResume(null);
    }
    throw err;
  } finally {
    reader.close();
  }
}

function sessionGone(targetId: string): TargetError {
  return new TargetError(targetId, 'retry', 'session-expired: the upload session is gone; the next attempt starts a new one', {
    code: 'onedrive.session-expired',
  });
}
