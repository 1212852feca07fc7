/**
 * The Drive the emulator holds: files and folders by id, one parent each (Drive's rule since
 * 2020), same-name siblings allowed, a My Drive root reachable as `root`, and bytes in the
 * harness's BlobStore. It knows no HTTP.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import type { BlobInfo, BlobStore } from '../harness/index.js';
import { hex, seededRandom } from '../harness/index.js';
import type { QueryFile } from './query.js';

export const FOLDER_MIME = 'application/vnd.google-apps.folder';
export const ROOT_ALIAS = 'root';

export interface DriveFile {
  id: string;
  name: string;
  mimeType: string;
  /** Empty only for the root. */
  parents: string[];
  /** Trashed itself (`explicitlyTrashed`); `isTrashed()` also looks at ancestors. */
  explicitlyTrashed: boolean;
  starred: boolean;
  description?: string;
  originalFilename?: string;
  properties: Record<string, string>;
  appProperties: Record<string, string>;
  createdTime: number;
  modifiedTime: number;
  version: number;
  headRevisionId?: string;
  /** Content; null for folders. */
  blob: BlobInfo | null;
  size: number;
  md5?: string;
  /** Computed on first use (`slowHashes`): only a request that asks for them pays for them. */
  sha1?: string;
  sha256?: string;
}

export interface StoredContent {
  blob: BlobInfo;
  size: number;
  md5: string;
}

const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export class DriveModel {
  readonly files = new Map<string, DriveFile>();
  readonly rootId: string;
  private readonly random: () => number;

  constructor(
    readonly blobs: BlobStore,
    seed: number,
    readonly user = { displayName: 'Emulated User', emailAddress: 'user@example.com', permissionId: '00000000000000000001' },
  ) {
    this.random = seededRandom(seed);
    this.rootId = `0A${this.randomChars(17)}`;
    const now = Date.now();
    this.files.set(this.rootId, {
      id: this.rootId,
      name: 'My Drive',
      mimeType: FOLDER_MIME,
      parents: [],
      explicitlyTrashed: false,
      starred: false,
      properties: {},
      appProperties: {},
      createdTime: now,
      modifiedTime: now,
      version: 1,
      blob: null,
      size: 0,
    });
  }

  randomChars(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += ID_CHARS[Math.floor(this.random() * ID_CHARS.length)];
    return s;
  }

  /** A new id shaped like Drive's (33 characters, starting with 1). */
  newId(): string {
    return `1${this.randomChars(32)}`;
  }

  resolveId(id: string): string {
    return id === ROOT_ALIAS ? this.rootId : id;
  }

  get(id: string): DriveFile | undefined {
    return this.files.get(this.resolveId(id));
  }

  isFolder(f: DriveFile): boolean {
    return f.mimeType === FOLDER_MIME;
  }

  /** Trashed itself or under a trashed folder. */
  isTrashed(f: DriveFile): boolean {
    for (let cur: DriveFile | undefined = f, hops = 0; cur && hops < 10_000; hops++) {
      if (cur.explicitlyTrashed) return true;
      const p: string | undefined = cur.parents[0];
      cur = p ? this.files.get(p) : undefined;
    }
    return false;
  }

  /** `/a/b/c.txt` from the parents chain, or null when the chain does not reach My Drive. */
  pathOf(f: DriveFile): string | null {
    const parts: string[] = [];
    let cur: DriveFile | undefined = f;
    for (let hops = 0; cur && hops < 10_000; hops++) {
      if (cur.id === this.rootId) return '/' + parts.reverse().join('/');
      parts.push(cur.name);
      const p: string | undefined = cur.parents[0];
      cur = p ? this.files.get(p) : undefined;
    }
    return null;
  }

  /** The first file (not folder) at a path, exact names. */
  findByPath(p: string): DriveFile | undefined {
    for (const f of this.files.values()) if (!this.isFolder(f) && this.pathOf(f) === p) return f;
    return undefined;
  }

  /** True when `ancestorId` is `id` or one of its ancestors (moves must not make cycles). */
  isAncestor(ancestorId: string, id: string): boolean {
    let cur = this.files.get(id);
    for (let hops = 0; cur && hops < 10_000; hops++) {
      if (cur.id === ancestorId) return true;
      const p: string | undefined = cur.parents[0];
      cur = p ? this.files.get(p) : undefined;
    }
    return false;
  }

  /** Bytes that count against the storage quota (trash counts, as in Drive). */
  usage(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.size;
    return n;
  }

  /** A file or folder with defaults filled in; the caller has checked the parent. */
  create(init: Partial<DriveFile> & { name: string; mimeType: string; parents: string[] }): DriveFile {
    const now = Date.now();
    const f: DriveFile = {
      id: init.id ?? this.newId(),
      explicitlyTrashed: false,
      starred: false,
      properties: {},
      appProperties: {},
      createdTime: now,
      modifiedTime: now,
      version: 1,
      blob: null,
      size: 0,
      ...init,
    };
    this.files.set(f.id, f);
    return f;
  }

  /** Gives a file new content (a new head revision, same id). */
  setContent(f: DriveFile, c: StoredContent): BlobInfo | null {
    const old = f.blob;
    f.blob = c.blob;
    f.size = c.size;
    f.md5 = c.md5;
    f.sha1 = undefined;
    f.sha256 = undefined;
    f.headRevisionId = `0B${this.randomChars(42)}`;
    this.touch(f);
    return old;
  }

  touch(f: DriveFile): void {
    f.version += 1;
    f.modifiedTime = Math.max(Date.now(), f.modifiedTime);
  }

  /** Removes a file, or a folder and everything under it. Returns the blobs to free. */
  remove(id: string): BlobInfo[] {
    const freed: BlobInfo[] = [];
    const stack = [id];
    for (let guard = 0; stack.length && guard < 1_000_000; guard++) {
      const cur = stack.pop()!;
      const f = this.files.get(cur);
      if (!f) continue;
      this.files.delete(cur);
      if (f.blob) freed.push(f.blob);
      for (const c of this.files.values()) if (c.parents[0] === cur) stack.push(c.id);
    }
    return freed;
  }

  /** The view the `q` evaluator reads. */
  queryView(f: DriveFile): QueryFile {
    return {
      name: f.name,
      mimeType: f.mimeType,
      parents: f.parents,
      trashed: this.isTrashed(f),
      starred: f.starred,
      createdTime: f.createdTime,
      modifiedTime: f.modifiedTime,
      description: f.description,
      properties: f.properties,
      appProperties: f.appProperties,
    };
  }

  /** The whole File resource as Drive v3 renders it; the `fields` mask picks from it. */
  resource(f: DriveFile): Record<string, unknown> {
    const me = { kind: 'drive#user', displayName: this.user.displayName, me: true, permissionId: this.user.permissionId, emailAddress: this.user.emailAddress };
    const folder = this.isFolder(f);
    const ext = !folder && /\.([^.]+)$/.exec(f.name)?.[1];
    const full = !folder && /^[^.]*\.(.+)$/.exec(f.name)?.[1];
    const r: Record<string, unknown> = {
      kind: 'drive#file',
      id: f.id,
      name: f.name,
      mimeType: f.mimeType,
      starred: f.starred,
      trashed: this.isTrashed(f),
      explicitlyTrashed: f.explicitlyTrashed,
      spaces: ['drive'],
      version: String(f.version),
      webViewLink: folder ? `https://drive.google.com/drive/folders/${f.id}` : `https://drive.google.com/file/d/${f.id}/view?usp=drivesdk`,
      iconLink: `https://drive-thirdparty.googleusercontent.com/16/type/${f.mimeType}`,
      hasThumbnail: false,
      thumbnailVersion: '0',
      viewedByMe: true,
      viewedByMeTime: new Date(f.modifiedTime).toISOString(),
      createdTime: new Date(f.createdTime).toISOString(),
      modifiedTime: new Date(f.modifiedTime).toISOString(),
      modifiedByMeTime: new Date(f.modifiedTime).toISOString(),
      modifiedByMe: true,
      owners: [me],
      lastModifyingUser: me,
      shared: false,
      ownedByMe: true,
      viewersCanCopyContent: true,
      copyRequiresWriterPermission: false,
      writersCanShare: true,
      permissionIds: [this.user.permissionId],
      quotaBytesUsed: String(f.size),
      isAppAuthorized: true,
      capabilities: { canEdit: true, canDelete: true, canTrash: true, canRename: true, canAddChildren: folder, canDownload: !folder },
    };
    if (f.parents.length) r.parents = [...f.parents];
    if (f.description !== undefined) r.description = f.description;
    if (Object.keys(f.properties).length) r.properties = { ...f.properties };
    if (Object.keys(f.appProperties).length) r.appProperties = { ...f.appProperties };
    if (!folder) {
      r.webContentLink = `https://drive.google.com/uc?id=${f.id}&export=download`;
      r.originalFilename = f.originalFilename ?? f.name;
      if (full) r.fullFileExtension = full;
      if (ext) r.fileExtension = ext;
      r.size = String(f.size);
      if (f.md5 !== undefined) r.md5Checksum = f.md5;
      if (f.blob) {
        // Read by the field mask only when it names them (or `*`): hashed then, once.
        Object.defineProperty(r, 'sha1Checksum', { enumerable: true, get: () => this.slowHashes(f).sha1 });
        Object.defineProperty(r, 'sha256Checksum', { enumerable: true, get: () => this.slowHashes(f).sha256 });
      }
      if (f.headRevisionId !== undefined) r.headRevisionId = f.headRevisionId;
    }
    return r;
  }

  /** Hashes a stored blob the three ways Drive reports. */
  /** md5 of a blob's bytes, what Drive reports as md5Checksum. */
  async md5Of(blob: BlobInfo): Promise<string> {
    return (await this.blobs.hash(blob, { md5: hex('md5') })).md5;
  }

  /**
   * sha1Checksum and sha256Checksum of a file's content, hashed from its blob the first time a
   * response or a test asks (synchronously: a field getter cannot wait). Drive reports them only
   * when the fields mask names them, and the clients here ask for md5Checksum alone, so an
   * upload is not slowed by hashes nobody reads.
   */
  slowHashes(f: DriveFile): { sha1: string | undefined; sha256: string | undefined } {
    if (f.blob && (f.sha1 === undefined || f.sha256 === undefined)) {
      const sha1 = createHash('sha1');
      const sha256 = createHash('sha256');
      const fd = openSync(f.blob.file, 'r');
      try {
        const buf = Buffer.allocUnsafe(1 << 20);
        for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) {
          sha1.update(buf.subarray(0, n));
          sha256.update(buf.subarray(0, n));
        }
      } finally {
        closeSync(fd);
      }
      f.sha1 = sha1.digest('hex');
      f.sha256 = sha256.digest('hex');
    }
    return { sha1: f.sha1, sha256: f.sha256 };
  }

}
