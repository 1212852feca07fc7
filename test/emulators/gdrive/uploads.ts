/**
 * Drive uploads on `/upload/drive/v3/files`: `uploadType=media` (bytes only), `multipart`
 * (multipart/related: JSON metadata + media, streamed to disk), `resumable` (a session URI in
 * `Location`; chunks by PUT or POST with `Content-Range`; 308 + `Range` until the last byte; a
 * status probe `bytes *\/N`; non-final chunks in multiples of 256 KiB). POST creates a file,
 * PATCH `/upload/drive/v3/files/{id}` gives an existing file new content (same id, new revision).
 */
import { randomUUID } from 'node:crypto';
import { Transform, pipeline } from 'node:stream';
import type { BlobInfo, EmulatorRequest, Hasher } from '../harness/index.js';
import { SessionFile, hex, parseContentRange, readBody, sendEmpty, sendJson } from '../harness/index.js';
import { DriveHttpError, badRequest, notFound } from './errors.js';
import { DEFAULT_FILE_MASK, FILE_SCHEMA, type FieldMask } from './fields.js';
import { getFile } from './files.js';
import type { DriveFile, StoredContent } from './model.js';
import { MultipartError, boundaryOf, readRelated } from './multipart.js';
import {
  applyUpdate,
  checkStorageFinal,
  checkUploadStart,
  commitCreate,
  drain,
  finishContent,
  maskFor,
  parseMetadata,
  prepareCreate,
  recordUpload,
  render,
  type DriveState,
  type PreparedCreate,
} from './context.js';

/** Non-final chunks must be multiples of this (256 KiB). */
export const CHUNK_GRANULARITY = 256 * 1024;

export interface UploadSession {
  id: string;
  /** Set for an update (PATCH) session. */
  fileId: string | null;
  create: PreparedCreate | null;
  patch: Record<string, unknown>;
  patchUrl: URL;
  mimeType: string;
  total: number | null;
  received: number;
  /** The bytes received so far, md5-hashed as they come (made at the first chunk). */
  content: SessionFile<{ md5: () => Hasher }> | null;
  mask: FieldMask;
  expiresAt: number;
  /** The file the finished session made or updated. */
  doneFileId: string | null;
  lock: Promise<void>;
}

/** Streams the request body to a new blob. */
async function storeBody(s: DriveState, r: EmulatorRequest): Promise<{ blob: BlobInfo; read: number }> {
  let seen = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      cb(null, chunk);
    },
  });
  pipeline(r.req, t, () => undefined);
  try {
    const blob = await s.blobs.write(t);
    return { blob, read: seen };
  } finally {
    r.countBody(seen);
  }
}

/** Puts stored content into a new file or over an existing one, after the quota check. */
async function place(
  s: DriveState,
  content: StoredContent,
  target: { fileId: string; patch: Record<string, unknown>; url: URL } | { create: PreparedCreate; mime: string },
): Promise<DriveFile> {
  try {
    if ('fileId' in target) {
      const f = getFile(s, target.fileId);
      checkStorageFinal(s, content.size, f.size);
      applyUpdate(s, f, target.patch, target.url);
      const old = s.model.setContent(f, content);
      if (old) await s.blobs.remove(old);
      return f;
    }
    checkStorageFinal(s, content.size, 0);
    return commitCreate(s, target.create, content, target.mime);
  } catch (e) {
    await s.blobs.remove(content.blob);
    throw e;
  }
}

function declaredLength(r: EmulatorRequest, header: string): number | null {
  const v = r.req.headers[header];
  if (v === undefined) return null;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new DriveHttpError(badRequest(`Invalid ${header} header.`));
  return n;
}

/** POST /upload/drive/v3/files or PATCH /upload/drive/v3/files/{id}, by `uploadType`. */
export async function handleUpload(s: DriveState, sessions: Map<string, UploadSession>, r: EmulatorRequest, fileId: string | null): Promise<void> {
  const type = r.url.searchParams.get('uploadType');
  const mask = maskFor(r.url, FILE_SCHEMA, DEFAULT_FILE_MASK);
  if (fileId !== null) getFile(s, fileId);
  if (type === 'media') return uploadMedia(s, r, fileId, mask);
  if (type === 'multipart') return uploadMultipart(s, r, fileId, mask);
  if (type === 'resumable') return startResumable(s, sessions, r, fileId, mask);
  throw new DriveHttpError({
    code: 400,
    reason: 'badRequest',
    message: type === null ? 'Upload requests must include an uploadType URL parameter and a URL path beginning with /upload/' : `Invalid uploadType: ${type}`,
    location: 'uploadType',
    locationType: 'parameter',
  });
}

async function uploadMedia(s: DriveState, r: EmulatorRequest, fileId: string | null, mask: FieldMask): Promise<void> {
  checkUploadStart(s, declaredLength(r, 'content-length'));
  const create = fileId === null ? prepareCreate(s, {}) : null;
  const mime = (r.req.headers['content-type'] ?? 'application/octet-stream').split(';')[0]!.trim();
  const { blob } = await storeBody(s, r);
  recordUpload(s, blob.size);
  const content = await finishContent(s, blob);
  const f = await place(s, content, fileId !== null ? { fileId, patch: {}, url: r.url } : { create: create!, mime });
  sendJson(r, 200, render(s, f, mask));
}

async function uploadMultipart(s: DriveState, r: EmulatorRequest, fileId: string | null, mask: FieldMask): Promise<void> {
  const boundary = boundaryOf(r.req.headers['content-type']);
  if (!boundary) throw new DriveHttpError(badRequest("Bad content type. Please use multipart."));
  checkUploadStart(s, null);
  let seen = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    // Leave the request open when parsing stops early, so the error can still be answered.
    for await (const c of r.req.iterator({ destroyOnReturn: false })) {
      seen += (c as Buffer).length;
      yield c as Buffer;
    }
  }
  let prepared: PreparedCreate | null = null;
  let patch: Record<string, unknown> = {};
  let parts;
  try {
    parts = await readRelated(counted(), boundary, async (media, _type, metadata) => {
      try {
        // Validate the metadata before taking the media, so a bad request stores nothing.
        const body = parseMetadata(metadata);
        if (fileId === null) prepared = prepareCreate(s, body);
        else patch = body;
      } catch (e) {
        media.resume();
        throw e;
      }
      return s.blobs.write(media);
    });
  } catch (e) {
    if (e instanceof MultipartError) throw new DriveHttpError(badRequest(`Malformed multipart body: ${e.message}.`));
    throw e;
  } finally {
    r.countBody(seen);
  }
  recordUpload(s, parts.media.size);
  const content = await finishContent(s, parts.media);
  const mime = parts.mediaType.split(';')[0]!.trim() || 'application/octet-stream';
  const f = await place(s, content, fileId !== null ? { fileId, patch, url: r.url } : { create: prepared!, mime });
  sendJson(r, 200, render(s, f, mask));
}

function sessionOrigin(r: EmulatorRequest): string {
  const host = r.req.headers.host ?? '127.0.0.1';
  // A client sent here through a proxy or rewrite keeps talking to the public name over https.
  const loopback = /^(127\.|localhost|\[::1\])/.test(host);
  return `${loopback ? 'http' : 'https'}://${host}`;
}

async function startResumable(
  s: DriveState,
  sessions: Map<string, UploadSession>,
  r: EmulatorRequest,
  fileId: string | null,
  mask: FieldMask,
): Promise<void> {
  const body = parseMetadata(await readBody(r, 1 << 20));
  const create = fileId === null ? prepareCreate(s, body) : null;
  const total = declaredLength(r, 'x-upload-content-length');
  checkUploadStart(s, total);
  const headerMime = r.req.headers['x-upload-content-type'];
  const id = `ABdj${randomUUID().replace(/-/g, '')}`;
  const session: UploadSession = {
    id,
    fileId,
    create,
    patch: fileId === null ? {} : body,
    patchUrl: new URL(r.url.href),
    mimeType: (typeof headerMime === 'string' && headerMime) || 'application/octet-stream',
    total,
    received: 0,
    content: null,
    mask,
    expiresAt: Date.now() + s.sessionTtlMs,
    doneFileId: null,
    lock: Promise.resolve(),
  };
  sessions.set(id, session);
  const path = fileId === null ? '/upload/drive/v3/files' : `/upload/drive/v3/files/${encodeURIComponent(fileId)}`;
  sendEmpty(r, 200, {
    location: `${sessionOrigin(r)}${path}?uploadType=resumable&upload_id=${id}`,
    'x-guploader-uploadid': id,
  });
}

function rangeHeader(received: number): Record<string, string> {
  // Google sends no Range at all while nothing has been stored.
  return received > 0 ? { range: `bytes=0-${received - 1}` } : {};
}

function incomplete(r: EmulatorRequest, session: UploadSession): void {
  sendEmpty(r, 308, { ...rangeHeader(session.received), 'x-guploader-uploadid': session.id });
}

async function finish(s: DriveState, r: EmulatorRequest, session: UploadSession): Promise<void> {
  const file = session.content ?? (await SessionFile.create(s.blobs, { md5: hex('md5') }));
  session.content = null;
  const { blob, hashes } = await file.seal(session.received);
  const content = await finishContent(s, blob, hashes.md5);
  try {
    const f = await place(
      s,
      content,
      session.fileId !== null
        ? { fileId: session.fileId, patch: session.patch, url: session.patchUrl }
        : { create: session.create!, mime: session.mimeType },
    );
    session.doneFileId = f.id;
    const mask = r.url.searchParams.get('fields') ? maskFor(r.url, FILE_SCHEMA, DEFAULT_FILE_MASK) : session.mask;
    sendJson(r, 200, render(s, f, mask));
  } catch (e) {
    // The bytes are gone with the refused commit; the session cannot be resumed.
    session.received = 0;
    session.total = null;
    throw e;
  }
}

/**
 * Streams a chunk's body into the session's file at `received`, dropping the first `skip` bytes
 * (already stored). What a chunk cut short or refused wrote is not counted in `received`: the
 * next chunk is written over it, or the seal cuts it off.
 */
async function storeChunk(s: DriveState, r: EmulatorRequest, session: UploadSession, skip = 0): Promise<{ read: number; written: number }> {
  session.content ??= await SessionFile.create(s.blobs, { md5: hex('md5') });
  const file = session.content;
  let read = 0;
  try {
    const got = await file.writeAt(r.req, session.received, { skip });
    read = got.read;
    return got;
  } finally {
    r.countBody(read);
  }
}

/** A request on a session URI (`upload_id=`): a chunk, the whole body, or a status probe. */
export async function handleSessionRequest(s: DriveState, sessions: Map<string, UploadSession>, r: EmulatorRequest): Promise<void> {
  const id = r.url.searchParams.get('upload_id') ?? '';
  const session = sessions.get(id);
  if (!session || session.expiresAt <= Date.now()) {
    if (session) {
      sessions.delete(id);
      await session.content?.remove();
    }
    throw new DriveHttpError({ code: 404, reason: 'notFound', message: 'Upload session not found or expired.' });
  }
  if (r.method !== 'PUT' && r.method !== 'POST') throw new DriveHttpError(badRequest(`Method ${r.method} is not allowed on an upload session.`));
  // One request at a time per session: a probe after a cut waits until the cut chunk is settled.
  const prev = session.lock;
  let release!: () => void;
  session.lock = new Promise<void>((res) => (release = res));
  await prev;
  try {
    await onSessionRequest(s, r, session);
  } finally {
    release();
  }
}

async function onSessionRequest(s: DriveState, r: EmulatorRequest, session: UploadSession): Promise<void> {
  const rawRange = r.req.headers['content-range'];
  const cr = rawRange === undefined ? null : parseContentRange(rawRange);
  if (rawRange !== undefined && !cr) throw new DriveHttpError(badRequest('Failed to parse Content-Range header.'));

  if (session.doneFileId !== null) {
    await drain(r);
    const f = s.model.get(session.doneFileId);
    if (!f) throw new DriveHttpError(notFound(session.doneFileId));
    sendJson(r, 200, render(s, f, session.mask));
    return;
  }

  if (cr && cr.total !== null && session.total !== null && cr.total !== session.total) {
    throw new DriveHttpError(badRequest(`Content-Range total ${cr.total} differs from the upload's size ${session.total}.`));
  }

  if (!cr) {
    // The whole body in one request (no Content-Range): only valid from byte 0.
    if (session.received > 0) throw new DriveHttpError(badRequest('Content-Range is required to continue an upload.'));
    const { written } = await storeChunk(s, r, session);
    if (session.total !== null && written !== session.total) {
      throw new DriveHttpError(badRequest(`Received ${written} bytes, expected ${session.total}.`));
    }
    recordUpload(s, written);
    session.received = written;
    session.total = written;
    await finish(s, r, session);
    return;
  }

  if (cr.total !== null) session.total = cr.total;

  if (cr.start === null) {
    // Status probe: `bytes */N` or `bytes */*`, empty body.
    await drain(r);
    if (session.total !== null && session.received === session.total) return finish(s, r, session);
    incomplete(r, session);
    return;
  }

  const start = cr.start;
  const end = cr.end!;
  if (end < start || (cr.total !== null && end >= cr.total)) {
    throw new DriveHttpError(badRequest(`Invalid Content-Range: ${rawRange}.`));
  }
  const length = end - start + 1;
  const contentLength = declaredLength(r, 'content-length');
  if (contentLength !== null && contentLength !== length) {
    throw new DriveHttpError(badRequest(`Content-Length ${contentLength} does not match Content-Range ${rawRange}.`));
  }
  const isLast = cr.total !== null && end === cr.total - 1;
  if (!isLast && length % CHUNK_GRANULARITY !== 0) {
    throw new DriveHttpError(badRequest(`Invalid request. The chunk size must be a multiple of 262144 bytes, except for the last chunk; got ${length}.`));
  }
  if (start > session.received || end < session.received) {
    // A gap (or nothing new): Google keeps what it has and says how far it got.
    await drain(r);
    if (session.total !== null && session.received === session.total) return finish(s, r, session);
    incomplete(r, session);
    return;
  }
  // Bytes already stored are skipped, so a chunk resent after a cut is accepted.
  const overlap = session.received - start;
  const { read, written } = await storeChunk(s, r, session, overlap);
  if (read !== length) {
    throw new DriveHttpError(badRequest(`Received ${read} bytes, Content-Range announced ${length}.`));
  }
  let kept = written;
  if (s.shortenNext !== null && written > 0) {
    // Google's upload servers may persist fewer bytes than a chunk carried; the Range says so.
    kept = Math.min(written, Math.floor(s.shortenNext / CHUNK_GRANULARITY) * CHUNK_GRANULARITY);
    s.shortenNext = null;
  }
  recordUpload(s, kept);
  session.received += kept;
  if (session.total !== null && session.received === session.total) return finish(s, r, session);
  incomplete(r, session);
}
