/**
 * The drive the emulator keeps: a tree of driveItems (folders and files), names compared without
 * regard to case as OneDrive does, bytes in the shared BlobStore, and the name rules OneDrive
 * enforces. Rendering follows the driveItem resource of Graph v1.0.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { BlobInfo } from '../harness/index.js';

export interface ItemRec {
  id: string;
  name: string;
  /** null for the root. */
  parentId: string | null;
  isFolder: boolean;
  /** Folders: lower-cased name → child id. */
  children: Map<string, string>;
  blob: BlobInfo | null;
  size: number;
  /** base64 QuickXorHash of the stored bytes at upload time (files). */
  quickXorHash: string;
  mimeType: string;
  createdDateTime: string;
  lastModifiedDateTime: string;
  fileSystemInfo: { createdDateTime: string; lastModifiedDateTime: string };
  /** Bumped on every change; part of eTag and cTag. */
  version: number;
  tagId: string;
}

/** What OneDrive refuses in a name, as a Graph error to return. */
export interface NameProblem {
  code: 'invalidRequest';
  inner: string;
  message: string;
}

const FORBIDDEN_CHARS = /["*:<>?/\\|]/;
// Support article "Restrictions and limitations in OneDrive and SharePoint": names not allowed.
const RESERVED = new Set(['.lock', 'con', 'prn', 'aux', 'nul', 'desktop.ini', ...Array.from({ length: 10 }, (_, i) => `com${i}`), ...Array.from({ length: 10 }, (_, i) => `lpt${i}`)]);

/**
 * The name rules of OneDrive (reserved characters from "Addressing resources", reserved names and
 * `~$` / `_vti_` from the support article), or null when the name is accepted.
 */
export function checkName(name: string, isFolder: boolean): NameProblem | null {
  const bad = (message: string, inner = 'nameContainsInvalidCharacters'): NameProblem => ({ code: 'invalidRequest', inner, message });
  if (name.length === 0) return bad('The name is empty.', 'invalidName');
  if (FORBIDDEN_CHARS.test(name)) return bad('A name cannot contain any of the following characters: " * : < > ? / \\ |');
  if (/[\u0000-\u001f]/.test(name)) return bad('A name cannot contain control characters.');
  if (name !== name.trim()) return bad('A name cannot begin or end with a space.');
  const lower = name.toLowerCase();
  if (RESERVED.has(lower)) return bad(`The name "${name}" is reserved.`, 'invalidName');
  if (lower.includes('_vti_')) return bad('A name cannot contain "_vti_".', 'invalidName');
  if (name.startsWith('~$')) return bad('A name cannot begin with "~$".', 'invalidName');
  if (isFolder && name.endsWith('.')) return bad('A folder name cannot end with a period.', 'invalidName');
  return null;
}

/** The largest decoded path OneDrive accepts, in characters ("less than 400"). */
export const MAX_PATH_CHARS = 399;

const MIME: Record<string, string> = {
  '.txt': 'text/plain',
  '.json': 'application/json',
  '.html': 'text/html',
  '.csv': 'text/csv',
  '.xml': 'text/xml',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.mp4': 'video/mp4',
};

export function mimeTypeOf(name: string): string {
  return MIME[path.extname(name).toLowerCase()] ?? 'application/octet-stream';
}

export class Drive {
  readonly items = new Map<string, ItemRec>();
  readonly rootId: string;
  private nextId = 101;
  quotaTotal: number;

  constructor(
    readonly id: string,
    quotaTotal: number,
    readonly owner: { id: string; displayName: string },
  ) {
    this.quotaTotal = quotaTotal;
    this.rootId = this.newId();
    const now = new Date().toISOString();
    this.items.set(this.rootId, {
      id: this.rootId,
      name: 'root',
      parentId: null,
      isFolder: true,
      children: new Map(),
      blob: null,
      size: 0,
      quickXorHash: '',
      mimeType: '',
      createdDateTime: now,
      lastModifiedDateTime: now,
      fileSystemInfo: { createdDateTime: now, lastModifiedDateTime: now },
      version: 1,
      tagId: randomUUID().toUpperCase(),
    });
  }

  /** OneDrive Personal style ids: drive id in upper case, `!`, a counter. */
  private newId(): string {
    return `${this.id.toUpperCase()}!${this.nextId++}`;
  }

  get root(): ItemRec {
    return this.items.get(this.rootId)!;
  }

  get(id: string): ItemRec | undefined {
    // Ids are case-insensitive on OneDrive Personal.
    return this.items.get(id) ?? this.items.get(id.toUpperCase());
  }

  child(parent: ItemRec, name: string): ItemRec | undefined {
    const id = parent.children.get(name.toLowerCase());
    return id === undefined ? undefined : this.items.get(id);
  }

  /** Walks `segments` below `from`; null when a segment is missing or passes through a file. */
  resolve(from: ItemRec, segments: string[]): ItemRec | null {
    let cur: ItemRec = from;
    for (const s of segments) {
      if (!cur.isFolder) return null;
      const next = this.child(cur, s);
      if (!next) return null;
      cur = next;
    }
    return cur;
  }

  /** `/a/b` for an item (empty string for the root). */
  pathOf(item: ItemRec): string {
    const parts: string[] = [];
    let cur: ItemRec | undefined = item;
    while (cur && cur.parentId !== null) {
      parts.unshift(cur.name);
      cur = this.items.get(cur.parentId);
    }
    return parts.length ? '/' + parts.join('/') : '';
  }

  /** Bytes of every file in the drive (the quota's `used`). */
  used(): number {
    let n = 0;
    for (const it of this.items.values()) if (!it.isFolder) n += it.size;
    return n;
  }

  /** A folder's size is the total of the files below it, as Graph reports. */
  sizeOf(item: ItemRec): number {
    if (!item.isFolder) return item.size;
    let n = 0;
    for (const id of item.children.values()) n += this.sizeOf(this.items.get(id)!);
    return n;
  }

  /** `name 1.ext`, `name 2.ext`, …: the first free name, as conflictBehavior=rename picks. */
  uniqueName(parent: ItemRec, name: string, isFolder: boolean): string {
    if (!this.child(parent, name)) return name;
    const ext = isFolder ? '' : path.extname(name);
    const stem = ext ? name.slice(0, -ext.length) : name;
    for (let i = 1; ; i++) {
      const candidate = `${stem} ${i}${ext}`;
      if (!this.child(parent, candidate)) return candidate;
    }
  }

  /** driveItem: update of `fileSystemInfo` (the client's own times); bumps the version. */
  setFileSystemInfo(item: ItemRec, fsInfo: Partial<ItemRec['fileSystemInfo']>): void {
    if (fsInfo.createdDateTime) item.fileSystemInfo.createdDateTime = fsInfo.createdDateTime;
    if (fsInfo.lastModifiedDateTime) item.fileSystemInfo.lastModifiedDateTime = fsInfo.lastModifiedDateTime;
    this.touch(item);
  }

  private touch(item: ItemRec): void {
    const now = new Date().toISOString();
    item.version++;
    item.lastModifiedDateTime = now;
  }

  private link(parent: ItemRec, item: ItemRec): void {
    parent.children.set(item.name.toLowerCase(), item.id);
    this.items.set(item.id, item);
    this.touch(parent);
  }

  createFolder(parent: ItemRec, name: string): ItemRec {
    const now = new Date().toISOString();
    const item: ItemRec = {
      id: this.newId(),
      name,
      parentId: parent.id,
      isFolder: true,
      children: new Map(),
      blob: null,
      size: 0,
      quickXorHash: '',
      mimeType: '',
      createdDateTime: now,
      lastModifiedDateTime: now,
      fileSystemInfo: { createdDateTime: now, lastModifiedDateTime: now },
      version: 1,
      tagId: randomUUID().toUpperCase(),
    };
    this.link(parent, item);
    return item;
  }

  /** A new file under `parent` (the name must be free). */
  createFile(parent: ItemRec, name: string, content: { blob: BlobInfo; quickXorHash: string }, fsInfo?: Partial<ItemRec['fileSystemInfo']>): ItemRec {
    const now = new Date().toISOString();
    const item: ItemRec = {
      id: this.newId(),
      name,
      parentId: parent.id,
      isFolder: false,
      children: new Map(),
      blob: content.blob,
      size: content.blob.size,
      quickXorHash: content.quickXorHash,
      mimeType: mimeTypeOf(name),
      createdDateTime: now,
      lastModifiedDateTime: now,
      fileSystemInfo: { createdDateTime: fsInfo?.createdDateTime ?? now, lastModifiedDateTime: fsInfo?.lastModifiedDateTime ?? now },
      version: 1,
      tagId: randomUUID().toUpperCase(),
    };
    this.link(parent, item);
    return item;
  }

  /** New content for an existing file; returns the blob it held (the caller frees it). */
  replaceContent(item: ItemRec, content: { blob: BlobInfo; quickXorHash: string }, fsInfo?: Partial<ItemRec['fileSystemInfo']>): BlobInfo | null {
    const old = item.blob;
    item.blob = content.blob;
    item.size = content.blob.size;
    item.quickXorHash = content.quickXorHash;
    this.touch(item);
    item.fileSystemInfo.lastModifiedDateTime = fsInfo?.lastModifiedDateTime ?? item.lastModifiedDateTime;
    if (fsInfo?.createdDateTime) item.fileSystemInfo.createdDateTime = fsInfo.createdDateTime;
    return old;
  }

  /** Removes an item and everything below it; returns the blobs to free. */
  remove(item: ItemRec): BlobInfo[] {
    const blobs: BlobInfo[] = [];
    const walk = (it: ItemRec): void => {
      for (const id of it.children.values()) walk(this.items.get(id)!);
      if (it.blob) blobs.push(it.blob);
      this.items.delete(it.id);
    };
    walk(item);
    if (item.parentId !== null) {
      const parent = this.items.get(item.parentId)!;
      parent.children.delete(item.name.toLowerCase());
      this.touch(parent);
    }
    return blobs;
  }

  /** Every item but the root, with its path (the browse page). */
  all(): Array<{ path: string; item: ItemRec }> {
    const out: Array<{ path: string; item: ItemRec }> = [];
    for (const it of this.items.values()) if (it.parentId !== null) out.push({ path: this.pathOf(it), item: it });
    return out;
  }

  /** Every file with its path (for inspection). */
  files(): Array<{ path: string; item: ItemRec }> {
    const out: Array<{ path: string; item: ItemRec }> = [];
    for (const it of this.items.values()) if (!it.isFolder) out.push({ path: this.pathOf(it), item: it });
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}

export interface RenderContext {
  /** The drive-relative prefix Graph writes in parentReference.path: `/drive` or `/drives/{id}`. */
  pathPrefix: string;
  /** Builds the pre-authenticated download URL for a file. */
  downloadUrl(item: ItemRec): string;
}

/** The driveItem resource (default property set) Graph returns. */
export function renderItem(drive: Drive, item: ItemRec, ctx: RenderContext): Record<string, unknown> {
  const user = { user: { displayName: drive.owner.displayName, id: drive.owner.id } };
  const out: Record<string, unknown> = {
    createdDateTime: item.createdDateTime,
    cTag: `"c:{${item.tagId}},${item.version}"`,
    eTag: `"{${item.tagId}},${item.version}"`,
    id: item.id,
    lastModifiedDateTime: item.lastModifiedDateTime,
    name: item.name,
    size: drive.sizeOf(item),
    webUrl: `https://onedrive.live.com/?id=${encodeURIComponent(item.id)}`,
    createdBy: user,
    lastModifiedBy: user,
    fileSystemInfo: { ...item.fileSystemInfo },
  };
  if (item.parentId !== null) {
    const parent = drive.get(item.parentId)!;
    out.parentReference = {
      driveId: drive.id,
      driveType: 'personal',
      id: parent.id,
      name: parent.parentId === null ? 'root' : parent.name,
      path: `${ctx.pathPrefix}/root:${drive.pathOf(parent)}`,
    };
  } else {
    out.root = {};
    out.parentReference = { driveId: drive.id, driveType: 'personal' };
  }
  if (item.isFolder) {
    out.folder = { childCount: item.children.size };
  } else {
    out['@microsoft.graph.downloadUrl'] = ctx.downloadUrl(item);
    out.file = { mimeType: item.mimeType, hashes: { quickXorHash: item.quickXorHash } };
  }
  return out;
}

/** Applies `$select` (comma-separated top-level properties) as Graph does. */
export function applySelect(obj: Record<string, unknown>, select: string | null): Record<string, unknown> {
  if (!select) return obj;
  const keep = new Set(select.split(',').map((s) => s.trim()).filter(Boolean));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (keep.has(k) || k.startsWith('@odata')) out[k] = v;
  return out;
}
