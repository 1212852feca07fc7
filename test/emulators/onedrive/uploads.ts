/**
 * Upload sessions (driveItem: createUploadSession) and the content host: a pre-authenticated
 * uploadUrl takes sequential fragments (`Content-Range: bytes a-b/total`, multiples of 320 KiB
 * but the last, under 60 MiB each) answered 202 with `nextExpectedRanges` until the last one
 * answers 201 (or 200 when it replaced a file); GET on the URL reports the status (resume),
 * DELETE cancels. The same host serves pre-authenticated download URLs.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { QuickXorHasher } from '../../../src/archive/quickxor.js';
import { SessionFile, parseContentRange, readBody, sendEmpty, sendJson } from '../harness/index.js';
import type { EmulatorRequest } from '../harness/index.js';
import type { Ctx, UploadSession } from './context.js';
import { bases, FRAGMENT_UNIT, MAX_FRAGMENT, parseConflict, placeFile, renderContext, sendPlaceError } from './context.js';
import { graphHeaders, sendGraphError } from './errors.js';
import { renderItem } from './model.js';

function sessionStatus(s: UploadSession): { expirationDateTime: string; nextExpectedRanges: string[] } {
  const complete = s.total !== null && s.received >= s.total;
  return {
    expirationDateTime: new Date(s.expiresAt).toISOString(),
    nextExpectedRanges: complete ? [] : [`${s.received}-`],
  };
}

/** POST …/createUploadSession: the target is already resolved (and its parents created). */
export async function createSession(ctx: Ctx, r: EmulatorRequest, where: { parentId: string; name: string; targetId: string | null }): Promise<void> {
  let body: { item?: Record<string, unknown>; deferCommit?: unknown } = {};
  try {
    const raw = await readBody(r, 1 << 20);
    if (raw.length) body = JSON.parse(raw.toString('utf8')) as typeof body;
  } catch {
    sendGraphError(r, 400, 'invalidRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.');
    return;
  }
  const item = body.item ?? {};
  const conflictRaw = item['@microsoft.graph.conflictBehavior'] ?? item['@name.conflictBehavior'] ?? r.url.searchParams.get('@microsoft.graph.conflictBehavior') ?? undefined;
  const parsed = parseConflict(conflictRaw);
  if (parsed === null) {
    sendGraphError(r, 400, 'invalidRequest', `Invalid value for @microsoft.graph.conflictBehavior: ${String(conflictRaw)}`);
    return;
  }
  // "fail | replace | rename" (driveItem: createUploadSession). A new name with none given
  // fails if the name is taken by the time the last fragment lands.
  const conflict = parsed ?? 'fail';
  if (typeof item.name === 'string' && item.name.toLowerCase() !== where.name.toLowerCase()) {
    sendGraphError(r, 400, 'invalidRequest', 'The name in the request body does not match the name in the URL.');
    return;
  }
  if (where.targetId === null && parsed === undefined) {
    // "To update an existing file, specify the ID or path of the file to update": the path of an
    // existing file names that file, as its id would; `fail` applies only when asked for.
    const existing = ctx.drive.child(ctx.drive.get(where.parentId)!, where.name);
    if (existing && !existing.isFolder) where = { ...where, targetId: existing.id };
  }
  if (where.targetId === null && conflict === 'fail') {
    const parent = ctx.drive.get(where.parentId)!;
    if (ctx.drive.child(parent, where.name)) {
      sendGraphError(r, 409, 'nameAlreadyExists', 'The specified item name already exists.');
      return;
    }
  }
  const fileSize = typeof item.fileSize === 'number' ? item.fileSize : null;
  if (fileSize !== null && ctx.drive.used() + fileSize > ctx.drive.quotaTotal) {
    sendGraphError(r, 507, 'quotaLimitReached', 'Insufficient Space Available');
    return;
  }
  const fsInfo = (item.fileSystemInfo ?? {}) as UploadSession['fileSystemInfo'];
  const id = randomBytes(18).toString('hex');
  const session: UploadSession = {
    id,
    ...where,
    conflict,
    total: fileSize,
    received: 0,
    content: null,
    expiresAt: Date.now() + ctx.settings.uploadSessionTtlMs,
    deferCommit: body.deferCommit === true,
    fileSystemInfo: {
      ...(typeof fsInfo.createdDateTime === 'string' ? { createdDateTime: fsInfo.createdDateTime } : {}),
      ...(typeof fsInfo.lastModifiedDateTime === 'string' ? { lastModifiedDateTime: fsInfo.lastModifiedDateTime } : {}),
    },
    busy: false,
  };
  ctx.sessions.set(id, session);
  const b = bases(r);
  sendJson(
    r,
    200,
    {
      '@odata.context': `${b.graph}/$metadata#microsoft.graph.uploadSession`,
      uploadUrl: b.uploadUrl(id),
      ...sessionStatus(session),
    },
    graphHeaders(r),
  );
}

async function dropSession(ctx: Ctx, s: UploadSession): Promise<void> {
  ctx.sessions.delete(s.id);
  await s.content?.remove();
  s.content = null;
}

/** Answers a request on the content host: `/upload|rup|up/{session}` and `/download/{token}`. */
export async function handleContent(ctx: Ctx, r: EmulatorRequest, rawPath: string): Promise<void> {
  const dl = /^\/download\/([^/]+)$/.exec(rawPath);
  if (dl) return download(ctx, r, dl[1]!);
  const m = /^\/(?:upload|rup|up)\/([^/]+)$/.exec(rawPath);
  const session = m ? ctx.sessions.get(m[1]!) : undefined;
  if (!session || session.expiresAt <= Date.now()) {
    r.req.resume();
    if (session) await dropSession(ctx, session);
    sendGraphError(r, 404, 'itemNotFound', 'The upload session was not found.', { inner: 'uploadSessionNotFound' });
    return;
  }
  // "If you include the Authorization header when issuing the PUT call, it may result in an
  // HTTP 401 Unauthorized response" (createUploadSession): the URL carries its own credential.
  if (ctx.settings.rejectAuthorizationOnPreauthenticatedUrls && r.req.headers.authorization !== undefined) {
    r.req.resume();
    sendGraphError(r, 401, 'unauthenticated', 'The upload URL is pre-authenticated: send no Authorization header to it.');
    return;
  }
  switch (r.method) {
    case 'GET':
      sendJson(r, 200, sessionStatus(session), graphHeaders(r));
      return;
    case 'DELETE':
      await dropSession(ctx, session);
      sendEmpty(r, 204, graphHeaders(r));
      return;
    case 'PUT':
      return putFragment(ctx, r, session);
    case 'POST':
      // deferCommit: an empty POST completes the file (OneDrive for Business).
      r.req.resume();
      if (!session.deferCommit || session.total === null || session.received < session.total) {
        sendGraphError(r, 400, 'invalidRequest', 'The upload session is not complete.', { inner: 'uploadSessionIncomplete' });
        return;
      }
      return commit(ctx, r, session);
    default:
      r.req.resume();
      sendGraphError(r, 405, 'BadRequest', `The HTTP method '${r.method}' is not allowed on an upload URL.`);
  }
}

async function putFragment(ctx: Ctx, r: EmulatorRequest, s: UploadSession): Promise<void> {
  const fail = (status: number, code: string, message: string, inner?: string): void => {
    r.req.resume();
    sendGraphError(r, status, code, message, inner ? { inner } : {});
  };
  const range = parseContentRange(r.req.headers['content-range']);
  if (!range || range.start === null || range.end === null || range.total === null || range.end < range.start) {
    return fail(400, 'invalidRequest', 'The Content-Range header is missing or malformed; expected bytes {start}-{end}/{total}.');
  }
  if (s.total !== null && range.total !== s.total) {
    return fail(400, 'invalidRequest', 'Declared total size for this fragment is different from that of the upload session.', 'fragmentLengthMismatch');
  }
  if (range.end >= range.total) return fail(416, 'invalidRange', 'The fragment ends past the declared total size.', 'invalidRange');
  const length = range.end - range.start + 1;
  const lengthHeader = r.req.headers['content-length'];
  if (lengthHeader === undefined) return fail(411, 'invalidRequest', 'A Content-Length header is required on the request.');
  if (Number(lengthHeader) !== length) {
    return fail(400, 'invalidRequest', 'The Content-Length does not match the Content-Range of the fragment.', 'fragmentLengthMismatch');
  }
  if (length >= MAX_FRAGMENT) return fail(413, 'invalidRequest', 'A fragment must be smaller than 60 MiB.', 'maxFragmentLengthExceeded');
  if (range.start < s.received) {
    return fail(416, 'invalidRange', 'Uploaded fragment overlaps with existing data.', 'fragmentOverlap');
  }
  if (range.start > s.received) return fail(416, 'invalidRange', 'Uploaded fragment is out of order.', 'fragmentOutOfOrder');
  const last = range.end + 1 === range.total;
  if (ctx.settings.strictFragmentSize && !last && length % FRAGMENT_UNIT !== 0) {
    return fail(400, 'invalidRequest', 'A fragment other than the last must be a multiple of 320 KiB (327,680 bytes).', 'invalidFragmentLength');
  }
  if (s.busy) return fail(409, 'invalidRequest', 'Another fragment of this upload session is being written; fragments are sequential.');
  s.busy = true;
  s.content ??= await SessionFile.create(ctx.blobs, { qx: () => new QuickXorHasher() });
  let written: number;
  try {
    ({ written } = await s.content.writeAt(r.req, s.received, { limit: length }));
  } catch {
    // A dropped connection: "all bytes in that request are ignored".
    s.busy = false;
    r.res.destroy();
    return;
  }
  s.busy = false;
  r.countBody(written);
  if (written !== length) {
    sendGraphError(r, 400, 'invalidRequest', 'The fragment body is shorter than its Content-Range.', { inner: 'fragmentLengthMismatch' });
    return;
  }
  s.total = range.total;
  s.received = range.end + 1;
  s.expiresAt = Date.now() + ctx.settings.uploadSessionTtlMs;
  if (s.received < s.total || s.deferCommit) {
    sendJson(r, 202, sessionStatus(s), graphHeaders(r));
    return;
  }
  return commit(ctx, r, s);
}

/** The last byte arrived: the file appears in its folder (or conflicts; the session then stays). */
async function commit(ctx: Ctx, r: EmulatorRequest, s: UploadSession): Promise<void> {
  const { blob, hashes } = await s.content!.seal(s.total!);
  const placed = await placeFile(ctx, { parentId: s.parentId, name: s.name, targetId: s.targetId, conflict: s.conflict }, blob, s.fileSystemInfo, hashes.qx);
  if (!placed.ok) {
    // The session keeps its bytes (its file is the blob): a later commit seals it again.
    if (placed.code === 'nameAlreadyExists') {
      sendGraphError(r, 409, 'nameAlreadyExists', 'Another file exists with the same name as the uploaded session. You can redirect the upload session to use a new filename by calling PUT with the new metadata and @microsoft.graph.sourceUrl attribute.');
      return;
    }
    sendPlaceError(r, placed);
    return;
  }
  // The drive owns the session's file now.
  s.content = null;
  await dropSession(ctx, s);
  const rc = renderContext(r, '/drive');
  sendJson(r, placed.created ? 201 : 200, renderItem(ctx.drive, placed.item, rc), graphHeaders(r));
}

async function download(ctx: Ctx, r: EmulatorRequest, token: string): Promise<void> {
  r.req.resume();
  const id = Buffer.from(token, 'base64url').toString('utf8');
  const item = ctx.drive.get(id);
  if (!item || item.isFolder || !item.blob) {
    sendGraphError(r, 404, 'itemNotFound', 'The resource could not be found.');
    return;
  }
  if (r.method !== 'GET' && r.method !== 'HEAD') {
    sendGraphError(r, 405, 'BadRequest', `The HTTP method '${r.method}' is not allowed on a download URL.`);
    return;
  }
  // A download URL is pre-authenticated like an upload URL (driveitem-get-content): the same
  // switch refuses an Authorization header on both.
  if (ctx.settings.rejectAuthorizationOnPreauthenticatedUrls && r.req.headers.authorization !== undefined) {
    sendGraphError(r, 401, 'unauthenticated', 'The download URL is pre-authenticated: send no Authorization header to it.');
    return;
  }
  let start = 0;
  let end = item.size - 1;
  let status = 200;
  const rangeHeader = r.req.headers.range;
  const headers: Record<string, string> = { 'content-type': item.mimeType, 'accept-ranges': 'bytes', etag: `"{${item.tagId}},${item.version}"` };
  if (rangeHeader) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(rangeHeader);
    if (m && (m[1] || m[2])) {
      if (m[1]) {
        start = Number(m[1]);
        end = m[2] ? Math.min(Number(m[2]), item.size - 1) : item.size - 1;
      } else {
        start = Math.max(0, item.size - Number(m[2]));
      }
      if (start > end || start >= item.size) {
        sendEmpty(r, 416, { 'content-range': `bytes */${item.size}` });
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${item.size}`;
    }
  }
  const length = item.size === 0 ? 0 : end - start + 1;
  headers['content-length'] = String(length);
  r.res.writeHead(status, headers);
  if (r.method === 'HEAD' || length === 0) {
    r.res.end();
    return;
  }
  createReadStream(item.blob.file, { start, end }).pipe(r.res);
}
