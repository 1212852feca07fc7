/**
 * The metadata side of Drive v3: `files.list` (with `q`, paging, `orderBy`, `fields`),
 * `files.get` (also `alt=media` downloads with Range), `files.create` without media (folders),
 * `files.update` (PATCH) without media, `files.delete`, and `about.get`.
 */
import { createReadStream } from 'node:fs';
import type { EmulatorRequest } from '../harness/index.js';
import { readBody, sendEmpty, sendJson } from '../harness/index.js';
import { DriveHttpError, invalidParam, notFound } from './errors.js';
import { ABOUT_SCHEMA, DEFAULT_FILE_MASK, DEFAULT_LIST_MASK, FILE_LIST_SCHEMA, FILE_SCHEMA, applyMask } from './fields.js';
import { FOLDER_MIME, type DriveFile } from './model.js';
import { QueryError, evaluate, parseQuery } from './query.js';
import {
  applyUpdate,
  commitCreate,
  finishContent,
  maskFor,
  parseMetadata,
  prepareCreate,
  render,
  type DriveState,
} from './context.js';

const ORDER_KEYS = new Set([
  'createdTime', 'folder', 'modifiedByMeTime', 'modifiedTime', 'name', 'name_natural', 'quotaBytesUsed',
  'recency', 'sharedWithMeTime', 'starred', 'viewedByMeTime',
]);

function comparator(s: DriveState, orderBy: string): (a: DriveFile, b: DriveFile) => number {
  const keys = orderBy.split(',').map((k) => k.trim()).filter(Boolean).map((k) => {
    const [key, dir, extra] = k.split(/\s+/);
    if (!key || !ORDER_KEYS.has(key) || extra !== undefined || (dir !== undefined && dir.toLowerCase() !== 'desc')) {
      throw new DriveHttpError(invalidParam('orderBy'));
    }
    return { key, desc: dir !== undefined };
  });
  const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });
  return (a, b) => {
    for (const { key, desc } of keys) {
      let c = 0;
      if (key === 'folder') c = Number(s.model.isFolder(b)) - Number(s.model.isFolder(a));
      else if (key === 'name') c = a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
      else if (key === 'name_natural') c = collator.compare(a.name, b.name);
      else if (key === 'createdTime') c = a.createdTime - b.createdTime;
      else if (key === 'quotaBytesUsed') c = a.size - b.size;
      else if (key === 'starred') c = Number(b.starred) - Number(a.starred);
      else c = a.modifiedTime - b.modifiedTime;
      if (c !== 0) return desc ? -c : c;
    }
    return 0;
  };
}

interface PageToken {
  o: number;
  q: string;
}

export function handleList(s: DriveState, r: EmulatorRequest): void {
  const url = r.url;
  const mask = maskFor(url, FILE_LIST_SCHEMA, DEFAULT_LIST_MASK);
  const sizeRaw = url.searchParams.get('pageSize');
  const asked = sizeRaw === null ? 100 : Number(sizeRaw);
  if (!Number.isInteger(asked) || asked < 1 || asked > 1000) throw new DriveHttpError(invalidParam('pageSize'));
  const pageSize = Math.min(asked, s.maxPageSize ?? asked);
  const qRaw = url.searchParams.get('q') ?? '';
  let query;
  try {
    query = parseQuery(qRaw);
  } catch (e) {
    if (e instanceof QueryError) throw new DriveHttpError(invalidParam('q'));
    throw e;
  }
  let offset = 0;
  const tokenRaw = url.searchParams.get('pageToken');
  if (tokenRaw) {
    let t: PageToken | null = null;
    try {
      t = JSON.parse(Buffer.from(tokenRaw, 'base64url').toString('utf8')) as PageToken;
    } catch {
      t = null;
    }
    if (!t || typeof t.o !== 'number' || t.q !== qRaw) throw new DriveHttpError(invalidParam('pageToken'));
    offset = t.o;
  }
  const spaces = (url.searchParams.get('spaces') ?? 'drive').split(',');
  let matches: DriveFile[] = [];
  if (spaces.includes('drive')) {
    const ctx = { rootId: s.model.rootId };
    for (const f of s.model.files.values()) {
      if (f.id === s.model.rootId) continue;
      if (evaluate(query, s.model.queryView(f), ctx)) matches.push(f);
    }
  }
  const orderBy = url.searchParams.get('orderBy');
  if (orderBy) matches = [...matches].sort(comparator(s, orderBy));
  const page = matches.slice(offset, offset + pageSize);
  const body: Record<string, unknown> = { kind: 'drive#fileList', incompleteSearch: false, files: page.map((f) => s.model.resource(f)) };
  if (offset + pageSize < matches.length) {
    body.nextPageToken = Buffer.from(JSON.stringify({ o: offset + pageSize, q: qRaw } satisfies PageToken)).toString('base64url');
  }
  sendJson(r, 200, applyMask(body, mask));
}

export function getFile(s: DriveState, id: string): DriveFile {
  const f = s.model.get(id);
  if (!f) throw new DriveHttpError(notFound(id));
  return f;
}

export async function handleGet(s: DriveState, r: EmulatorRequest, id: string): Promise<void> {
  const f = getFile(s, id);
  if (r.url.searchParams.get('alt') !== 'media') {
    sendJson(r, 200, render(s, f, maskFor(r.url, FILE_SCHEMA, DEFAULT_FILE_MASK)));
    return;
  }
  if (!f.blob) {
    throw new DriveHttpError({
      code: 403,
      reason: 'fileNotDownloadable',
      message: 'Only files with binary content can be downloaded. Use Export with Docs Editors files.',
      location: 'alt',
      locationType: 'parameter',
    });
  }
  const size = f.size;
  const range = /^bytes=(\d*)-(\d*)$/.exec(r.req.headers.range ?? '');
  let start = 0;
  let end = size - 1;
  let status = 200;
  const headers: Record<string, string> = { 'content-type': f.mimeType, 'accept-ranges': 'bytes' };
  if (range && (range[1] || range[2])) {
    if (range[1]) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    } else {
      start = Math.max(0, size - Number(range[2]));
    }
    if (start > end || start >= size) {
      r.res.writeHead(416, { 'content-range': `bytes */${size}`, 'content-length': '0' });
      r.res.end();
      return;
    }
    status = 206;
    headers['content-range'] = `bytes ${start}-${end}/${size}`;
  }
  headers['content-length'] = String(size === 0 ? 0 : end - start + 1);
  r.res.writeHead(status, headers);
  if (size === 0) {
    r.res.end();
    return;
  }
  const stream = createReadStream(f.blob.file, { start, end });
  stream.on('error', () => r.res.destroy());
  stream.pipe(r.res);
}

/** `files.create` without media: folders, and empty files. */
export async function handleCreate(s: DriveState, r: EmulatorRequest): Promise<void> {
  const mask = maskFor(r.url, FILE_SCHEMA, DEFAULT_FILE_MASK);
  const body = parseMetadata(await readBody(r, 1 << 20));
  const p = prepareCreate(s, body);
  const mime = p.init.mimeType ?? 'application/octet-stream';
  // A metadata-only file that is not a Google type has content: zero bytes, with their hashes.
  const content = mime === FOLDER_MIME || mime.startsWith('application/vnd.google-apps.')
    ? null
    : await finishContent(s, await s.blobs.write(Buffer.alloc(0)));
  const f = commitCreate(s, p, content, mime);
  sendJson(r, 200, render(s, f, mask));
}

export async function handleUpdate(s: DriveState, r: EmulatorRequest, id: string): Promise<void> {
  const mask = maskFor(r.url, FILE_SCHEMA, DEFAULT_FILE_MASK);
  const body = parseMetadata(await readBody(r, 1 << 20));
  const f = getFile(s, id);
  applyUpdate(s, f, body, r.url);
  sendJson(r, 200, render(s, f, mask));
}

export async function handleDelete(s: DriveState, r: EmulatorRequest, id: string): Promise<void> {
  const f = getFile(s, id);
  if (f.id === s.model.rootId) {
    throw new DriveHttpError({ code: 403, reason: 'insufficientFilePermissions', message: 'The user does not have sufficient permissions for this file.' });
  }
  for (const b of s.model.remove(f.id)) await s.blobs.remove(b);
  sendEmpty(r, 204);
}

export function handleAbout(s: DriveState, r: EmulatorRequest): void {
  if (!r.url.searchParams.get('fields')) {
    throw new DriveHttpError({
      code: 400,
      reason: 'required',
      message: "The 'fields' parameter is required for this method.",
      location: 'fields',
      locationType: 'parameter',
    });
  }
  const mask = maskFor(r.url, ABOUT_SCHEMA, DEFAULT_FILE_MASK);
  const usage = s.model.usage();
  let trash = 0;
  for (const f of s.model.files.values()) if (s.model.isTrashed(f)) trash += f.size;
  const storageQuota: Record<string, string> = { usage: String(usage), usageInDrive: String(usage), usageInDriveTrash: String(trash) };
  if (s.storageQuota !== null) storageQuota.limit = String(s.storageQuota);
  const about = {
    kind: 'drive#about',
    user: { kind: 'drive#user', displayName: s.model.user.displayName, me: true, permissionId: s.model.user.permissionId, emailAddress: s.model.user.emailAddress },
    storageQuota,
    maxUploadSize: '5497558138880',
    appInstalled: false,
    canCreateDrives: false,
  };
  sendJson(r, 200, applyMask(about, mask));
}
