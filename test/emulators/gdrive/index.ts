/**
 * The Google Drive v3 emulator: a loopback server that speaks Drive's REST protocol closely
 * enough for `@googleapis/drive` and `google-auth-library` to run against it unmocked.
 *
 * Routes (any Host; `oauth2.googleapis.com` serves only the token endpoint):
 * - `POST /token` (and `/oauth2/v4/token`): refresh and authorization-code grants.
 * - `GET|POST /drive/v3/files`, `GET|PATCH|DELETE /drive/v3/files/{id}`, `GET /drive/v3/about`.
 * - `POST /upload/drive/v3/files`, `PATCH /upload/drive/v3/files/{id}` with
 *   `uploadType=media|multipart|resumable`; `PUT|POST` on a session URI (`upload_id=`).
 *
 * Test controls: tokens (expire, revoke), storage quota, daily upload cap, queued Drive errors,
 * corrupted uploads or stored files, session expiry, and inspection of the stored tree.
 */
import type { BlobInfo, BrowseEntry, Emulator, EmulatorRequest } from '../harness/index.js';
import { BlobStore, EmulatorServer, TokenBook, bearer, seededRandom } from '../harness/index.js';
import { drain, dailyUsage, type DriveState } from './context.js';
import { DRIVE_ERRORS, DriveHttpError, errorBody, errorHeaders, faultSpec, sendDriveError, type DriveErrorName } from './errors.js';
import { handleAbout, handleCreate, handleDelete, handleGet, handleList, handleUpdate } from './files.js';
import { DriveModel, type DriveFile } from './model.js';
import { AuthCodes, handleToken } from './oauth.js';
import { handleSessionRequest, handleUpload, type UploadSession } from './uploads.js';

export type { DriveErrorName } from './errors.js';
export { FOLDER_MIME } from './model.js';
export { CHUNK_GRANULARITY } from './uploads.js';

export interface GdriveEmulatorOptions {
  port?: number;
  /** Seeds ids and random faults so runs replay. */
  seed?: number;
  clientId?: string;
  clientSecret?: string;
  /** A refresh token registered at start (more with `tokens.addRefreshToken`). */
  refreshToken?: string;
  /** Access token lifetime, seconds (Google: 3599). */
  tokenTtlS?: number;
  /** How long a resumable session lives (Google: one week). */
  sessionTtlMs?: number;
  /** Storage quota in bytes; null (default) is unlimited. */
  storageQuota?: number | null;
  /** Upload bytes per rolling 24 h; null (default) is unlimited. Google's is 750 GB. */
  dailyCap?: number | null;
}

/** One stored file or folder, for inspection. */
export interface GdriveEntry {
  path: string | null;
  id: string;
  name: string;
  mimeType: string;
  folder: boolean;
  trashed: boolean;
  size: number;
  md5: string | undefined;
  sha1: string | undefined;
  sha256: string | undefined;
  blob: BlobInfo | null;
}

const TOKEN_PATH = /^\/(token|oauth2\/v4\/token)$/;
const TOKEN_HOSTS = new Set(['oauth2.googleapis.com', 'accounts.google.com']);

/** The emulator a test starts with `startGdriveEmulator`. */
export class GdriveEmulator implements Emulator {
  readonly name = 'gdrive' as const;
  readonly server: EmulatorServer;
  readonly tokens: TokenBook;
  readonly clientId: string;
  readonly clientSecret: string;
  /** The refresh token registered at start: hand it to the client under test. */
  readonly refreshToken: string;
  readonly model: DriveModel;
  private readonly state: DriveState;
  private readonly sessions = new Map<string, UploadSession>();
  private readonly codes = new AuthCodes();
  private readonly tokenTtlS: number;

  private constructor(readonly blobs: BlobStore, opts: GdriveEmulatorOptions) {
    this.clientId = opts.clientId ?? 'emulator-client.apps.googleusercontent.com';
    this.clientSecret = opts.clientSecret ?? 'emulator-secret';
    this.refreshToken = opts.refreshToken ?? '1//emulator-refresh-token';
    this.tokenTtlS = opts.tokenTtlS ?? 3599;
    this.tokens = new TokenBook({ ttlS: this.tokenTtlS, rotateRefresh: false, prefix: 'ya29.' });
    this.tokens.addRefreshToken(this.refreshToken);
    this.model = new DriveModel(blobs, opts.seed ?? 1);
    this.state = {
      model: this.model,
      blobs,
      storageQuota: opts.storageQuota ?? null,
      dailyCap: opts.dailyCap ?? null,
      maxPageSize: null,
      uploadLog: [],
      corruptNext: 0,
      shortenNext: null,
      sessionTtlMs: opts.sessionTtlMs ?? 7 * 24 * 60 * 60 * 1000,
    };
    this.server = new EmulatorServer({
      name: 'gdrive',
      port: opts.port,
      handler: (r) => this.handle(r),
      faultBody: (status) => {
        const spec = faultSpec(status);
        return { headers: errorHeaders(spec), body: errorBody(spec) };
      },
      faultExempt: TOKEN_PATH,
      browse: { title: 'Google Drive (emulated): My Drive', hashName: 'md5Checksum', entries: () => this.browseEntries() },
    });
    if (opts.seed !== undefined) this.server.random = seededRandom(opts.seed);
  }

  /** What the browse page shows: every item not in the trash, by its path in My Drive. */
  private browseEntries(): BrowseEntry[] {
    const out: BrowseEntry[] = [];
    for (const f of this.model.files.values()) {
      if (f.id === this.model.rootId || this.model.isTrashed(f)) continue;
      const path = this.model.pathOf(f);
      if (path === null) continue;
      const modified = new Date(f.modifiedTime).toISOString();
      if (this.model.isFolder(f)) out.push({ path, kind: 'folder', modified });
      else {
        const versions = [`version ${f.version}${f.headRevisionId ? ` (head revision ${f.headRevisionId})` : ''}`];
        out.push({ path, kind: 'file', size: f.size, ...(f.md5 !== undefined ? { hash: f.md5 } : {}), modified, versions });
      }
    }
    return out;
  }

  static async start(opts: GdriveEmulatorOptions = {}): Promise<GdriveEmulator> {
    const blobs = await BlobStore.create('gdrive');
    const emu = new GdriveEmulator(blobs, opts);
    await emu.server.start();
    return emu;
  }

  get url(): string {
    return this.server.url;
  }

  /** The id of My Drive (what `root` stands for). */
  get rootId(): string {
    return this.model.rootId;
  }

  // -------------------------------------------------------------------------------------------
  // Test controls

  /** An access token valid for `ttlS`, for raw HTTP tests that skip the token endpoint. */
  issueAccessToken(ttlS = this.tokenTtlS): string {
    return this.tokens.issue('user', ttlS).accessToken;
  }

  /** A single-use authorization code the token endpoint will exchange (setup flow tests). */
  addAuthCode(code: string, subject = 'user'): void {
    this.codes.add(code, subject);
  }

  /** Storage quota in bytes (null: unlimited). Uploads past it get 403 storageQuotaExceeded. */
  setStorageQuota(bytes: number | null): void {
    this.state.storageQuota = bytes;
  }

  /**
   * The daily upload cap (null: none). Once the bytes uploaded in the last 24 h reach it, new
   * uploads get 403 `userRateLimitExceeded` "User rate limit exceeded." — how Drive reports its
   * 750 GB/day limit. An upload already under way is let finish.
   */
  setDailyCap(bytes: number | null): void {
    this.state.dailyCap = bytes;
  }

  /** Caps every `files.list` page at `n` files (null: as `pageSize` asks): Drive's documented short pages. */
  setMaxPageSize(n: number | null): void {
    this.state.maxPageSize = n;
  }

  /** Upload bytes counted against the daily cap now. */
  dailyUsage(): number {
    return dailyUsage(this.state);
  }

  resetDailyUsage(): void {
    this.state.uploadLog = [];
  }

  /** The next `n` uploads are stored with one byte flipped, and report the hashes of those bytes. */
  corruptNextUpload(n = 1): void {
    this.state.corruptNext += n;
  }

  /**
   * The next `times` requests whose path matches (default: any Drive API or upload path) get a
   * Drive error instead of their answer, e.g. `failNext('userRateLimitExceeded')`.
   */
  failNext(error: DriveErrorName, opts: { match?: RegExp; times?: number; retryAfterS?: number } = {}): void {
    const spec = DRIVE_ERRORS[error];
    for (let i = 0; i < (opts.times ?? 1); i++) {
      this.server.faults.queue.push({
        match: opts.match ?? /^\/(drive|upload)\//,
        fault: { kind: 'status', status: spec.code, retryAfterS: opts.retryAfterS, body: errorBody(spec) },
      });
    }
  }

  /**
   * The next resumable chunk keeps only its first `keepBytes` new bytes (rounded down to 256 KiB)
   * and answers 308 with the shorter Range, as Google's upload servers may: clients must resume
   * from the Range they get, not from what they sent.
   */
  shortenNextChunk(keepBytes: number): void {
    this.state.shortenNext = keepBytes;
  }

  /** Resumable sessions still open. */
  uploadSessions(): Array<{ id: string; received: number; total: number | null; done: boolean; expiresAt: number }> {
    return [...this.sessions.values()].map((s) => ({ id: s.id, received: s.received, total: s.total, done: s.doneFileId !== null, expiresAt: s.expiresAt }));
  }

  /** Every resumable session expires now (their URIs answer 404). */
  expireSessions(): void {
    for (const s of this.sessions.values()) s.expiresAt = 0;
  }

  /** Every file and folder, with its path from My Drive (trashed ones too). */
  entries(): GdriveEntry[] {
    const out: GdriveEntry[] = [];
    for (const f of this.model.files.values()) {
      if (f.id === this.model.rootId) continue;
      out.push(this.entry(f));
    }
    return out;
  }

  private entry(f: DriveFile): GdriveEntry {
    return {
      path: this.model.pathOf(f),
      id: f.id,
      name: f.name,
      mimeType: f.mimeType,
      folder: this.model.isFolder(f),
      trashed: this.model.isTrashed(f),
      size: f.size,
      md5: f.md5,
      ...this.model.slowHashes(f),
      blob: f.blob,
    };
  }

  /** Files (not folders, not trashed) with their path, size, md5 (Drive's hash) and blob. */
  async tree(): Promise<Array<{ path: string; id: string; size: number; hash: string; blob: BlobInfo }>> {
    return this.entries()
      .filter((e) => !e.folder && !e.trashed && e.blob && e.path !== null)
      .map((e) => ({ path: e.path!, id: e.id, size: e.size, hash: e.md5 ?? '', blob: e.blob! }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** The stored bytes of the file at `path` (`/a/b.txt`). */
  async read(path: string): Promise<Buffer> {
    const f = this.model.findByPath(path);
    if (!f?.blob) throw new Error(`[gdrive emulator] no file at ${path}`);
    return this.blobs.bytes(f.blob);
  }

  /**
   * Flips a byte of the stored file at `path`. By default Drive's checksums are recomputed, so
   * the remote copy reads as different from the local file; `keepChecksums` leaves them as they
   * were (the bytes then no longer match md5Checksum).
   */
  async corrupt(path: string, opts: { keepChecksums?: boolean } = {}): Promise<void> {
    const f = this.model.findByPath(path);
    if (!f?.blob) throw new Error(`[gdrive emulator] no file at ${path}`);
    if (opts.keepChecksums) this.model.slowHashes(f);
    await this.blobs.corrupt(f.blob);
    if (!opts.keepChecksums) Object.assign(f, { md5: await this.model.md5Of(f.blob), sha1: undefined, sha256: undefined });
  }

  private closing: Promise<void> | null = null;

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.server.close();
      await this.blobs.destroy();
    })();
    return this.closing;
  }

  // -------------------------------------------------------------------------------------------
  // Routing

  private async handle(r: EmulatorRequest): Promise<void> {
    try {
      await this.route(r);
    } catch (e) {
      if (!(e instanceof DriveHttpError)) throw e;
      await drain(r);
      if (r.res.headersSent || r.res.destroyed) return;
      sendDriveError(r, e.spec);
    }
  }

  private authorize(r: EmulatorRequest): void {
    const token = bearer(r) ?? r.url.searchParams.get('access_token');
    if (token === null) throw new DriveHttpError(DRIVE_ERRORS.required);
    if (this.tokens.check(token) !== 'ok') throw new DriveHttpError(DRIVE_ERRORS.authError);
  }

  private async route(r: EmulatorRequest): Promise<void> {
    const p = r.url.pathname;
    if (TOKEN_HOSTS.has(r.host) || TOKEN_PATH.test(p)) {
      if (!TOKEN_PATH.test(p)) return this.notFoundPath(r);
      return handleToken(r, { clientId: this.clientId, clientSecret: this.clientSecret, tokenTtlS: this.tokenTtlS }, this.tokens, this.codes);
    }
    const s = this.state;
    let m = /^\/upload\/drive\/v3\/files(?:\/([^/]+))?$/.exec(p);
    if (m) {
      // A session URI is its own credential, as on Google's upload servers.
      if (r.url.searchParams.has('upload_id')) return handleSessionRequest(s, this.sessions, r);
      this.authorize(r);
      const id = m[1] === undefined ? null : decodeURIComponent(m[1]);
      if ((id === null && r.method === 'POST') || (id !== null && r.method === 'PATCH')) {
        return handleUpload(s, this.sessions, r, id);
      }
      return this.notFoundPath(r);
    }
    if (p === '/drive/v3/files') {
      this.authorize(r);
      if (r.method === 'GET') return handleList(s, r);
      if (r.method === 'POST') return handleCreate(s, r);
      return this.notFoundPath(r);
    }
    m = /^\/drive\/v3\/files\/([^/]+)$/.exec(p);
    if (m) {
      this.authorize(r);
      const id = decodeURIComponent(m[1]!);
      if (r.method === 'GET') return handleGet(s, r, id);
      if (r.method === 'PATCH') return handleUpdate(s, r, id);
      if (r.method === 'DELETE') return handleDelete(s, r, id);
      return this.notFoundPath(r);
    }
    if (p === '/drive/v3/about' && r.method === 'GET') {
      this.authorize(r);
      return handleAbout(s, r);
    }
    return this.notFoundPath(r);
  }

  private async notFoundPath(r: EmulatorRequest): Promise<void> {
    await drain(r);
    // Google's front end answers unknown paths with a plain 404 page, not a JSON error.
    const body = Buffer.from(`Not Found: ${r.method} ${r.url.pathname}`);
    r.res.writeHead(404, { 'content-type': 'text/html; charset=UTF-8', 'content-length': String(body.length) });
    r.res.end(body);
  }
}

/** Starts a Drive emulator on 127.0.0.1 (a free port unless `port` is given). */
export async function startGdriveEmulator(opts: GdriveEmulatorOptions = {}): Promise<GdriveEmulator> {
  return GdriveEmulator.start(opts);
}
