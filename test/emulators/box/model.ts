/**
 * The Box emulator's content model: one user's tree of folders and files (root folder id `0`),
 * file versions backed by blobs on disk, Box's name rules and the JSON representations Box
 * returns (mini, standard, `fields`-selected).
 */
import type { BlobInfo } from '../harness/index.js';

/** The account's user: owner, creator and modifier of every item. */
export interface BoxUser {
  id: string;
  name: string;
  login: string;
}

/** A folder as the emulator stores it. */
export interface FolderNode {
  kind: 'folder';
  id: string;
  name: string;
  /** null only for the root folder `0`. */
  parentId: string | null;
  /** Bumped on every change of the item; Box's `sequence_id` and `etag` are its string form. */
  sequenceId: number;
  createdAt: string;
  modifiedAt: string;
}

/** One stored version of a file (its bytes live in a blob on disk). */
export interface FileVersion {
  id: string;
  blob: BlobInfo;
  /** Hex SHA-1 of the stored bytes as they were received (`corrupt()` does not update it). */
  sha1: string;
  size: number;
  createdAt: string;
}

/** A file as the emulator stores it. */
export interface FileNode {
  kind: 'file';
  id: string;
  name: string;
  parentId: string;
  sequenceId: number;
  createdAt: string;
  modifiedAt: string;
  contentCreatedAt: string;
  contentModifiedAt: string;
  /** Oldest first; the last one is the current `file_version`. */
  versions: FileVersion[];
}

/** Anything in the tree. */
export type ItemNode = FolderNode | FileNode;

/** Box's root folder id ("All Files"). */
export const ROOT_ID = '0';

/** Box's timestamp form: seconds precision with a numeric offset (`2012-12-12T10:53:43-08:00`). */
export function boxDate(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, '+00:00');
}

/** Parses a client-supplied RFC 3339 date into Box's form, or null when it is not a date. */
export function parseBoxDate(s: unknown): string | null {
  if (typeof s !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/.test(s)) return null;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : boxDate(d);
}

/**
 * Box's name rules (POST /folders and uploads): at most 255 characters; no `/` or `\`, no
 * non-printable ASCII, no trailing space, not `.` or `..`. Returns the error code or null.
 */
export function nameError(name: unknown): 'item_name_invalid' | 'item_name_too_long' | null {
  if (typeof name !== 'string' || name.length === 0) return 'item_name_invalid';
  if ([...name].length > 255) return 'item_name_too_long';
  if (/[/\\\u0000-\u001f\u007f]/.test(name)) return 'item_name_invalid';
  if (name.endsWith(' ') || name === '.' || name === '..') return 'item_name_invalid';
  return null;
}

/** Box compares sibling names case-insensitively. */
function sameName(a: string, b: string): boolean {
  return a.normalize('NFC').toLowerCase() === b.normalize('NFC').toLowerCase();
}

type Json = Record<string, unknown>;

const FOLDER_MINI = ['type', 'id', 'sequence_id', 'etag', 'name'];
const FILE_MINI = ['type', 'id', 'sequence_id', 'etag', 'name', 'sha1', 'file_version'];

function pick(full: Json, mini: string[], fields: string[] | null): Json {
  if (!fields) return full;
  const out: Json = {};
  for (const k of [...mini, ...fields]) if (k in full) out[k] = full[k];
  return out;
}

/**
 * The tree and its representations. Ids are decimal strings; `sequenceId` (Box's `etag` and
 * `sequence_id`) grows with every change of an item. Callers check names and conflicts first.
 */
export class BoxModel {
  private readonly items = new Map<string, ItemNode>();
  private nextId: number;

  constructor(
    readonly owner: BoxUser,
    seed: number,
  ) {
    // Box ids are decimal strings; the seed shifts them so two emulators never share ids.
    this.nextId = 1_000_000_000 + (seed % 1000) * 1_000_000;
    this.items.set(ROOT_ID, {
      kind: 'folder',
      id: ROOT_ID,
      name: 'All Files',
      parentId: null,
      sequenceId: 0,
      createdAt: boxDate(),
      modifiedAt: boxDate(),
    });
  }

  newId(): string {
    return String(++this.nextId);
  }

  get(id: string): ItemNode | undefined {
    return this.items.get(id);
  }

  folder(id: string): FolderNode | undefined {
    const n = this.items.get(id);
    return n?.kind === 'folder' ? n : undefined;
  }

  file(id: string): FileNode | undefined {
    const n = this.items.get(id);
    return n?.kind === 'file' ? n : undefined;
  }

  children(folderId: string): ItemNode[] {
    return [...this.items.values()].filter((n) => n.parentId === folderId);
  }

  /** The sibling whose name equals `name` case-insensitively, if any. */
  findChild(folderId: string, name: string): ItemNode | undefined {
    return this.children(folderId).find((n) => sameName(n.name, name));
  }

  createFolder(parentId: string, name: string): FolderNode {
    const now = boxDate();
    const f: FolderNode = { kind: 'folder', id: this.newId(), name, parentId, sequenceId: 0, createdAt: now, modifiedAt: now };
    this.items.set(f.id, f);
    this.touch(parentId);
    return f;
  }

  createFile(parentId: string, name: string, version: FileVersion, contentModifiedAt?: string | null, contentCreatedAt?: string | null): FileNode {
    const now = boxDate();
    const f: FileNode = {
      kind: 'file',
      id: this.newId(),
      name,
      parentId,
      sequenceId: 0,
      createdAt: now,
      modifiedAt: now,
      contentCreatedAt: contentCreatedAt ?? contentModifiedAt ?? now,
      contentModifiedAt: contentModifiedAt ?? now,
      versions: [version],
    };
    this.items.set(f.id, f);
    this.touch(parentId);
    return f;
  }

  /** A new current version of an existing file: same id, new `file_version`, bumped etag. */
  addVersion(file: FileNode, version: FileVersion, opts: { name?: string; contentModifiedAt?: string | null } = {}): void {
    file.versions.push(version);
    if (opts.name !== undefined) file.name = opts.name;
    file.contentModifiedAt = opts.contentModifiedAt ?? boxDate();
    file.modifiedAt = boxDate();
    file.sequenceId++;
  }

  /** Removes an item (and, for a folder, everything below it); returns the file versions dropped. */
  remove(id: string): FileVersion[] {
    const n = this.items.get(id);
    if (!n) return [];
    const dropped: FileVersion[] = [];
    if (n.kind === 'folder') for (const c of this.children(id)) dropped.push(...this.remove(c.id));
    else dropped.push(...n.versions);
    this.items.delete(id);
    if (n.parentId) this.touch(n.parentId);
    return dropped;
  }

  private touch(folderId: string): void {
    const f = this.folder(folderId);
    if (f && f.id !== ROOT_ID) {
      f.modifiedAt = boxDate();
      f.sequenceId++;
    }
  }

  /** Ancestors from the root down to the item's parent (Box's `path_collection`). */
  ancestors(n: ItemNode): FolderNode[] {
    const out: FolderNode[] = [];
    let p = n.parentId ? this.folder(n.parentId) : undefined;
    while (p) {
      out.unshift(p);
      p = p.parentId ? this.folder(p.parentId) : undefined;
    }
    return out;
  }

  /** `/a/b/c.txt`, from the root folder `0` (which is `/`). */
  pathOf(n: ItemNode): string {
    if (n.id === ROOT_ID) return '/';
    return '/' + [...this.ancestors(n).filter((a) => a.id !== ROOT_ID).map((a) => a.name), n.name].join('/');
  }

  /** Resolves `/a/b` case-insensitively, as Box would find it by walking the folders. */
  resolve(path: string): ItemNode | undefined {
    let cur: ItemNode | undefined = this.items.get(ROOT_ID);
    for (const part of path.split('/').filter(Boolean)) {
      if (!cur || cur.kind !== 'folder') return undefined;
      cur = this.findChild(cur.id, part);
    }
    return cur;
  }

  /** Every folder and file but the root folder `0`. */
  allItems(): ItemNode[] {
    return [...this.items.values()].filter((n) => n.id !== ROOT_ID);
  }

  allFiles(): FileNode[] {
    return [...this.items.values()].filter((n): n is FileNode => n.kind === 'file');
  }

  /** Bytes counted against the storage quota: every stored version, as Box counts them. */
  usedBytes(): number {
    return this.allFiles().reduce((a, f) => a + f.versions.reduce((b, v) => b + v.size, 0), 0);
  }

  private folderSize(id: string): number {
    let n = 0;
    for (const c of this.children(id)) n += c.kind === 'file' ? current(c).size : this.folderSize(c.id);
    return n;
  }

  private userJson(): Json {
    return { type: 'user', id: this.owner.id, name: this.owner.name, login: this.owner.login };
  }

  folderMini(f: FolderNode): Json {
    const root = f.id === ROOT_ID;
    return {
      type: 'folder',
      id: f.id,
      sequence_id: root ? null : String(f.sequenceId),
      etag: root ? null : String(f.sequenceId),
      name: f.name,
    };
  }

  fileMini(f: FileNode): Json {
    const v = current(f);
    return {
      type: 'file',
      id: f.id,
      file_version: { type: 'file_version', id: v.id, sha1: v.sha1 },
      sequence_id: String(f.sequenceId),
      etag: String(f.sequenceId),
      sha1: v.sha1,
      name: f.name,
    };
  }

  itemMini(n: ItemNode): Json {
    return n.kind === 'folder' ? this.folderMini(n) : this.fileMini(n);
  }

  private pathCollection(n: ItemNode): Json {
    const entries = this.ancestors(n).map((a) => this.folderMini(a));
    return { total_count: entries.length, entries };
  }

  /** The standard file object (GET /files/:id, upload responses), or mini + `fields`. */
  fileJson(f: FileNode, fields: string[] | null = null): Json {
    const v = current(f);
    const parent = this.folder(f.parentId);
    const full: Json = {
      ...this.fileMini(f),
      description: '',
      size: v.size,
      path_collection: this.pathCollection(f),
      created_at: f.createdAt,
      modified_at: f.modifiedAt,
      trashed_at: null,
      purged_at: null,
      content_created_at: f.contentCreatedAt,
      content_modified_at: f.contentModifiedAt,
      created_by: this.userJson(),
      modified_by: this.userJson(),
      owned_by: this.userJson(),
      shared_link: null,
      parent: parent ? this.folderMini(parent) : null,
      item_status: 'active',
    };
    return pick(full, FILE_MINI, fields);
  }

  /** The standard folder object (GET /folders/:id, POST /folders), or mini + `fields`. */
  folderJson(f: FolderNode, fields: string[] | null = null, listing?: Json): Json {
    const root = f.id === ROOT_ID;
    const parent = f.parentId ? this.folder(f.parentId) : undefined;
    const full: Json = {
      ...this.folderMini(f),
      created_at: root ? null : f.createdAt,
      modified_at: root ? null : f.modifiedAt,
      description: '',
      size: this.folderSize(f.id),
      path_collection: this.pathCollection(f),
      created_by: root ? { type: 'user', id: '', name: '', login: '' } : this.userJson(),
      modified_by: this.userJson(),
      trashed_at: null,
      purged_at: null,
      content_created_at: root ? null : f.createdAt,
      content_modified_at: root ? null : f.modifiedAt,
      owned_by: this.userJson(),
      shared_link: null,
      folder_upload_email: null,
      parent: parent ? this.folderMini(parent) : null,
      item_status: 'active',
      ...(listing ? { item_collection: listing } : {}),
    };
    return pick(full, FOLDER_MINI, fields);
  }

  itemJson(n: ItemNode, fields: string[] | null): Json {
    if (!fields) return this.itemMini(n);
    return n.kind === 'folder' ? this.folderJson(n, fields) : this.fileJson(n, fields);
  }
}

/** The current version of a file. */
export function current(f: FileNode): FileVersion {
  return f.versions[f.versions.length - 1]!;
}
