/**
 * Routes of upload.box.com (`/api/2.0/...`): direct multipart uploads (new file, new version)
 * and chunked upload sessions (create, part PUT with `Digest` and `Content-Range`, list parts,
 * status, commit with the whole-file digest, abort).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { BlobInfo, EmulatorRequest } from '../harness/index.js';
import { SessionFile, hex, parseContentRange, sendEmpty, sendJson } from '../harness/index.js';
import { checkNewContent } from './api.js';
import type { BoxContext, UploadSessionState, UploadedPart } from './context.js';
import { authorize, fieldsParam, hexId, jsonBody, publicBase } from './context.js';
import { sendBoxError, sendNotFound } from './errors.js';
import type { FileNode, FileVersion } from './model.js';
import { boxDate, parseBoxDate } from './model.js';
import { boundaryOf, IN_MEMORY_MAX, parseMultipart, readPartText } from './multipart.js';

type Route = [method: string, path: RegExp, handler: (ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray) => Promise<void>];

const SESSION_TTL_MS = 7 * 24 * 3600 * 1000;

async function sha1Of(ctx: BoxContext, blob: BlobInfo): Promise<{ hex: string; b64: string }> {
  const { sha1 } = await ctx.blobs.hash(blob, { sha1: hex('sha1') });
  return hexAndB64(sha1);
}

function hexAndB64(sha1: string): { hex: string; b64: string } {
  return { hex: sha1, b64: Buffer.from(sha1, 'hex').toString('base64') };
}

function newVersion(ctx: BoxContext, blob: BlobInfo, sha1: string): FileVersion {
  return { id: ctx.model.newId(), blob, sha1, size: blob.size, createdAt: boxDate() };
}

/** `Digest: sha=<base64>` → the base64 value, or null. */
function digestHeader(r: EmulatorRequest): string | null {
  const h = r.req.headers.digest;
  const m = typeof h === 'string' ? /^sha=(\S+)$/i.exec(h.trim()) : null;
  return m ? m[1]! : null;
}

// ---------------------------------------------------------------------------------------------
// Direct upload

interface Attributes {
  name?: unknown;
  parent?: { id?: unknown };
  content_created_at?: unknown;
  content_modified_at?: unknown;
}

/**
 * `POST /files/content` (m[1] undefined) and `POST /files/:id/content` (new version). A body of
 * up to IN_MEMORY_MAX is held in memory, a larger one goes to disk first; `attributes` must precede `file`; `content-md5`, when sent, is the hex
 * SHA-1 of the content (Box's naming) and a mismatch is 400 `bad_digest`.
 */
async function directUpload(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const fileId = m[1];
  const boundary = boundaryOf(r.req.headers['content-type']);
  if (!boundary) {
    r.req.resume();
    return sendBoxError(r, 400, 'bad_request', 'Expected a multipart/form-data body');
  }
  // A small body is parsed in memory; a larger one from the blob it is written to.
  const raw = await ctx.blobs.hold(r.req, IN_MEMORY_MAX);
  const rawSize = Buffer.isBuffer(raw) ? raw.length : raw.size;
  const body = Buffer.isBuffer(raw) ? raw : raw.file;
  r.countBody(rawSize);
  let content: BlobInfo | null = null;
  /** The content's SHA-1 when it was held in memory. */
  let heldSha1: string | null = null;
  try {
    let parts;
    try {
      parts = await parseMultipart(body, rawSize, boundary);
    } catch (e) {
      return sendBoxError(r, 400, 'bad_request', `Malformed multipart body: ${(e as Error).message}`);
    }
    const ai = parts.findIndex((p) => p.name === 'attributes');
    // The content is the part named `file` or, as Box takes it, the first other part that
    // carries a filename, whatever its name (another client sends `contents`).
    let fi = parts.findIndex((p) => p.name === 'file');
    if (fi < 0) fi = parts.findIndex((p) => p.name !== 'attributes' && p.filename !== null);
    if (fi < 0) return sendBoxError(r, 400, 'bad_request', "The 'file' part is missing");
    if (ai > fi) return sendBoxError(r, 400, 'metadata_after_file_contents');
    if (ai < 0 && !fileId) return sendBoxError(r, 400, 'bad_request', "The 'attributes' part is missing");
    let attrs: Attributes = {};
    if (ai >= 0) {
      try {
        attrs = JSON.parse(await readPartText(body, parts[ai]!, rawSize)) as Attributes;
      } catch {
        return sendBoxError(r, 400, 'bad_request', "'attributes' is not valid JSON");
      }
    }
    const fp = parts[fi]!;
    if (Buffer.isBuffer(raw)) {
      const bytes = raw.subarray(fp.start, fp.end);
      heldSha1 = createHash('sha1').update(bytes).digest('hex');
      content = await ctx.blobs.write(bytes);
    } else {
      content = fp.end === fp.start ? await ctx.blobs.write(Buffer.alloc(0)) : await ctx.blobs.write(createReadStream(raw.file, { start: fp.start, end: fp.end - 1 }));
    }
    const size = content.size;
    const modified = attrs.content_modified_at === undefined ? null : parseBoxDate(attrs.content_modified_at);
    const created = attrs.content_created_at === undefined ? null : parseBoxDate(attrs.content_created_at);
    if ((attrs.content_modified_at !== undefined && !modified) || (attrs.content_created_at !== undefined && !created)) {
      return sendBoxError(r, 400, 'bad_request', 'Invalid date in attributes');
    }

    let target: FileNode | undefined;
    let folderId: string;
    let name: string;
    if (fileId) {
      target = ctx.model.file(fileId);
      if (!target) return sendNotFound(r, 'file', fileId);
      const want = r.req.headers['if-match'];
      if (want !== undefined && want !== String(target.sequenceId)) return sendBoxError(r, 412, 'precondition_failed');
      folderId = target.parentId;
      name = typeof attrs.name === 'string' ? attrs.name : target.name;
    } else {
      const parentId = attrs.parent?.id;
      if (typeof attrs.name !== 'string' || typeof parentId !== 'string') {
        return sendBoxError(r, 400, 'bad_request', "'name' and 'parent.id' are required in attributes");
      }
      if (!ctx.model.folder(parentId)) return sendNotFound(r, 'folder', parentId);
      folderId = parentId;
      name = attrs.name;
    }
    if (!checkNewContent(ctx, r, { folderId, name, size, replacing: target })) return;

    const sha1 = heldSha1 ?? (await sha1Of(ctx, content)).hex;
    const md5h = r.req.headers['content-md5'];
    if (typeof md5h === 'string' && md5h.trim().toLowerCase() !== sha1) return sendBoxError(r, 400, 'bad_digest');

    const version = newVersion(ctx, content, sha1);
    content = null; // now owned by the model
    const fields = fieldsParam(r.url);
    if (target) {
      ctx.model.addVersion(target, version, { name, contentModifiedAt: modified });
      // Box answers a new version with 200 (a new file with 201).
      sendJson(r, 200, { total_count: 1, entries: [ctx.model.fileJson(target, fields)] });
    } else {
      const f = ctx.model.createFile(folderId, name, version, modified, created);
      sendJson(r, 201, { total_count: 1, entries: [ctx.model.fileJson(f, fields)] });
    }
  } finally {
    if (!Buffer.isBuffer(raw)) await ctx.blobs.remove(raw);
    if (content) await ctx.blobs.remove(content);
  }
}

// ---------------------------------------------------------------------------------------------
// Upload sessions

function sessionJson(r: EmulatorRequest, s: UploadSessionState): Record<string, unknown> {
  const base = `${publicBase(r, 'upload')}/2.0/files/upload_sessions/${s.id}`;
  return {
    total_parts: s.totalParts,
    part_size: s.partSize,
    session_endpoints: {
      list_parts: `${base}/parts`,
      commit: `${base}/commit`,
      log_event: `${base}/log`,
      upload_part: base,
      status: base,
      abort: base,
    },
    session_expires_at: boxDate(new Date(s.expiresAt)),
    id: s.id,
    type: 'upload_session',
    num_parts_processed: s.parts.size,
  };
}

/** `POST /files/upload_sessions` (new file) and `POST /files/:id/upload_sessions` (new version). */
async function createSession(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const body = await jsonBody(r);
  if (!body) return;
  const fileId = m[1] ?? null;
  let folderId: string;
  let fileName: string;
  let existing: FileNode | undefined;
  if (fileId) {
    existing = ctx.model.file(fileId);
    if (!existing) return sendNotFound(r, 'file', fileId);
    folderId = existing.parentId;
    fileName = typeof body.file_name === 'string' ? body.file_name : existing.name;
  } else {
    if (body.folder_id === undefined) return sendBoxError(r, 400, 'missing_destination', 'No folder_id was provided');
    if (typeof body.folder_id !== 'string') return sendBoxError(r, 400, 'invalid_folder_id', 'folder_id is not valid');
    if (body.file_name === undefined) return sendBoxError(r, 400, 'missing_file_name', 'file_name was not provided');
    folderId = body.folder_id;
    fileName = String(body.file_name);
  }
  if (body.file_size === undefined) return sendBoxError(r, 400, 'missing_file_size', 'file_size was not provided');
  const size = body.file_size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    return sendBoxError(r, 400, 'invalid_file_size', 'file_size was not a valid number');
  }
  if (size < ctx.settings.minChunkedSize) {
    return sendBoxError(r, 400, 'file_size_too_small', `file_size is below minimum file size for uploads via this API (${ctx.settings.minChunkedSize} bytes)`);
  }
  if (!fileId && !ctx.model.folder(folderId)) return sendNotFound(r, 'folder', folderId);
  if (!checkNewContent(ctx, r, { folderId, name: fileName, size, replacing: existing })) return;
  const partSize = ctx.settings.partSize(size);
  const s: UploadSessionState = {
    id: hexId(ctx, 32),
    fileSize: size,
    partSize,
    totalParts: Math.ceil(size / partSize),
    expiresAt: Date.now() + SESSION_TTL_MS,
    folderId: fileId ? null : folderId,
    fileName: fileId ? (typeof body.file_name === 'string' ? fileName : null) : fileName,
    fileId,
    parts: new Map(),
    content: await SessionFile.create(ctx.blobs, { sha1: hex('sha1') }),
    streaming: new Set(),
  };
  ctx.sessions.set(s.id, s);
  sendJson(r, 201, sessionJson(r, s));
}

function sessionOr404(ctx: BoxContext, r: EmulatorRequest, id: string): UploadSessionState | undefined {
  const s = ctx.sessions.get(id);
  if (!s || s.expiresAt <= Date.now()) {
    r.req.resume();
    sendNotFound(r, 'upload_session', id);
    return undefined;
  }
  return s;
}

/**
 * `PUT /files/upload_sessions/:id`: one part. The range must start on a multiple of `part_size`
 * and be exactly `part_size` long except for the last part (else 416); a part already uploaded
 * at that offset is 409 `range_overlaps_existing_part` (parts are immutable); a `Digest` that is
 * not the SHA-1 of the body is 412.
 */
async function uploadPart(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const s = sessionOr404(ctx, r, m[1]!);
  if (!s) return;
  const digest = digestHeader(r);
  if (!digest) {
    r.req.resume();
    return sendBoxError(r, 400, 'bad_request', "Missing or malformed 'Digest' header, expected sha=BASE64");
  }
  const cr = parseContentRange(r.req.headers['content-range']);
  if (!cr || cr.start === null || cr.end === null) {
    r.req.resume();
    return sendBoxError(r, 400, 'bad_request', "Missing or malformed 'Content-Range' header");
  }
  const { start, end, total } = cr;
  const len = end - start + 1;
  const last = end + 1 === s.fileSize;
  if (total !== s.fileSize || end < start || end >= s.fileSize || start % s.partSize !== 0 || (!last && len !== s.partSize) || len > s.partSize) {
    r.req.resume();
    return sendBoxError(r, 416, 'range_not_satisfiable');
  }
  if (s.parts.has(start)) {
    r.req.resume();
    return sendBoxError(r, 409, 'range_overlaps_existing_part');
  }
  const content = s.content;
  if (!content) {
    // Committed or aborted while this request waited: the session is gone.
    r.req.resume();
    return sendNotFound(r, 'upload_session', s.id);
  }
  const partSha1 = createHash('sha1');
  let got: { size: number; blob: BlobInfo | null };
  if (s.streaming.has(start)) {
    // The same range is streaming in: this body waits apart, and is copied in only if accepted.
    const blob = await ctx.blobs.write(r.req);
    got = { size: blob.size, blob };
  } else {
    s.streaming.add(start);
    try {
      const { read } = await content.writeAt(r.req, start, { keep: len, onChunk: (c) => partSha1.update(c) });
      got = { size: read, blob: null };
    } finally {
      s.streaming.delete(start);
    }
  }
  r.countBody(got.size);
  const refuse = async (status: number, code: string, message?: string): Promise<void> => {
    if (got.blob) await ctx.blobs.remove(got.blob);
    sendBoxError(r, status, code, message);
  };
  if (got.size !== len) return refuse(400, 'bad_request', `Body has ${got.size} bytes, Content-Range says ${len}`);
  const sha1 = got.blob ? await sha1Of(ctx, got.blob) : hexAndB64(partSha1.digest('hex'));
  if (sha1.b64 !== digest) {
    return refuse(412, 'precondition_failed', `The Digest header does not match the part's content (got sha=${sha1.b64})`);
  }
  // A concurrent PUT of the same range may have landed while this body was being stored.
  if (s.parts.has(start)) return refuse(409, 'range_overlaps_existing_part');
  const part: UploadedPart = { part_id: hexId(ctx, 8), offset: start, size: len, sha1: sha1.hex };
  s.parts.set(start, part);
  if (got.blob) content.copyIn(got.blob, start);
  sendJson(r, 200, { part: { part_id: part.part_id, offset: part.offset, size: part.size, sha1: part.sha1 } });
}

function sortedParts(s: UploadSessionState): UploadedPart[] {
  return [...s.parts.values()].sort((a, b) => a.offset - b.offset);
}

async function listParts(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const s = sessionOr404(ctx, r, m[1]!);
  if (!s) return;
  const offset = Number(r.url.searchParams.get('offset') ?? 0) || 0;
  const limit = Math.min(Number(r.url.searchParams.get('limit') ?? 100) || 100, 1000);
  const parts = sortedParts(s);
  sendJson(r, 200, {
    total_count: parts.length,
    limit,
    offset,
    order: [{ by: 'offset', direction: 'ASC' }],
    entries: parts.slice(offset, offset + limit).map((p) => ({ part_id: p.part_id, offset: p.offset, size: p.size, sha1: p.sha1 })),
  });
}

async function sessionStatus(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const s = sessionOr404(ctx, r, m[1]!);
  if (s) sendJson(r, 200, sessionJson(r, s));
}

async function dropSession(ctx: BoxContext, s: UploadSessionState): Promise<void> {
  ctx.sessions.delete(s.id);
  await s.content?.idle();
  await s.content?.remove();
  s.content = null;
}

async function abortSession(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const s = sessionOr404(ctx, r, m[1]!);
  if (!s) return;
  await dropSession(ctx, s);
  sendEmpty(r, 204);
}

/**
 * `POST /files/upload_sessions/:id/commit`: the listed parts must be exactly the parts uploaded
 * and cover the file (400 `parts_mismatch`); the `Digest` must be the SHA-1 of the whole file
 * (400 `digest_mismatch`). While a test asks for it, answers 202 + Retry-After first, as Box
 * does while it is still processing parts.
 */
async function commit(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const s = sessionOr404(ctx, r, m[1]!);
  if (!s) return;
  const body = await jsonBody(r);
  if (!body) return;
  const digest = digestHeader(r);
  if (!digest) return sendBoxError(r, 400, 'bad_request', "Missing or malformed 'Digest' header, expected sha=BASE64");
  const accepted = ctx.settings.commitAccepted;
  if (accepted.count > 0) {
    accepted.count--;
    return sendEmpty(r, 202, { 'retry-after': String(accepted.retryAfterS) });
  }
  const listed = Array.isArray(body.parts) ? (body.parts as Array<Record<string, unknown>>) : null;
  const parts = sortedParts(s);
  const covered = parts.reduce((pos, p) => (pos === p.offset ? pos + p.size : -1), 0) === s.fileSize;
  const same =
    listed !== null &&
    listed.length === parts.length &&
    [...listed]
      .sort((a, b) => Number(a.offset) - Number(b.offset))
      .every((l, i) => l.part_id === parts[i]!.part_id && l.offset === parts[i]!.offset && l.size === parts[i]!.size);
  if (!covered || !same) return sendBoxError(r, 400, 'parts_mismatch');
  const attrs = (body.attributes ?? {}) as Attributes;
  const modified = attrs.content_modified_at === undefined ? null : parseBoxDate(attrs.content_modified_at);

  const content = s.content;
  // Another commit of this session made the file while this one waited.
  if (!content) return sendNotFound(r, 'upload_session', s.id);
  await content.idle();
  // The session keeps its bytes until the file is made: a refused commit may be retried.
  const { blob: whole, hashes } = await content.seal(s.fileSize);
  // Nothing awaits from here to the file's creation: a commit that raced this one and won has
  // already made the file from these bytes.
  if (s.content !== content) return sendNotFound(r, 'upload_session', s.id);
  const sha1 = hexAndB64(hashes.sha1);
  if (sha1.b64 !== digest) {
    return sendBoxError(r, 400, 'digest_mismatch', `File digest was incorrect. Actual: ${sha1.b64} Expected: ${digest}`);
  }
  const existing = s.fileId ? ctx.model.file(s.fileId) : undefined;
  if (s.fileId && !existing) return sendNotFound(r, 'file', s.fileId);
  const folderId = existing ? existing.parentId : s.folderId!;
  const name = typeof attrs.name === 'string' ? attrs.name : (s.fileName ?? existing!.name);
  if (!existing && !ctx.model.folder(folderId)) return sendNotFound(r, 'folder', folderId);
  // The tree may have changed since the session was created.
  if (!checkNewContent(ctx, r, { folderId, name, size: s.fileSize, replacing: existing })) return;
  const version = newVersion(ctx, whole, sha1.hex);
  let file: FileNode;
  if (existing) {
    ctx.model.addVersion(existing, version, { name, contentModifiedAt: modified });
    file = existing;
  } else {
    file = ctx.model.createFile(folderId, name, version, modified, attrs.content_created_at === undefined ? null : parseBoxDate(attrs.content_created_at));
  }
  // The file owns the session's bytes now.
  s.content = null;
  await dropSession(ctx, s);
  sendJson(r, 201, { total_count: 1, entries: [ctx.model.fileJson(file, fieldsParam(r.url))] });
}

async function logEvent(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const s = sessionOr404(ctx, r, m[1]!);
  if (!s) return;
  r.req.resume();
  sendJson(r, 200, {});
}

const SID = '([0-9A-Fa-f]+)';
const ROUTES: Route[] = [
  ['POST', /^\/2\.0\/files\/content$/, directUpload],
  ['POST', /^\/2\.0\/files\/(\d+)\/content$/, directUpload],
  ['POST', /^\/2\.0\/files\/upload_sessions$/, createSession],
  ['POST', /^\/2\.0\/files\/(\d+)\/upload_sessions$/, createSession],
  ['PUT', new RegExp(`^/2\\.0/files/upload_sessions/${SID}$`), uploadPart],
  ['GET', new RegExp(`^/2\\.0/files/upload_sessions/${SID}$`), sessionStatus],
  ['DELETE', new RegExp(`^/2\\.0/files/upload_sessions/${SID}$`), abortSession],
  ['GET', new RegExp(`^/2\\.0/files/upload_sessions/${SID}/parts$`), listParts],
  ['POST', new RegExp(`^/2\\.0/files/upload_sessions/${SID}/commit$`), commit],
  ['POST', new RegExp(`^/2\\.0/files/upload_sessions/${SID}/log$`), logEvent],
];

/**
 * Routes a request for upload.box.com. `path` has the host's `/api` prefix already removed
 * (`/api/2.0/files/content` → `/2.0/files/content`).
 */
export async function handleUpload(ctx: BoxContext, r: EmulatorRequest, rawPath: string): Promise<void> {
  const path = rawPath.replace(/(.)\/$/, '$1'); // one trailing slash is ignored, as on Box
  let pathMatched = false;
  for (const [method, re, handler] of ROUTES) {
    const m = re.exec(path);
    if (!m) continue;
    pathMatched = true;
    if (method !== r.method) continue;
    if (!authorize(ctx, r)) return;
    return handler(ctx, r, m);
  }
  r.req.resume();
  sendBoxError(r, pathMatched ? 405 : 404, pathMatched ? 'method_not_allowed' : 'not_found');
}
