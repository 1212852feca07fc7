/**
 * Routes of api.box.com (`/2.0/...`): folders, items listing (offset and marker pagination),
 * folder create with its 409, file metadata, delete, the download redirect to dl.boxcloud.com,
 * and the upload preflight `OPTIONS /2.0/files/content`. Also the dl.boxcloud.com leg.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { EmulatorRequest } from '../harness/index.js';
import { sendEmpty, sendJson } from '../harness/index.js';
import type { BoxContext } from './context.js';
import { authorize, fieldsParam, jsonBody, publicBase } from './context.js';
import { sendBoxError, sendNotFound } from './errors.js';
import type { FileNode, ItemNode } from './model.js';
import { current, nameError, ROOT_ID } from './model.js';

type Route = [method: string, path: RegExp, handler: (ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray) => Promise<void> | void];

/**
 * Checks shared by every way of adding content (preflight, direct upload, upload sessions):
 * name rules, name conflicts, the per-file size cap and the storage quota. Sends the error and
 * returns false when one fails. Conflicts on the upload side carry `context_info.conflicts` as
 * one object (the existing item), as Box sends them for uploads.
 */
export function checkNewContent(
  ctx: BoxContext,
  r: EmulatorRequest,
  opts: { folderId: string; name: string; size: number | null; replacing?: FileNode },
): boolean {
  const bad = nameError(opts.name);
  if (bad) {
    sendBoxError(r, 400, bad);
    return false;
  }
  const clash = ctx.model.findChild(opts.folderId, opts.name);
  if (clash && clash.id !== opts.replacing?.id) {
    sendBoxError(r, 409, 'item_name_in_use', undefined, { conflicts: ctx.model.itemMini(clash) });
    return false;
  }
  if (opts.size !== null) {
    if (opts.size > ctx.settings.maxFileSize) {
      sendBoxError(r, 403, 'file_size_limit_exceeded');
      return false;
    }
    const quota = ctx.settings.storageQuota;
    if (quota !== null && ctx.model.usedBytes() + opts.size > quota) {
      sendBoxError(r, 403, 'storage_limit_exceeded');
      return false;
    }
  }
  return true;
}

function sortItems(items: ItemNode[], sort: string, direction: 'ASC' | 'DESC'): ItemNode[] {
  const key = (n: ItemNode): string | number => {
    switch (sort) {
      case 'id':
        return Number(n.id);
      case 'date':
        return n.modifiedAt;
      case 'size':
        return n.kind === 'file' ? current(n).size : 0;
      default:
        return n.name.toLowerCase();
    }
  };
  const dir = direction === 'DESC' ? -1 : 1;
  // Box always sorts folders before files; `sort` is the second key.
  return [...items].sort((a, b) => {
    if (a.kind !== b.kind) return a.kind === 'folder' ? -1 : 1;
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -dir : ka > kb ? dir : 0;
  });
}

function encodeMarker(index: number): string {
  return Buffer.from(JSON.stringify({ i: index })).toString('base64url');
}

function decodeMarker(m: string): number | null {
  try {
    const v = JSON.parse(Buffer.from(m, 'base64url').toString('utf8')) as { i?: unknown };
    return typeof v.i === 'number' && Number.isInteger(v.i) && v.i >= 0 ? v.i : null;
  } catch {
    return null;
  }
}

function intParam(url: URL, name: string): number | null | 'invalid' {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return null;
  return /^\d+$/.test(v) ? Number(v) : 'invalid';
}

async function getFolder(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const f = ctx.model.folder(m[1]!);
  if (!f) return sendNotFound(r, 'folder', m[1]!);
  const fields = fieldsParam(r.url);
  const items = sortItems(ctx.model.children(f.id), 'name', 'ASC');
  const listing = fields
    ? undefined
    : {
        total_count: items.length,
        entries: items.slice(0, 100).map((n) => ctx.model.itemMini(n)),
        offset: 0,
        limit: 100,
        order: [
          { by: 'type', direction: 'ASC' },
          { by: 'name', direction: 'ASC' },
        ],
      };
  sendJson(r, 200, ctx.model.folderJson(f, fields, listing));
}

async function listItems(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const f = ctx.model.folder(m[1]!);
  if (!f) return sendNotFound(r, 'folder', m[1]!);
  const url = r.url;
  const limitP = intParam(url, 'limit');
  const offsetP = intParam(url, 'offset');
  if (limitP === 'invalid') return sendBoxError(r, 400, 'invalid_limit', 'Limit is not a valid number');
  if (offsetP === 'invalid') return sendBoxError(r, 400, 'invalid_offset', 'Offset is not a valid number');
  const limit = Math.min(limitP ?? 100, ctx.settings.maxPageSize);
  const sort = url.searchParams.get('sort') ?? 'name';
  const direction = url.searchParams.get('direction') === 'DESC' ? 'DESC' : 'ASC';
  const fields = fieldsParam(url);
  const items = sortItems(ctx.model.children(f.id), sort, direction);
  const render = (n: ItemNode): Record<string, unknown> => ctx.model.itemJson(n, fields);
  if (url.searchParams.get('usemarker') === 'true') {
    const marker = url.searchParams.get('marker');
    const start = marker ? decodeMarker(marker) : 0;
    if (start === null) return sendBoxError(r, 400, 'bad_request', 'Invalid marker');
    const page = items.slice(start, start + limit);
    const next = start + page.length < items.length ? encodeMarker(start + page.length) : null;
    sendJson(r, 200, { entries: page.map(render), limit, next_marker: next });
    return;
  }
  const offset = offsetP ?? 0;
  if (offset > 10_000) {
    return sendBoxError(r, 400, 'bad_request', 'Queries with offset parameter value exceeding 10000 will be rejected');
  }
  sendJson(r, 200, {
    total_count: items.length,
    entries: items.slice(offset, offset + limit).map(render),
    offset,
    limit,
    order: [
      { by: 'type', direction: 'ASC' },
      { by: sort, direction },
    ],
  });
}

async function createFolder(ctx: BoxContext, r: EmulatorRequest): Promise<void> {
  const body = await jsonBody(r);
  if (!body) return;
  const name = body.name;
  const parentId = (body.parent as { id?: unknown } | undefined)?.id;
  if (typeof name !== 'string' || typeof parentId !== 'string') {
    return sendBoxError(r, 400, 'bad_request', "'name' and 'parent.id' are required");
  }
  const bad = nameError(name);
  if (bad) return sendBoxError(r, 400, bad);
  const parent = ctx.model.folder(parentId);
  if (!parent) return sendNotFound(r, 'folder', parentId);
  const clash = ctx.model.findChild(parentId, name);
  // Folder create lists its conflicts as an array (uploads send a single object).
  if (clash) return sendBoxError(r, 409, 'item_name_in_use', undefined, { conflicts: [ctx.model.itemMini(clash)] });
  const f = ctx.model.createFolder(parentId, name);
  sendJson(r, 201, ctx.model.folderJson(f, fieldsParam(r.url)));
}

async function deleteFolder(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const f = ctx.model.folder(m[1]!);
  if (!f) return sendNotFound(r, 'folder', m[1]!);
  if (f.id === ROOT_ID) return sendBoxError(r, 403, 'access_denied_insufficient_permissions', 'Access denied - insufficient permission');
  if (ctx.model.children(f.id).length > 0 && r.url.searchParams.get('recursive') !== 'true') {
    return sendBoxError(r, 400, 'folder_not_empty');
  }
  for (const v of ctx.model.remove(f.id)) await ctx.blobs.remove(v.blob);
  sendEmpty(r, 204);
}

function fileOr404(ctx: BoxContext, r: EmulatorRequest, id: string): FileNode | undefined {
  const f = ctx.model.file(id);
  if (!f) sendNotFound(r, 'file', id);
  return f;
}

function ifMatchFails(r: EmulatorRequest, f: FileNode): boolean {
  const want = r.req.headers['if-match'];
  if (want === undefined || want === String(f.sequenceId)) return false;
  sendBoxError(r, 412, 'precondition_failed');
  return true;
}

async function getFile(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const f = fileOr404(ctx, r, m[1]!);
  if (f) sendJson(r, 200, ctx.model.fileJson(f, fieldsParam(r.url)));
}

async function deleteFile(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const f = fileOr404(ctx, r, m[1]!);
  if (!f || ifMatchFails(r, f)) return;
  for (const v of ctx.model.remove(f.id)) await ctx.blobs.remove(v.blob);
  sendEmpty(r, 204);
}

/** `GET /files/:id/content`: 302 to a one-time-ish URL on dl.boxcloud.com, as Box does. */
async function download(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const f = fileOr404(ctx, r, m[1]!);
  if (!f) return;
  const wanted = r.url.searchParams.get('version');
  const version = wanted ? f.versions.find((v) => v.id === wanted) : current(f);
  if (!version) return sendNotFound(r, 'item', wanted ?? '');
  const token = randomBytes(24).toString('base64url');
  ctx.downloads.set(token, { fileId: f.id, version, expiresAt: Date.now() + 15 * 60_000 });
  sendEmpty(r, 302, { location: `${publicBase(r, 'dl')}/d/1/${token}/download` });
}

/** dl.boxcloud.com: the bytes, no Authorization needed; honours a single `Range`. */
export async function serveDownload(ctx: BoxContext, r: EmulatorRequest): Promise<void> {
  const m = /^\/d\/1\/([^/]+)\/download$/.exec(r.url.pathname);
  const d = m ? ctx.downloads.get(m[1]!) : undefined;
  if (!d || d.expiresAt <= Date.now() || r.method !== 'GET') {
    sendEmpty(r, 404);
    return;
  }
  const file = ctx.model.file(d.fileId);
  const size = await ctx.blobs.size(d.version.blob);
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'accept-ranges': 'bytes',
    ...(file ? { 'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(file.name)}` } : {}),
  };
  const range = /^(?:bytes=)?(\d+)-(\d*)$/.exec(r.req.headers.range ?? '');
  let start = 0;
  let end = size - 1;
  let status = 200;
  if (range) {
    start = Number(range[1]);
    end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    if (start >= size || start > end) {
      sendEmpty(r, 416, { 'content-range': `bytes */${size}` });
      return;
    }
    status = 206;
    headers['content-range'] = `bytes ${start}-${end}/${size}`;
  }
  headers['content-length'] = String(Math.max(0, end - start + 1));
  r.res.writeHead(status, headers);
  if (size === 0) {
    r.res.end();
    return;
  }
  createReadStream(d.version.blob.file, { start, end }).pipe(r.res);
}

/** `OPTIONS /files/content` and `OPTIONS /files/:id/content`: the upload preflight. */
async function preflight(ctx: BoxContext, r: EmulatorRequest, m: RegExpExecArray): Promise<void> {
  const body = await jsonBody(r);
  if (!body) return;
  const size = typeof body.size === 'number' ? body.size : null;
  const fileId = m[1];
  if (fileId) {
    const f = fileOr404(ctx, r, fileId);
    if (!f) return;
    const name = typeof body.name === 'string' ? body.name : f.name;
    if (!checkNewContent(ctx, r, { folderId: f.parentId, name, size, replacing: f })) return;
  } else {
    const parentId = (body.parent as { id?: unknown } | undefined)?.id;
    if (typeof body.name !== 'string' || typeof parentId !== 'string') {
      return sendBoxError(r, 400, 'bad_request', "'name' and 'parent.id' are required");
    }
    if (!ctx.model.folder(parentId)) return sendNotFound(r, 'folder', parentId);
    if (!checkNewContent(ctx, r, { folderId: parentId, name: body.name, size })) return;
  }
  sendJson(r, 200, {
    upload_url: `${publicBase(r, 'upload')}/2.0/files/${fileId ? `${fileId}/` : ''}content`,
    upload_token: randomBytes(16).toString('base64url'),
  });
}

const ROUTES: Route[] = [
  ['GET', /^\/2\.0\/folders\/(\d+)$/, getFolder],
  ['DELETE', /^\/2\.0\/folders\/(\d+)$/, deleteFolder],
  ['GET', /^\/2\.0\/folders\/(\d+)\/items$/, listItems],
  ['POST', /^\/2\.0\/folders$/, createFolder],
  ['OPTIONS', /^\/2\.0\/files\/content$/, preflight],
  ['OPTIONS', /^\/2\.0\/files\/(\d+)\/content$/, preflight],
  ['GET', /^\/2\.0\/files\/(\d+)$/, getFile],
  ['DELETE', /^\/2\.0\/files\/(\d+)$/, deleteFile],
  ['GET', /^\/2\.0\/files\/(\d+)\/content$/, download],
];

/** Routes a request for api.box.com; answers 404/405 in Box's shape for anything else. */
export async function handleApi(ctx: BoxContext, r: EmulatorRequest): Promise<void> {
  // Box's router ignores one trailing slash (`OPTIONS /2.0/files/content/` is the preflight).
  const path = r.url.pathname.length > 1 ? r.url.pathname.replace(/\/$/, '') : r.url.pathname;
  // The token endpoint: api.box.com/oauth2/token, and app.box.com/api/oauth2/token (older guides).
  if (path === '/oauth2/token' || path === '/api/oauth2/token') {
    if (r.method !== 'POST') return sendBoxError(r, 405, 'method_not_allowed');
    return ctx.oauth.handleToken(r);
  }
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
  if (pathMatched) return sendBoxError(r, 405, 'method_not_allowed');
  sendBoxError(r, 404, 'not_found');
}
