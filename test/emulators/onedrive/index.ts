/**
 * A OneDrive emulator: Microsoft Graph v1.0 (graph.microsoft.com), the pre-authenticated upload
 * and download host (api.onedrive.com, *.1drv.com, *.sharepoint.com, or `/upload/…` and
 * `/download/…` on loopback) and the Microsoft identity platform (login.microsoftonline.com), all
 * on one loopback port. Requests are told apart by Host header and by path, so a client reaches
 * it through a base URL, a URL rewrite or a proxy alike. See README.md for what is emulated and
 * where it differs from the real service.
 */
import type { BlobInfo, BrowseEntry, Emulator, EmulatorRequest } from '../harness/index.js';
import { BlobStore, EmulatorServer, seededRandom, TokenBook } from '../harness/index.js';
import type { Ctx, EmulatorSettings, UploadSession } from './context.js';
import { quickXorOf } from './context.js';
import { faultBody, LOGIN_PATH, sendAadError } from './errors.js';
import { handleGraph } from './graph.js';
import { CONTENT_HOST, GRAPH_HOST, LOGIN_HOSTS } from './hosts.js';
import type { ItemRec } from './model.js';
import { Drive } from './model.js';
import type { DeviceCodeRec } from './oauth.js';
import { CONSUMERS_TENANT, Identity } from './oauth.js';
import { handleContent } from './uploads.js';

export { FRAGMENT_UNIT } from './context.js';
export { CONSUMERS_TENANT } from './oauth.js';

export interface OneDriveEmulatorOptions {
  /** Port on 127.0.0.1 (default: any free port). */
  port?: number;
  /** Seeds the drive id, user id and the random fault source, so runs can be replayed. */
  seed?: number;
  /** Drive quota in bytes (default 5 GiB, a free OneDrive). */
  quotaBytes?: number;
  /** Lifetime of access tokens, seconds (default 3600). */
  accessTokenTtlS?: number;
  /** Tenant id written in tokens and client_info (default: the consumers tenant). */
  tenantId?: string;
  /** When set, confidential clients (client_credentials, or any grant sending a secret) must send it. */
  clientSecret?: string;
  /** Device-code polling interval the endpoint announces, seconds (default 5, as Microsoft). */
  deviceCodeIntervalS?: number;
  /** Device-code lifetime, seconds (default 900). */
  deviceCodeExpiresInS?: number;
  /** Upload sessions expire this long after their last fragment (default 48 h). */
  uploadSessionTtlMs?: number;
  /** Children per page when the client gives no `$top` (default 200). */
  pageSize?: number;
  /** Answer 401 to an upload- or download-URL request that carries Authorization (default true). */
  rejectAuthorizationOnPreauthenticatedUrls?: boolean;
  /** Refuse non-final fragments that are not multiples of 320 KiB (default true). */
  strictFragmentSize?: boolean;
  /** Largest simple upload (`PUT …/content`), bytes (default 250 MB). */
  maxSimpleUploadBytes?: number;
  user?: { displayName?: string; userPrincipalName?: string };
}

/** The emulator with its test controls. */
export interface OneDriveEmulator extends Emulator {
  readonly name: 'onedrive';
  readonly driveId: string;
  readonly user: { id: string; displayName: string; userPrincipalName: string };
  readonly tenantId: string;
  /** An access token for the signed-in user (raw HTTP tests). */
  issueAccessToken(ttlS?: number): string;
  /** Registers a refresh token as if the user had signed in with it earlier. */
  addRefreshToken(token: string, clientId?: string): void;
  /** Every refresh token issued so far fails with invalid_grant (AADSTS700082, inactivity). */
  expireRefreshTokens(): void;
  /** Approves a pending device code (now, or once `afterPolls` polls were answered pending). */
  approveDeviceCode(userCode: string, opts?: { afterPolls?: number }): void;
  declineDeviceCode(userCode: string): void;
  deviceCodes(): DeviceCodeRec[];
  /** Sets the drive quota (bytes); uploads past it answer 507 quotaLimitReached. */
  setQuota(totalBytes: number): void;
  /** Children per page when the client gives no `$top` (server-driven paging, https://learn.microsoft.com/en-us/graph/paging). */
  setPageSize(n: number): void;
  /** Every open upload session expires now (its URL answers 404). */
  expireUploadSessions(): void;
  uploadSessions(): Array<Pick<UploadSession, 'id' | 'name' | 'received' | 'total' | 'expiresAt'>>;
  /** Creates a file (and its folders) directly in the drive. */
  seedFile(path: string, data: Buffer): Promise<{ id: string }>;
  /** Creates a folder chain directly in the drive. */
  seedFolder(path: string): { id: string };
  /** The stored bytes at a path, or null. */
  readFile(path: string): Promise<Buffer | null>;
  /** The client's own times of the item at a path (fileSystemInfo), or null. */
  fileSystemInfo(path: string): { createdDateTime: string; lastModifiedDateTime: string } | null;
}

function hex(rnd: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(rnd() * 16).toString(16);
  return s;
}

function splitPath(p: string): string[] {
  return p.split('/').filter((s) => s.length > 0);
}

class OneDriveEmulatorImpl implements OneDriveEmulator {
  readonly name = 'onedrive' as const;
  readonly server: EmulatorServer;
  readonly tokens: TokenBook;
  readonly driveId: string;
  readonly user: { id: string; displayName: string; userPrincipalName: string };
  readonly tenantId: string;
  private readonly ctx: Ctx;
  private readonly identity: Identity;

  constructor(
    readonly blobs: BlobStore,
    opts: OneDriveEmulatorOptions,
  ) {
    const rnd = seededRandom(opts.seed ?? 1);
    this.driveId = hex(rnd, 16);
    this.tenantId = opts.tenantId ?? CONSUMERS_TENANT;
    // Personal accounts: the user id is the drive id; the object id embeds it.
    this.user = {
      id: this.driveId,
      displayName: opts.user?.displayName ?? 'Stagecoach Tester',
      userPrincipalName: opts.user?.userPrincipalName ?? 'tester@outlook.com',
    };
    const oid = `00000000-0000-0000-${this.driveId.slice(0, 4)}-${this.driveId.slice(4)}`;
    this.tokens = new TokenBook({ ttlS: opts.accessTokenTtlS ?? 3600, rotateRefresh: false, prefix: 'EwB' });
    this.identity = new Identity(this.tokens, {
      tenantId: this.tenantId,
      user: { oid, name: this.user.displayName, upn: this.user.userPrincipalName },
      accessTokenTtlS: opts.accessTokenTtlS ?? 3600,
      deviceCodeIntervalS: opts.deviceCodeIntervalS ?? 5,
      deviceCodeExpiresInS: opts.deviceCodeExpiresInS ?? 900,
      clientSecret: opts.clientSecret,
    });
    const settings: EmulatorSettings = {
      pageSize: opts.pageSize ?? 200,
      uploadSessionTtlMs: opts.uploadSessionTtlMs ?? 48 * 3600_000,
      rejectAuthorizationOnPreauthenticatedUrls: opts.rejectAuthorizationOnPreauthenticatedUrls ?? true,
      strictFragmentSize: opts.strictFragmentSize ?? true,
      maxSimpleUploadBytes: opts.maxSimpleUploadBytes ?? 250_000_000,
    };
    this.ctx = {
      drive: new Drive(this.driveId, opts.quotaBytes ?? 5 * 1024 ** 3, { id: this.user.id, displayName: this.user.displayName }),
      blobs,
      tokens: this.tokens,
      identity: this.identity,
      sessions: new Map(),
      settings,
      user: this.user,
    };
    this.server = new EmulatorServer({
      name: 'onedrive',
      port: opts.port,
      handler: (r) => this.dispatch(r),
      faultBody,
      faultExempt: LOGIN_PATH,
      browse: {
        title: 'OneDrive (emulated)',
        hashName: 'quickXorHash',
        entries: () =>
          this.ctx.drive.all().map(({ path, item }): BrowseEntry =>
            item.isFolder
              ? { path, kind: 'folder', modified: item.lastModifiedDateTime }
              : {
                  path,
                  kind: 'file',
                  size: item.size,
                  hash: item.quickXorHash,
                  modified: item.fileSystemInfo.lastModifiedDateTime,
                  versions: [`version ${item.version}`],
                },
          ),
      },
    });
    this.server.random = seededRandom((opts.seed ?? 1) + 1);
  }

  get url(): string {
    return this.server.url;
  }

  private async dispatch(r: EmulatorRequest): Promise<void> {
    const raw = (r.req.url ?? '/').split('?')[0]!;
    const host = r.host;
    const loginHost = LOGIN_HOSTS.includes(host);
    if (loginHost || (host !== GRAPH_HOST && LOGIN_PATH.test(raw))) {
      if (await this.identity.handle(r, raw)) return;
      r.req.resume();
      sendAadError(r, 404, 'invalid_request', 900561, `The endpoint ${raw} does not exist on the identity platform.`);
      return;
    }
    if (/^\/(upload|rup|up|download)\//.test(raw) || (CONTENT_HOST.test(host) && !raw.startsWith('/v1.0'))) {
      await handleContent(this.ctx, r, raw);
      return;
    }
    // Everything else is Graph's: it answers unknown versions and segments itself.
    await handleGraph(this.ctx, r, raw);
  }

  issueAccessToken(ttlS?: number): string {
    return this.identity.issueAccessToken(ttlS);
  }

  addRefreshToken(token: string, clientId?: string): void {
    this.identity.addRefreshToken(token, clientId);
  }

  expireRefreshTokens(): void {
    this.identity.expireRefreshTokens();
  }

  approveDeviceCode(userCode: string, opts?: { afterPolls?: number }): void {
    this.identity.approveDeviceCode(userCode, opts);
  }

  declineDeviceCode(userCode: string): void {
    this.identity.declineDeviceCode(userCode);
  }

  deviceCodes(): DeviceCodeRec[] {
    return [...this.identity.deviceCodes.values()];
  }

  setQuota(totalBytes: number): void {
    this.ctx.drive.quotaTotal = totalBytes;
  }

  setPageSize(n: number): void {
    this.ctx.settings.pageSize = n;
  }

  expireUploadSessions(): void {
    for (const s of this.ctx.sessions.values()) s.expiresAt = 0;
  }

  uploadSessions(): Array<Pick<UploadSession, 'id' | 'name' | 'received' | 'total' | 'expiresAt'>> {
    return [...this.ctx.sessions.values()].map(({ id, name, received, total, expiresAt }) => ({ id, name, received, total, expiresAt }));
  }

  /** The client's own times of the item at `path` (fileSystemInfo), or null when there is none. */
  fileSystemInfo(path: string): { createdDateTime: string; lastModifiedDateTime: string } | null {
    const item = this.find(path);
    return item ? { ...item.fileSystemInfo } : null;
  }

  private find(path: string): ItemRec | null {
    return this.ctx.drive.resolve(this.ctx.drive.root, splitPath(path));
  }

  seedFolder(path: string): { id: string } {
    let cur = this.ctx.drive.root;
    for (const n of splitPath(path)) {
      const next = this.ctx.drive.child(cur, n);
      if (next && !next.isFolder) throw new Error(`[onedrive emulator] ${n} is a file`);
      cur = next ?? this.ctx.drive.createFolder(cur, n);
    }
    return { id: cur.id };
  }

  async seedFile(path: string, data: Buffer): Promise<{ id: string }> {
    const parts = splitPath(path);
    const name = parts.pop();
    if (!name) throw new Error('[onedrive emulator] seedFile needs a file name');
    const parent = this.ctx.drive.get(this.seedFolder(parts.join('/')).id)!;
    const blob = await this.blobs.write(data);
    const quickXorHash = await quickXorOf(this.blobs, blob);
    const existing = this.ctx.drive.child(parent, name);
    if (existing) {
      const old = this.ctx.drive.replaceContent(existing, { blob, quickXorHash });
      if (old) await this.blobs.remove(old);
      return { id: existing.id };
    }
    return { id: this.ctx.drive.createFile(parent, name, { blob, quickXorHash }).id };
  }

  async readFile(path: string): Promise<Buffer | null> {
    const item = this.find(path);
    return item && item.blob ? this.blobs.bytes(item.blob) : null;
  }

  async tree(): Promise<Array<{ path: string; id: string; size: number; hash: string; blob: BlobInfo }>> {
    return this.ctx.drive.files().map(({ path, item }) => ({ path, id: item.id, size: item.size, hash: item.quickXorHash, blob: item.blob! }));
  }

  async corrupt(path: string): Promise<void> {
    const item = this.find(path);
    if (!item || !item.blob) throw new Error(`[onedrive emulator] no file at ${path}`);
    await this.blobs.corrupt(item.blob);
  }

  async close(): Promise<void> {
    await this.server.close();
    await this.blobs.destroy();
  }
}

/**
 * Starts a OneDrive emulator on 127.0.0.1. Callers MUST `close()` it (it removes its temp folder).
 */
export async function startOneDriveEmulator(opts: OneDriveEmulatorOptions = {}): Promise<OneDriveEmulator> {
  const blobs = await BlobStore.create('onedrive');
  const emu = new OneDriveEmulatorImpl(blobs, opts);
  await emu.server.start();
  return emu;
}
