/**
 * Microsoft Graph v1.0, the OneDrive part: the drive, driveItems addressed by id or by path
 * (`root:/a/b:` and `items/{id}:/name:`), children with paging, folder creation, simple upload
 * (`PUT …/content`), download redirects, delete, and the start of upload sessions. Drives are
 * reachable as `/me/drive`, `/drive`, `/drives/{id}` and `/users/{id}/drive`.
 */
import type { EmulatorRequest } from '../harness/index.js';
import { readBody, sendEmpty, sendJson } from '../harness/index.js';
import type { Ctx } from './context.js';
import { authenticate, bases, downloadToken, parseConflict, placeFile, renderContext, sendPlaceError } from './context.js';
import { graphHeaders, sendGraphError } from './errors.js';
import type { ItemRec, RenderContext } from './model.js';
import { applySelect, checkName, MAX_PATH_CHARS, renderItem } from './model.js';
import { createSession } from './uploads.js';

type Action = '' | 'children' | 'content' | 'createUploadSession';

interface Route {
  /** `/me`: the user resource. */
  kind: 'user' | 'drive' | 'item';
  /** Routes under /me need a signed-in user. */
  me: boolean;
  /** What Graph writes before `/root:` in parentReference.path. */
  pathPrefix: string;
  /** `root` or an item id. */
  base: string;
  /** Decoded path segments after `:`, or null for id addressing. */
  segments: string[] | null;
  action: Action;
}

class RouteError {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly message: string,
  ) {}
}

function decodeSegments(raw: string): string[] {
  try {
    return raw.split('/').filter((s) => s.length > 0).map((s) => decodeURIComponent(s));
  } catch {
    throw new RouteError(400, 'invalidRequest', 'The request URL is malformed.');
  }
}

/** Parses the raw (still percent-encoded) path of a Graph request. */
function parseRoute(ctx: Ctx, raw: string): Route {
  if (!raw.startsWith('/v1.0/') && raw !== '/v1.0') {
    const version = raw.split('/')[1] ?? '';
    throw new RouteError(400, 'BadRequest', `Invalid version: ${version}`);
  }
  let rest = raw.slice('/v1.0'.length);
  let me = false;
  let pathPrefix = '/drive';
  if (rest === '/me' || rest === '/me/') return { kind: 'user', me: true, pathPrefix, base: '', segments: null, action: '' };
  let m: RegExpExecArray | null;
  if (rest.startsWith('/me/drive')) {
    me = true;
    rest = rest.slice('/me/drive'.length);
  } else if ((m = /^\/drives\/([^/:]+)/.exec(rest))) {
    const id = decodeURIComponent(m[1]!);
    if (id.toLowerCase() !== ctx.drive.id.toLowerCase()) throw new RouteError(404, 'itemNotFound', 'The resource could not be found.');
    pathPrefix = `/drives/${ctx.drive.id}`;
    rest = rest.slice(m[0].length);
  } else if ((m = /^\/users\/([^/]+)\/drive/.exec(rest))) {
    const id = decodeURIComponent(m[1]!).toLowerCase();
    if (id !== ctx.user.id.toLowerCase() && id !== ctx.user.userPrincipalName.toLowerCase()) {
      throw new RouteError(404, 'Request_ResourceNotFound', `Resource '${decodeURIComponent(m[1]!)}' does not exist or one of its queried reference-property objects are not present.`);
    }
    rest = rest.slice(m[0].length);
  } else if (rest.startsWith('/drive') && (rest.length === 6 || rest[6] === '/')) {
    me = true;
    rest = rest.slice('/drive'.length);
  } else {
    const seg = rest.split('/')[1] ?? '';
    throw new RouteError(400, 'BadRequest', `Resource not found for the segment '${seg}'.`);
  }
  if (rest === '' || rest === '/') return { kind: 'drive', me, pathPrefix, base: '', segments: null, action: '' };
  let base: string;
  if (rest.startsWith('/root')) {
    base = 'root';
    rest = rest.slice('/root'.length);
  } else if ((m = /^\/items\/([^/:]+)/.exec(rest))) {
    base = decodeURIComponent(m[1]!);
    rest = rest.slice(m[0].length);
  } else {
    const seg = rest.split('/')[1] ?? '';
    throw new RouteError(400, 'BadRequest', `Resource not found for the segment '${seg}'.`);
  }
  let segments: string[] | null = null;
  if (rest.startsWith(':')) {
    const close = rest.indexOf(':', 1);
    const rawPath = close < 0 ? rest.slice(1) : rest.slice(1, close);
    rest = close < 0 ? '' : rest.slice(close + 1);
    segments = decodeSegments(rawPath);
  }
  const actions: Record<string, Action> = { '': '', '/': '', '/children': 'children', '/content': 'content', '/createUploadSession': 'createUploadSession', '/microsoft.graph.createUploadSession': 'createUploadSession' };
  const action = actions[rest];
  if (action === undefined) {
    throw new RouteError(400, 'BadRequest', `Resource not found for the segment '${rest.split('/')[1] ?? rest}'.`);
  }
  return { kind: 'item', me, pathPrefix, base, segments, action };
}

function baseItem(ctx: Ctx, route: Route): ItemRec | undefined {
  return route.base === 'root' ? ctx.drive.root : ctx.drive.get(route.base);
}

/** Checks every name of a path that will be created, and the path's length. */
function checkNewPath(ctx: Ctx, parent: ItemRec, names: string[], lastIsFolder: boolean): { code: string; message: string; inner: string } | null {
  for (let i = 0; i < names.length; i++) {
    const p = checkName(names[i]!, i < names.length - 1 || lastIsFolder);
    if (p) return { code: p.code, message: p.message, inner: p.inner };
  }
  const full = `${ctx.drive.pathOf(parent)}/${names.join('/')}`;
  if (full.length > MAX_PATH_CHARS) return { code: 'invalidRequest', message: 'The path is too long.', inner: 'pathIsTooLong' };
  return null;
}

/** Walks to the parent folder of a path-addressed new item, creating missing folders on the way. */
function ensureFolders(ctx: Ctx, from: ItemRec, names: string[]): ItemRec | { conflict: ItemRec } {
  let cur = from;
  for (const n of names) {
    const next = ctx.drive.child(cur, n);
    if (next && !next.isFolder) return { conflict: next };
    cur = next ?? ctx.drive.createFolder(cur, n);
  }
  return cur;
}

function sendItem(r: EmulatorRequest, status: number, body: Record<string, unknown>, graphBase: string): void {
  sendJson(r, status, { '@odata.context': `${graphBase}/$metadata#drives('${String((body.parentReference as { driveId?: string } | undefined)?.driveId ?? '')}')/items/$entity`, ...body }, graphHeaders(r));
}

/** Answers a request on the Graph host (or a `/v1.0/...` path). */
export async function handleGraph(ctx: Ctx, r: EmulatorRequest, rawPath: string): Promise<void> {
  let route: Route;
  try {
    route = parseRoute(ctx, rawPath);
  } catch (e) {
    if (e instanceof RouteError) {
      r.req.resume();
      sendGraphError(r, e.status, e.code, e.message);
      return;
    }
    throw e;
  }
  const access = authenticate(ctx, r);
  if (!access) {
    r.req.resume();
    return;
  }
  if (route.me && access.app) {
    r.req.resume();
    sendGraphError(r, 400, 'BadRequest', '/me request is only valid with delegated authentication flow.');
    return;
  }
  const b = bases(r);
  const rc = renderContext(r, route.pathPrefix);
  const select = r.url.searchParams.get('$select');

  if (route.kind === 'user') {
    if (r.method !== 'GET') return methodNotAllowed(r);
    sendJson(r, 200, { '@odata.context': `${b.graph}/$metadata#users/$entity`, id: ctx.user.id, displayName: ctx.user.displayName, userPrincipalName: ctx.user.userPrincipalName, mail: ctx.user.userPrincipalName }, graphHeaders(r));
    return;
  }
  if (route.kind === 'drive') {
    if (r.method !== 'GET') return methodNotAllowed(r);
    const used = ctx.drive.used();
    const total = ctx.drive.quotaTotal;
    const ratio = total > 0 ? used / total : 1;
    const state = ratio >= 1 ? 'exceeded' : ratio >= 0.99 ? 'critical' : ratio >= 0.9 ? 'nearing' : 'normal';
    sendJson(
      r,
      200,
      applySelect(
        {
          '@odata.context': `${b.graph}/$metadata#drives/$entity`,
          id: ctx.drive.id,
          driveType: 'personal',
          owner: { user: { displayName: ctx.user.displayName, id: ctx.user.id } },
          quota: { deleted: 0, remaining: Math.max(0, total - used), state, total, used },
        },
        select,
      ),
      graphHeaders(r),
    );
    return;
  }

  const base = baseItem(ctx, route);
  if (!base) {
    r.req.resume();
    sendGraphError(r, 404, 'itemNotFound', 'The resource could not be found.');
    return;
  }
  const segs = route.segments ?? [];
  const method = r.method;

  // Creating by path: PUT content and createUploadSession name a file that may not exist yet.
  if ((method === 'PUT' && route.action === 'content') || (method === 'POST' && route.action === 'createUploadSession')) {
    if (route.segments === null || segs.length === 0) {
      // Update of an existing file by id.
      if (base.isFolder) {
        r.req.resume();
        sendGraphError(r, 400, 'invalidRequest', 'The target item is a folder; only files have content.');
        return;
      }
      if (method === 'PUT') return simpleUpload(ctx, r, { parentId: base.parentId!, name: base.name, targetId: base.id }, b.graph, rc);
      return createSession(ctx, r, { parentId: base.parentId!, name: base.name, targetId: base.id });
    }
    if (!base.isFolder) {
      r.req.resume();
      sendGraphError(r, 404, 'itemNotFound', 'The resource could not be found.');
      return;
    }
    const problem = checkNewPath(ctx, base, segs, false);
    if (problem) {
      r.req.resume();
      sendGraphError(r, 400, problem.code, problem.message, { inner: problem.inner });
      return;
    }
    const parent = ensureFolders(ctx, base, segs.slice(0, -1));
    if ('conflict' in parent) {
      r.req.resume();
      sendGraphError(r, 409, 'nameAlreadyExists', 'The specified item name already exists.');
      return;
    }
    const where = { parentId: parent.id, name: segs[segs.length - 1]!, targetId: null };
    if (method === 'PUT') return simpleUpload(ctx, r, where, b.graph, rc);
    return createSession(ctx, r, where);
  }

  const item = route.segments === null ? base : ctx.drive.resolve(base, segs);
  if (!item) {
    r.req.resume();
    sendGraphError(r, 404, 'itemNotFound', 'The resource could not be found.');
    return;
  }

  switch (`${method} ${route.action}`) {
    case 'GET ':
      sendItem(r, 200, applySelect(renderItem(ctx.drive, item, rc), select), b.graph);
      return;
    case 'GET children':
      return listChildren(ctx, r, item, rawPath, b.graph, rc, select);
    case 'POST children':
      return createChild(ctx, r, item, b.graph, rc);
    case 'GET content':
      if (item.isFolder) {
        sendGraphError(r, 400, 'invalidRequest', 'Only files have content.');
        return;
      }
      sendEmpty(r, 302, { location: b.downloadUrl(downloadToken(item.id)), ...graphHeaders(r) });
      return;
    case 'PATCH ':
      return patchItem(ctx, r, item, b.graph, rc);
    case 'DELETE ': {
      if (item.parentId === null) {
        sendGraphError(r, 403, 'accessDenied', 'The root of a drive cannot be deleted.');
        return;
      }
      for (const blob of ctx.drive.remove(item)) await ctx.blobs.remove(blob);
      sendEmpty(r, 204, graphHeaders(r));
      return;
    }
    default:
      return methodNotAllowed(r);
  }
}

function methodNotAllowed(r: EmulatorRequest): void {
  r.req.resume();
  sendGraphError(r, 405, 'BadRequest', `The HTTP method '${r.method}' is not allowed on this resource.`);
}

function listChildren(ctx: Ctx, r: EmulatorRequest, folder: ItemRec, rawPath: string, graphBase: string, rc: RenderContext, select: string | null): void {
  const q = r.url.searchParams;
  let top = ctx.settings.pageSize;
  const topRaw = q.get('$top');
  if (topRaw !== null) {
    top = Number(topRaw);
    if (!Number.isInteger(top) || top < 1) {
      sendGraphError(r, 400, 'invalidRequest', `Invalid $top value: ${topRaw}`);
      return;
    }
  }
  let offset = 0;
  const skip = q.get('$skiptoken');
  if (skip !== null) {
    const decoded = Number(Buffer.from(skip, 'base64url').toString('utf8'));
    if (!Number.isInteger(decoded) || decoded < 0) {
      sendGraphError(r, 400, 'invalidRequest', 'The skip token is not valid.');
      return;
    }
    offset = decoded;
  }
  const children = [...folder.children.values()]
    .map((id) => ctx.drive.get(id)!)
    .sort((a, b) => (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : a.name.toLowerCase() > b.name.toLowerCase() ? 1 : 0));
  const page = children.slice(offset, offset + top);
  const body: Record<string, unknown> = {
    '@odata.context': `${graphBase}/$metadata#drives('${ctx.drive.id}')/items('${folder.id}')/children`,
    value: page.map((c) => applySelect(renderItem(ctx.drive, c, rc), select)),
  };
  if (offset + top < children.length) {
    const next = new URLSearchParams();
    if (select) next.set('$select', select);
    next.set('$top', String(top));
    next.set('$skiptoken', Buffer.from(String(offset + top)).toString('base64url'));
    body['@odata.nextLink'] = `${graphBase}${rawPath.slice('/v1.0'.length)}?${next.toString()}`;
  }
  sendJson(r, 200, body, graphHeaders(r));
}

/**
 * driveItem: update (`PATCH /items/{id}`), as far as the emulator goes: `fileSystemInfo`
 * (`createdDateTime`, `lastModifiedDateTime`: ISO 8601). Renames and moves (`name`,
 * `parentReference`) are not emulated and answer 400; unknown properties are ignored.
 */
async function patchItem(ctx: Ctx, r: EmulatorRequest, item: ItemRec, graphBase: string, rc: RenderContext): Promise<void> {
  let body: Record<string, unknown>;
  try {
    const raw = await readBody(r, 1 << 20);
    body = raw.length ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : {};
  } catch {
    sendGraphError(r, 400, 'invalidRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.');
    return;
  }
  if (body.name !== undefined || body.parentReference !== undefined) {
    sendGraphError(r, 400, 'invalidRequest', 'The emulator does not rename or move items.');
    return;
  }
  const fsInfo = (body.fileSystemInfo ?? {}) as Record<string, unknown>;
  const out: Partial<ItemRec['fileSystemInfo']> = {};
  for (const k of ['createdDateTime', 'lastModifiedDateTime'] as const) {
    const v = fsInfo[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || Number.isNaN(Date.parse(v))) {
      sendGraphError(r, 400, 'invalidRequest', `Invalid value for fileSystemInfo.${k}.`);
      return;
    }
    out[k] = new Date(v).toISOString();
  }
  ctx.drive.setFileSystemInfo(item, out);
  sendItem(r, 200, renderItem(ctx.drive, item, rc), graphBase);
}

async function createChild(ctx: Ctx, r: EmulatorRequest, parent: ItemRec, graphBase: string, rc: RenderContext): Promise<void> {
  let body: Record<string, unknown>;
  try {
    const raw = await readBody(r, 1 << 20);
    body = raw.length ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : {};
  } catch {
    sendGraphError(r, 400, 'invalidRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.');
    return;
  }
  if (!parent.isFolder) {
    sendGraphError(r, 400, 'invalidRequest', 'The parent item is not a folder.');
    return;
  }
  const name = body.name;
  if (typeof name !== 'string') {
    sendGraphError(r, 400, 'invalidRequest', 'Invalid request: the item needs a name.');
    return;
  }
  const isFolder = body.folder !== undefined && body.folder !== null;
  const isFile = !isFolder && body.file !== undefined && body.file !== null;
  if (!isFolder && !isFile) {
    sendGraphError(r, 400, 'invalidRequest', 'Must provide one of the following facets to create an item: Bundle, File, Folder, RemoteItem');
    return;
  }
  const conflictRaw = body['@microsoft.graph.conflictBehavior'] ?? body['@name.conflictBehavior'] ?? r.url.searchParams.get('@microsoft.graph.conflictBehavior') ?? undefined;
  const conflict = parseConflict(conflictRaw);
  if (conflict === null) {
    sendGraphError(r, 400, 'invalidRequest', `Invalid value for @microsoft.graph.conflictBehavior: ${String(conflictRaw)}`);
    return;
  }
  const problem = checkNewPath(ctx, parent, [name], isFolder);
  if (problem) {
    sendGraphError(r, 400, problem.code, problem.message, { inner: problem.inner });
    return;
  }
  const existing = ctx.drive.child(parent, name);
  let finalName = name;
  if (existing) {
    // Without a behaviour, Graph treats POST as "make sure it exists" (OneDrive API docs #323):
    // an existing folder is returned with 200, like `replace`.
    const behaviour = conflict ?? 'replace';
    if (behaviour === 'fail') {
      sendGraphError(r, 409, 'nameAlreadyExists', 'Name already exists');
      return;
    }
    if (behaviour === 'replace') {
      if (existing.isFolder && isFolder) {
        sendItem(r, 200, renderItem(ctx.drive, existing, rc), graphBase);
        return;
      }
      for (const blob of ctx.drive.remove(existing)) await ctx.blobs.remove(blob);
    } else {
      finalName = ctx.drive.uniqueName(parent, name, isFolder);
    }
  }
  let item: ItemRec;
  if (isFolder) item = ctx.drive.createFolder(parent, finalName);
  else item = ctx.drive.createFile(parent, finalName, { blob: await ctx.blobs.write(Buffer.alloc(0)), quickXorHash: 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' });
  sendItem(r, 201, renderItem(ctx.drive, item, rc), graphBase);
}

async function simpleUpload(
  ctx: Ctx,
  r: EmulatorRequest,
  where: { parentId: string; name: string; targetId: string | null },
  graphBase: string,
  rc: RenderContext,
): Promise<void> {
  const q = r.url.searchParams;
  const conflictRaw = q.get('@microsoft.graph.conflictBehavior') ?? q.get('@name.conflictBehavior') ?? undefined;
  const conflict = parseConflict(conflictRaw);
  if (conflict === null) {
    r.req.resume();
    sendGraphError(r, 400, 'invalidRequest', `Invalid value for @microsoft.graph.conflictBehavior: ${String(conflictRaw)}`);
    return;
  }
  const lengthHeader = r.req.headers['content-length'];
  if (lengthHeader === undefined) {
    r.req.resume();
    sendGraphError(r, 411, 'invalidRequest', 'A Content-Length header is required on the request.');
    return;
  }
  const length = Number(lengthHeader);
  if (length > ctx.settings.maxSimpleUploadBytes) {
    r.req.resume();
    sendGraphError(r, 413, 'invalidRequest', 'The request size exceeds the maximum limit of a simple upload; use an upload session.', { inner: 'maxFileSizeExceeded' });
    return;
  }
  let blob;
  try {
    blob = await ctx.blobs.write(r.req, length);
  } catch {
    r.res.destroy();
    return;
  }
  r.countBody(blob.size);
  if (blob.size !== length) {
    await ctx.blobs.remove(blob);
    sendGraphError(r, 400, 'invalidRequest', 'The request body is shorter than its Content-Length.');
    return;
  }
  // The default for PUT is replace (driveItem resource, instance attributes).
  const placed = await placeFile(ctx, { ...where, conflict: conflict ?? 'replace' }, blob);
  if (!placed.ok) {
    await ctx.blobs.remove(blob);
    sendPlaceError(r, placed);
    return;
  }
  sendItem(r, placed.created ? 201 : 200, renderItem(ctx.drive, placed.item, rc), graphBase);
}
