/**
 * State and helpers the Drive handlers share: the model, quotas, the daily upload cap, the
 * `fields` parameter, metadata validation for create and update, and draining unread bodies.
 */
import type { BlobInfo, BlobStore, EmulatorRequest } from '../harness/index.js';
import { DRIVE_ERRORS, DriveHttpError, badRequest, invalidParam, notFound, type DriveErrorSpec } from './errors.js';
import { FieldMaskError, applyMask, parseFieldMask, validateMask, type FieldMask, type FieldSchema } from './fields.js';
import { FOLDER_MIME, type DriveFile, type DriveModel, type StoredContent } from './model.js';

export interface DriveState {
  model: DriveModel;
  blobs: BlobStore;
  /** Storage quota in bytes; null is unlimited. */
  storageQuota: number | null;
  /** Upload bytes allowed per rolling 24 h; null is unlimited (Google: 750 GB). */
  dailyCap: number | null;
  /** Upload bytes received, with when. */
  uploadLog: Array<{ at: number; bytes: number }>;
  /** Uploads whose stored bytes get one byte flipped before hashing. */
  corruptNext: number;
  /** The next resumable chunk keeps only this many of its new bytes (256 KiB multiples). */
  shortenNext: number | null;
  sessionTtlMs: number;
  /**
   * The most files one `files.list` page holds whatever `pageSize` asks (null: `pageSize`). Drive
   * documents short pages: "Partial or empty result pages are possible even before the end of
   * the files list has been reached" (https://developers.google.com/drive/api/reference/rest/v3/files/list).
   */
  maxPageSize: number | null;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export function dailyUsage(s: DriveState): number {
  const since = Date.now() - DAY_MS;
  s.uploadLog = s.uploadLog.filter((e) => e.at > since);
  return s.uploadLog.reduce((a, e) => a + e.bytes, 0);
}

export function recordUpload(s: DriveState, bytes: number): void {
  if (bytes > 0) s.uploadLog.push({ at: Date.now(), bytes });
}

/**
 * Checks made when an upload starts: the daily cap refuses new uploads once reached (one already
 * going is let finish), and a declared size that cannot fit the storage quota is refused.
 */
export function checkUploadStart(s: DriveState, declared: number | null): void {
  if (s.dailyCap !== null && dailyUsage(s) >= s.dailyCap) throw new DriveHttpError(DRIVE_ERRORS.dailyUploadCap);
  if (s.storageQuota !== null) {
    const usage = s.model.usage();
    if (usage >= s.storageQuota || (declared !== null && usage + declared > s.storageQuota)) {
      throw new DriveHttpError(DRIVE_ERRORS.storageQuotaExceeded);
    }
  }
}

/** The storage check on the real size, once the bytes are in. */
export function checkStorageFinal(s: DriveState, size: number, replacing: number): void {
  if (s.storageQuota !== null && s.model.usage() - replacing + size > s.storageQuota) {
    throw new DriveHttpError(DRIVE_ERRORS.storageQuotaExceeded);
  }
}

/**
 * Flips a byte when a test asked for it, then hashes: what Drive reports for these bytes. `md5`,
 * when given, is that of the bytes as received (hashed while they arrived).
 */
export async function finishContent(s: DriveState, blob: BlobInfo, md5?: string): Promise<StoredContent> {
  if (s.corruptNext > 0 && blob.size > 0) {
    s.corruptNext -= 1;
    await s.blobs.corrupt(blob);
    md5 = undefined;
  }
  return { blob, size: blob.size, md5: md5 ?? (await s.model.md5Of(blob)) };
}

/** The `fields` parameter of a request, validated; the default mask when absent. */
export function maskFor(url: URL, schema: FieldSchema, fallback: FieldMask): FieldMask {
  const raw = url.searchParams.get('fields');
  if (raw === null || raw === '') return fallback;
  try {
    const mask = parseFieldMask(raw);
    validateMask(mask, schema);
    return mask;
  } catch (e) {
    if (e instanceof FieldMaskError) throw new DriveHttpError(invalidParam('fields', e.message));
    throw e;
  }
}

export function render(s: DriveState, f: DriveFile, mask: FieldMask): unknown {
  return applyMask(s.model.resource(f), mask);
}

/** Waits until the request body is consumed or the connection is gone. */
export function drain(r: EmulatorRequest): Promise<void> {
  const req = r.req;
  if (req.readableEnded || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
    });
    const done = () => {
      r.countBody(n);
      resolve();
    };
    req.once('end', done);
    req.once('close', done);
    req.once('error', done);
    req.resume();
  });
}

const CREATE_WRITABLE = new Set([
  'id', 'name', 'mimeType', 'parents', 'description', 'starred', 'properties', 'appProperties',
  'originalFilename', 'modifiedTime', 'createdTime', 'contentHints', 'folderColorRgb', 'writersCanShare',
  'copyRequiresWriterPermission', 'viewersCanCopyContent', 'contentRestrictions', 'shortcutDetails',
  'trashed', 'kind', 'viewedByMeTime', 'inheritedPermissionsDisabled', 'downloadRestrictions',
]);
const UPDATE_WRITABLE = new Set([
  'name', 'mimeType', 'description', 'starred', 'trashed', 'properties', 'appProperties', 'originalFilename',
  'modifiedTime', 'contentHints', 'folderColorRgb', 'writersCanShare', 'copyRequiresWriterPermission',
  'viewersCanCopyContent', 'contentRestrictions', 'kind', 'viewedByMeTime', 'inheritedPermissionsDisabled',
  'downloadRestrictions',
]);
const READ_ONLY = new Set([
  'size', 'md5Checksum', 'sha1Checksum', 'sha256Checksum', 'version', 'webContentLink', 'webViewLink', 'iconLink',
  'hasThumbnail', 'thumbnailLink', 'thumbnailVersion', 'viewedByMe', 'modifiedByMeTime', 'modifiedByMe',
  'sharedWithMeTime', 'shared', 'ownedByMe', 'permissionIds', 'hasAugmentedPermissions', 'fullFileExtension',
  'fileExtension', 'quotaBytesUsed', 'headRevisionId', 'isAppAuthorized', 'driveId', 'teamDriveId', 'owners',
  'lastModifyingUser', 'capabilities', 'spaces', 'explicitlyTrashed', 'trashingUser', 'trashedTime',
  'sharingUser', 'permissions', 'exportLinks', 'resourceKey', 'imageMediaMetadata', 'videoMediaMetadata',
  'linkShareMetadata', 'labelInfo',
]);

const notWritable: DriveErrorSpec = {
  code: 403,
  reason: 'fieldNotWritable',
  message: 'The resource body includes fields which are not directly writable.',
};

function checkBody(body: Record<string, unknown>, writable: Set<string>): void {
  for (const k of Object.keys(body)) {
    if (writable.has(k)) continue;
    if (READ_ONLY.has(k) || k === 'parents') {
      if (k === 'parents') {
        throw new DriveHttpError({
          ...notWritable,
          message: 'The parents field is not directly writable in update requests. Use the addParents and removeParents parameters instead.',
        });
      }
      throw new DriveHttpError(notWritable);
    }
    throw new DriveHttpError({ code: 400, reason: 'invalid', message: `Invalid JSON payload received. Unknown name "${k}": Cannot find field.` });
  }
}

function stringMap(v: unknown, field: string): Record<string, string | null> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new DriveHttpError(invalidParam(field));
  return v as Record<string, string | null>;
}

function parseTime(v: unknown, field: string): number {
  const t = typeof v === 'string' ? Date.parse(v) : Number.NaN;
  if (Number.isNaN(t)) throw new DriveHttpError(invalidParam(field));
  return t;
}

/** Parses a JSON metadata body into an object (400 on anything else). */
export function parseMetadata(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new DriveHttpError({ code: 400, reason: 'parseError', message: 'Parse Error' });
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new DriveHttpError({ code: 400, reason: 'parseError', message: 'Parse Error' });
  return v as Record<string, unknown>;
}

/** A validated create request; `commit` makes the file (re-checking the parent, which may be gone by then). */
export interface PreparedCreate {
  init: Omit<Partial<DriveFile>, 'mimeType'> & { name: string; mimeType: string | null; parents: string[] };
}

function requireFolderParent(s: DriveState, parentId: string): string {
  const p = s.model.get(parentId);
  if (!p) throw new DriveHttpError({ ...notFound(parentId), location: undefined, locationType: undefined });
  if (!s.model.isFolder(p)) throw new DriveHttpError(badRequest('The specified parent is not a folder.'));
  return p.id;
}

/** Validates create metadata (files.create body or the JSON part of an upload). */
export function prepareCreate(s: DriveState, body: Record<string, unknown>): PreparedCreate {
  checkBody(body, CREATE_WRITABLE);
  const name = body.name === undefined ? 'Untitled' : body.name;
  if (typeof name !== 'string') throw new DriveHttpError(invalidParam('name'));
  const mimeType = body.mimeType === undefined ? null : body.mimeType;
  if (mimeType !== null && typeof mimeType !== 'string') throw new DriveHttpError(invalidParam('mimeType'));
  let parents: string[] = [s.model.rootId];
  if (body.parents !== undefined) {
    if (!Array.isArray(body.parents) || body.parents.some((p) => typeof p !== 'string')) throw new DriveHttpError(invalidParam('parents'));
    if (body.parents.length > 1) {
      throw new DriveHttpError({ code: 403, reason: 'cannotAddParent', message: 'Increasing the number of parents is not allowed.' });
    }
    if (body.parents.length === 1) parents = [requireFolderParent(s, body.parents[0] as string)];
  }
  const init: PreparedCreate['init'] = { name, mimeType, parents };
  if (body.id !== undefined) {
    if (typeof body.id !== 'string' || !/^[A-Za-z0-9_-]{10,}$/.test(body.id)) throw new DriveHttpError(invalidParam('id'));
    if (s.model.files.has(body.id)) {
      throw new DriveHttpError({ code: 409, reason: 'duplicate', message: 'A file already exists with the provided ID.' });
    }
    init.id = body.id;
  }
  if (body.description !== undefined) init.description = String(body.description);
  if (body.starred !== undefined) init.starred = body.starred === true;
  if (body.originalFilename !== undefined) init.originalFilename = String(body.originalFilename);
  if (body.properties !== undefined) init.properties = dropNulls(stringMap(body.properties, 'properties'));
  if (body.appProperties !== undefined) init.appProperties = dropNulls(stringMap(body.appProperties, 'appProperties'));
  if (body.createdTime !== undefined) init.createdTime = parseTime(body.createdTime, 'createdTime');
  if (body.modifiedTime !== undefined) init.modifiedTime = parseTime(body.modifiedTime, 'modifiedTime');
  if (body.trashed === true) init.explicitlyTrashed = true;
  return { init };
}

function dropNulls(m: Record<string, string | null>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) if (v !== null) out[k] = String(v);
  return out;
}

/** Makes the file of a prepared create (content already stored when given). */
export function commitCreate(s: DriveState, p: PreparedCreate, content: StoredContent | null, fallbackMime: string): DriveFile {
  const parent = s.model.get(p.init.parents[0]!);
  if (!parent) throw new DriveHttpError(notFound(p.init.parents[0]!));
  const mimeType = p.init.mimeType ?? (content ? fallbackMime : 'application/octet-stream');
  const f = s.model.create({ ...p.init, mimeType });
  if (content && mimeType !== FOLDER_MIME) {
    s.model.setContent(f, content);
    f.version = 1;
    if (p.init.modifiedTime !== undefined) f.modifiedTime = p.init.modifiedTime;
  }
  return f;
}

/**
 * Applies an update: writable body fields, then `addParents`/`removeParents` from the query (a
 * file keeps exactly one parent). Validates everything before changing anything.
 */
export function applyUpdate(s: DriveState, f: DriveFile, body: Record<string, unknown>, url: URL): void {
  checkBody(body, UPDATE_WRITABLE);
  const add = (url.searchParams.get('addParents') ?? '').split(',').filter(Boolean).map((id) => s.model.resolveId(id));
  const remove = (url.searchParams.get('removeParents') ?? '').split(',').filter(Boolean).map((id) => s.model.resolveId(id));
  let parents = f.parents.filter((p) => !remove.includes(p));
  for (const a of add) {
    const id = requireFolderParent(s, a);
    if (s.model.isAncestor(f.id, id)) throw new DriveHttpError(badRequest('Cannot add a parent that would create a cycle.'));
    if (!parents.includes(id)) parents = [...parents, id];
  }
  if (f.id !== s.model.rootId && parents.length !== 1) {
    throw new DriveHttpError(
      parents.length > 1
        ? { code: 403, reason: 'cannotAddParent', message: 'Increasing the number of parents is not allowed.' }
        : { code: 400, reason: 'badRequest', message: 'A file must have a parent.' },
    );
  }
  if (body.name !== undefined && typeof body.name !== 'string') throw new DriveHttpError(invalidParam('name'));
  if (body.mimeType !== undefined && typeof body.mimeType !== 'string') throw new DriveHttpError(invalidParam('mimeType'));
  const modified = body.modifiedTime !== undefined ? parseTime(body.modifiedTime, 'modifiedTime') : undefined;
  const props = body.properties !== undefined ? stringMap(body.properties, 'properties') : undefined;
  const appProps = body.appProperties !== undefined ? stringMap(body.appProperties, 'appProperties') : undefined;

  if (typeof body.name === 'string') f.name = body.name;
  if (typeof body.mimeType === 'string') f.mimeType = body.mimeType;
  if (body.description !== undefined) f.description = String(body.description);
  if (body.starred !== undefined) f.starred = body.starred === true;
  if (body.trashed !== undefined) f.explicitlyTrashed = body.trashed === true;
  if (body.originalFilename !== undefined) f.originalFilename = String(body.originalFilename);
  // properties merge key by key; a null value deletes the key
  for (const [bag, patch] of [[f.properties, props], [f.appProperties, appProps]] as const) {
    if (!patch) continue;
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete bag[k];
      else bag[k] = String(v);
    }
  }
  f.parents = parents;
  s.model.touch(f);
  if (modified !== undefined) f.modifiedTime = modified;
}
