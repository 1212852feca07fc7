/**
 * State shared by the emulator's request handlers, the URLs it hands out (public https URLs when
 * the client came in on a Microsoft host, loopback URLs otherwise), access-token checks and the
 * one place where uploaded bytes become a driveItem.
 */
import type { BlobInfo, BlobStore, EmulatorRequest, Hasher, SessionFile, TokenBook } from '../harness/index.js';
import { bearer } from '../harness/index.js';
import { QuickXorHasher } from '../../../src/archive/quickxor.js';
import { sendGraphError, sendUnauthenticated } from './errors.js';
import { isMicrosoftHost, PUBLIC_DOWNLOAD_HOST, PUBLIC_UPLOAD_HOST } from './hosts.js';
import type { Drive, ItemRec, RenderContext } from './model.js';
import type { AccessInfo, Identity } from './oauth.js';

export type ConflictBehavior = 'fail' | 'replace' | 'rename';

export interface UploadSession {
  id: string;
  /** Folder the file goes into, and its name; or the file to overwrite (update by id). */
  parentId: string;
  name: string;
  targetId: string | null;
  conflict: ConflictBehavior;
  /** Total size, from `item.fileSize` or the first fragment's Content-Range. */
  total: number | null;
  /** Next byte expected: fragments are sequential. */
  received: number;
  /** The fragments so far, in one file, QuickXorHashed as they arrive (made at the first one). */
  content: SessionFile<{ qx: () => Hasher }> | null;
  expiresAt: number;
  deferCommit: boolean;
  fileSystemInfo: Partial<ItemRec['fileSystemInfo']>;
  /** A fragment is being written: a concurrent one is refused. */
  busy: boolean;
}

export interface EmulatorSettings {
  pageSize: number;
  uploadSessionTtlMs: number;
  rejectAuthorizationOnPreauthenticatedUrls: boolean;
  strictFragmentSize: boolean;
  maxSimpleUploadBytes: number;
}

export interface Ctx {
  drive: Drive;
  blobs: BlobStore;
  tokens: TokenBook;
  identity: Identity;
  sessions: Map<string, UploadSession>;
  settings: EmulatorSettings;
  user: { id: string; displayName: string; userPrincipalName: string };
}

/** Bytes per upload-session fragment unit: fragments are multiples of 320 KiB. */
export const FRAGMENT_UNIT = 320 * 1024;
/** Fragments must be smaller than 60 MiB. */
export const MAX_FRAGMENT = 60 * 1024 * 1024;

/** Base URLs for what the emulator hands out, as seen by the client that asked. */
export interface Bases {
  graph: string;
  uploadUrl(sessionId: string): string;
  downloadUrl(token: string): string;
}

export function bases(r: EmulatorRequest): Bases {
  const hostHeader = r.req.headers.host ?? '127.0.0.1';
  if (isMicrosoftHost(r.host)) {
    return {
      graph: 'https://graph.microsoft.com/v1.0',
      uploadUrl: (id) => `https://${PUBLIC_UPLOAD_HOST}/rup/${id}`,
      downloadUrl: (t) => `https://${PUBLIC_DOWNLOAD_HOST}/download/${t}`,
    };
  }
  return {
    graph: `http://${hostHeader}/v1.0`,
    uploadUrl: (id) => `http://${hostHeader}/upload/${id}`,
    downloadUrl: (t) => `http://${hostHeader}/download/${t}`,
  };
}

export function downloadToken(itemId: string): string {
  return Buffer.from(itemId).toString('base64url');
}

export function renderContext(r: EmulatorRequest, pathPrefix: string): RenderContext {
  const b = bases(r);
  return { pathPrefix, downloadUrl: (item) => b.downloadUrl(downloadToken(item.id)) };
}

/**
 * Checks the bearer token of a Graph request. Answers 401 (in Graph's shape) and returns null
 * when it is missing, unknown or expired.
 */
export function authenticate(ctx: Ctx, r: EmulatorRequest): AccessInfo | null {
  const header = r.req.headers.authorization;
  if (!header) {
    sendUnauthenticated(r, 'Access token is empty.');
    return null;
  }
  const token = bearer(r);
  const state = ctx.tokens.check(token);
  if (state === 'expired') {
    sendUnauthenticated(r, 'Lifetime validation failed, the token is expired.');
    return null;
  }
  if (state !== 'ok') {
    sendUnauthenticated(r, 'CompactToken parsing failed with error code: 80049217');
    return null;
  }
  return ctx.identity.accessInfo(token!) ?? { app: false, clientId: 'unknown' };
}

export function parseConflict(v: unknown): ConflictBehavior | null | undefined {
  if (v === undefined || v === null) return undefined;
  return v === 'fail' || v === 'replace' || v === 'rename' ? v : null;
}

/** Streams a blob through QuickXorHash. */
export async function quickXorOf(blobs: BlobStore, blob: BlobInfo): Promise<string> {
  return (await blobs.hash(blob, { qx: () => new QuickXorHasher() })).qx;
}

export type PlaceResult =
  | { ok: true; item: ItemRec; created: boolean }
  | { ok: false; status: number; code: string; message: string; inner?: string };

/**
 * Puts new bytes at `parent/name` (or into `targetId`) under a conflict behaviour; the one place
 * where uploaded content becomes a file. On success the drive owns `blob`; on failure the caller
 * still does.
 */
export async function placeFile(
  ctx: Ctx,
  where: { parentId: string; name: string; targetId: string | null; conflict: ConflictBehavior },
  blob: BlobInfo,
  fsInfo: Partial<ItemRec['fileSystemInfo']> = {},
  hashed?: string,
): Promise<PlaceResult> {
  // Hash first (unless the bytes were hashed as they arrived): everything after this line is
  // synchronous, so no other request can slip in between the conflict check and the write.
  const quickXorHash = hashed ?? (await quickXorOf(ctx.blobs, blob));
  const drive = ctx.drive;
  let replacing: ItemRec | null = null;
  let parent: ItemRec | undefined;
  let name = where.name;
  if (where.targetId !== null) {
    const target = drive.get(where.targetId);
    if (!target || target.isFolder) return { ok: false, status: 404, code: 'itemNotFound', message: 'The resource could not be found.' };
    replacing = target;
  } else {
    parent = drive.get(where.parentId);
    if (!parent || !parent.isFolder) return { ok: false, status: 404, code: 'itemNotFound', message: 'The resource could not be found.' };
    const existing = drive.child(parent, name);
    if (existing) {
      if (where.conflict === 'fail' || (where.conflict === 'replace' && existing.isFolder)) {
        return { ok: false, status: 409, code: 'nameAlreadyExists', message: 'The specified item name already exists.' };
      }
      if (where.conflict === 'replace') replacing = existing;
      else name = drive.uniqueName(parent, name, false);
    }
  }
  const freed = replacing ? replacing.size : 0;
  if (drive.used() - freed + blob.size > drive.quotaTotal) {
    return { ok: false, status: 507, code: 'quotaLimitReached', message: 'Insufficient Space Available' };
  }
  if (replacing) {
    const old = drive.replaceContent(replacing, { blob, quickXorHash }, fsInfo);
    if (old) await ctx.blobs.remove(old);
    return { ok: true, item: replacing, created: false };
  }
  return { ok: true, item: drive.createFile(parent!, name, { blob, quickXorHash }, fsInfo), created: true };
}

/** Answers a PlaceResult failure. */
export function sendPlaceError(r: EmulatorRequest, res: Extract<PlaceResult, { ok: false }>): void {
  sendGraphError(r, res.status, res.code, res.message, res.inner ? { inner: res.inner } : {});
}
