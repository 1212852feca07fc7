/**
 * The Box emulator: api.box.com (`/2.0/...`, `/oauth2/token`), upload.box.com
 * (`/api/2.0/files/content`, `/api/2.0/files/upload_sessions...`) and dl.boxcloud.com
 * (downloads) on one loopback server. Requests are told apart by Host header first (a client
 * sent here by a proxy or a URL rewrite keeps Box's hosts), then, for a loopback Host, by path:
 * `/api/2.0/` is the upload host, `/d/1/` the download host, anything else api.box.com.
 *
 * Point box-node-sdk at it with `client.ts`. See README.md for what is emulated and how it
 * differs from Box.
 */
import { createHash } from 'node:crypto';
import type { BlobInfo, BrowseEntry, BrowseSource, Emulator, EmulatorRequest, IssuedToken } from '../harness/index.js';
import { BlobStore, EmulatorServer, seededRandom, TokenBook } from '../harness/index.js';
import { StagecoachError } from '../../../src/errors.js';
import { handleApi, serveDownload } from './api.js';
import type { BoxContext, BoxSettings, UploadSessionState } from './context.js';
import { defaultPartSize } from './context.js';
import { faultBody } from './errors.js';
import type { BoxUser, FileNode } from './model.js';
import { BoxModel, boxDate, current, nameError, ROOT_ID } from './model.js';
import { BoxOAuthServer } from './oauth.js';
import { handleUpload } from './uploads.js';

export type { BoxSettings, UploadSessionState } from './context.js';
export { BoxModel } from './model.js';
export { BoxOAuthServer } from './oauth.js';

export interface BoxEmulatorOptions {
  /** Port on 127.0.0.1; 0 or absent picks a free one. */
  port?: number;
  /** Seeds ids and random faults so runs replay. */
  seed?: number;
  /** The app's OAuth client credentials (token requests must carry them). */
  clientId?: string;
  clientSecret?: string;
  /** Enterprise id accepted as a CCG `box_subject_id` with `box_subject_type=enterprise`. */
  enterpriseId?: string;
  /** The account's user (owner of every item; OAuth and CCG `user` subject). */
  user?: Partial<BoxUser>;
  /** Access token lifetime in seconds (Box: about an hour). */
  tokenTtlS?: number;
  /** Server-set `part_size` of upload sessions: a number, or a function of the file size. */
  partSize?: number | ((fileSize: number) => number);
  /** Smallest upload-session `file_size` (Box: 20,000,000 bytes). */
  minChunkedSize?: number;
  /** Storage quota in bytes over all stored versions; null (default) is unlimited. */
  storageQuota?: number | null;
  /** The plan's largest file (default 5 GiB). */
  maxFileSize?: number;
}

/** The Box emulator as tests see it: the shared `Emulator` contract plus Box's test controls. */
export interface BoxEmulator extends Emulator {
  readonly name: 'box';
  readonly model: BoxModel;
  readonly oauth: BoxOAuthServer;
  readonly settings: BoxSettings;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly enterpriseId: string;
  readonly userId: string;
  /** An authorization code for the setup flow (single use, 30 s). */
  issueAuthCode(subject?: string): string;
  /** Registers a refresh token for the user (as if saved by an earlier login) and returns it. */
  addRefreshToken(token?: string): string;
  /** A valid access + refresh token pair for the user, without a token request. */
  issueTokens(): IssuedToken;
  /** Every access token issued so far expires now (refresh tokens keep working). */
  expireTokens(): void;
  /** The subject's access and refresh tokens stop working (default: the user). */
  revoke(subject?: string): void;
  unrevoke(subject?: string): void;
  /** Storage quota in bytes (null: unlimited). Uploads beyond it get 403 `storage_limit_exceeded`. */
  setQuota(bytes: number | null): void;
  /** The plan's file size cap. Larger uploads get 403 `file_size_limit_exceeded`. */
  setMaxFileSize(bytes: number): void;
  setPartSize(size: number | ((fileSize: number) => number)): void;
  /** The next `count` commits answer 202 with `Retry-After: retryAfterS`, then commits proceed. */
  commitAccepted(count: number, retryAfterS?: number): void;
  /** Open upload sessions (inspection). */
  uploadSessions(): UploadSessionState[];
  /** The largest folder-items page (`limit` above it is lowered to it; Box's maximum is 1000). */
  setMaxPageSize(n: number): void;
  usedBytes(): number;
  /** Creates the folders of `/a/b` that do not exist; returns the last folder's id. */
  mkdirp(path: string): string;
  /** Stores a file at `/a/b.txt` (new version if it exists) without HTTP; returns its id. */
  putFile(path: string, content: Buffer): Promise<string>;
  /** The stored bytes of the current version of the file at `path`. */
  read(path: string): Promise<Buffer>;
}

function notFound(path: string): StagecoachError {
  return new StagecoachError('emulator.not-found', `[stagecoach] [box-emulator] no such item: ${path}`);
}

/**
 * Starts a Box emulator on 127.0.0.1. Callers must `close()` it (removes its temp folder).
 * Nothing is authorised until a test hands the client a token: `addRefreshToken()`,
 * `issueTokens()`, `issueAuthCode()`, or CCG with the emulator's client credentials.
 */
export async function startBoxEmulator(opts: BoxEmulatorOptions = {}): Promise<BoxEmulator> {
  const seed = opts.seed ?? 1;
  const user: BoxUser = { id: '20000001', name: 'Stagecoach Test', login: 'stagecoach@example.com', ...opts.user };
  const clientId = opts.clientId ?? 'box-client-id';
  const clientSecret = opts.clientSecret ?? 'box-client-secret';
  const enterpriseId = opts.enterpriseId ?? '9000001';
  const tokenTtlS = opts.tokenTtlS ?? 3600;
  const fixedPart = opts.partSize;
  const settings: BoxSettings = {
    partSize: typeof fixedPart === 'number' ? () => fixedPart : (fixedPart ?? defaultPartSize),
    minChunkedSize: opts.minChunkedSize ?? 20_000_000,
    storageQuota: opts.storageQuota ?? null,
    maxFileSize: opts.maxFileSize ?? 5 * 1024 ** 3,
    commitAccepted: { count: 0, retryAfterS: 1 },
    maxPageSize: 1000,
  };
  const blobs = await BlobStore.create('box');
  const tokens = new TokenBook({ ttlS: tokenTtlS, rotateRefresh: true, prefix: 'box-' });
  const oauth = new BoxOAuthServer(tokens, { clientId, clientSecret, enterpriseId, userId: user.id, tokenTtlS });
  const model = new BoxModel(user, seed);
  const ctx: BoxContext = {
    model,
    blobs,
    tokens,
    oauth,
    settings,
    sessions: new Map(),
    downloads: new Map(),
    random: seededRandom(seed * 7919 + 13),
  };

  const handler = async (r: EmulatorRequest): Promise<void> => {
    const path = r.url.pathname;
    const service =
      r.host === 'api.box.com' || r.host === 'app.box.com'
        ? 'api'
        : r.host === 'upload.box.com'
          ? 'upload'
          : r.host === 'dl.boxcloud.com'
            ? 'dl'
            : path.startsWith('/api/2.0/')
              ? 'upload'
              : path.startsWith('/d/1/')
                ? 'dl'
                : 'api';
    if (service === 'upload') return handleUpload(ctx, r, path.replace(/^\/api(?=\/2\.0\/)/, ''));
    if (service === 'dl') return serveDownload(ctx, r);
    return handleApi(ctx, r);
  };

  const browse: BrowseSource = {
    title: 'Box (emulated): All Files',
    hashName: 'SHA-1',
    entries: () =>
      model.allItems().map((n): BrowseEntry =>
        n.kind === 'folder'
          ? { path: model.pathOf(n), kind: 'folder', modified: n.modifiedAt }
          : {
              path: model.pathOf(n),
              kind: 'file',
              size: current(n).size,
              hash: current(n).sha1,
              modified: n.contentModifiedAt,
              versions: n.versions.map((v) => `${v.id} (${v.size} B, ${v.sha1})`),
            },
      ),
  };
  const server = new EmulatorServer({ name: 'box', port: opts.port, handler, faultBody, faultExempt: /^(\/api)?\/oauth2\//, browse });
  server.random = seededRandom(seed);
  await server.start();

  const fileAt = (path: string): FileNode => {
    const n = model.resolve(path);
    if (!n || n.kind !== 'file') throw notFound(path);
    return n;
  };

  const mkdirp = (path: string): string => {
    let id = ROOT_ID;
    for (const part of path.split('/').filter(Boolean)) {
      const bad = nameError(part);
      if (bad) throw new StagecoachError('emulator.bad-name', `[stagecoach] [box-emulator] ${bad}: ${part}`);
      const existing = model.findChild(id, part);
      if (existing && existing.kind !== 'folder') throw notFound(path);
      id = existing ? existing.id : model.createFolder(id, part).id;
    }
    return id;
  };

  let closing: Promise<void> | null = null;
  const emu: BoxEmulator = {
    name: 'box',
    server,
    blobs,
    tokens,
    model,
    oauth,
    settings,
    clientId,
    clientSecret,
    enterpriseId,
    userId: user.id,
    get url() {
      return server.url;
    },
    issueAuthCode: (subject) => oauth.issueAuthCode(subject),
    addRefreshToken: (token) => oauth.addRefreshToken(token),
    issueTokens: () => oauth.issue(),
    expireTokens: () => tokens.expireAll(),
    revoke: (subject = user.id) => tokens.revoke(subject),
    unrevoke: (subject = user.id) => tokens.unrevoke(subject),
    setQuota: (bytes) => {
      settings.storageQuota = bytes;
    },
    setMaxFileSize: (bytes) => {
      settings.maxFileSize = bytes;
    },
    setPartSize: (size) => {
      settings.partSize = typeof size === 'number' ? () => size : size;
    },
    commitAccepted: (count, retryAfterS = 1) => {
      settings.commitAccepted = { count, retryAfterS };
    },
    setMaxPageSize: (n) => {
      settings.maxPageSize = n;
    },
    uploadSessions: () => [...ctx.sessions.values()],
    usedBytes: () => model.usedBytes(),
    mkdirp,
    async putFile(path, content) {
      const parts = path.split('/').filter(Boolean);
      const name = parts.pop();
      if (!name) throw notFound(path);
      const folderId = mkdirp(parts.join('/'));
      const blob = await blobs.write(content);
      const sha1 = createHash('sha1').update(content).digest('hex');
      const version = { id: model.newId(), blob, sha1, size: content.length, createdAt: boxDate() };
      const existing = model.findChild(folderId, name);
      if (existing?.kind === 'file') {
        model.addVersion(existing, version);
        return existing.id;
      }
      if (existing) throw notFound(path);
      return model.createFile(folderId, name, version).id;
    },
    read: (path) => blobs.bytes(current(fileAt(path)).blob),
    async tree() {
      const out: Array<{ path: string; id: string; size: number; hash: string; blob: BlobInfo }> = model.allFiles().map((f) => {
        const v = current(f);
        return { path: model.pathOf(f), id: f.id, size: v.size, hash: v.sha1, blob: v.blob };
      });
      return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    },
    async corrupt(path) {
      await blobs.corrupt(current(fileAt(path)).blob);
    },
    close() {
      closing ??= (async () => {
        await server.close();
        await blobs.destroy();
      })();
      return closing;
    },
  };
  return emu;
}
