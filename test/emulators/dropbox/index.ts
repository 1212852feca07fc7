/**
 * The Dropbox API v2 emulator: a loopback server speaking the documented protocol of
 * api.dropboxapi.com (RPC: JSON body), content.dropboxapi.com (upload/download: args in
 * `Dropbox-API-Arg` or `?arg=`, results in the body or in `Dropbox-API-Result`) and the OAuth
 * token endpoint, so the official `dropbox` SDK runs unmocked against it.
 *
 * Requests are told apart by Host (api.dropboxapi.com / api.dropbox.com / content.dropboxapi.com)
 * and, when the Host is the loopback address (a rewritten URL), by path: the two hosts' paths are
 * disjoint, so the path alone decides. `/api/...` and `/content/...` path prefixes also select a
 * host, for clients that can only be given base URLs. A route called on the wrong host is a 400.
 */
import { pipeline } from 'node:stream/promises';
import { DropboxContentHasher } from '../../../src/archive/dropbox-hash.js';
import {
  type BrowseEntry,
  BlobStore,
  bearer,
  EmulatorServer,
  readBody,
  seededRandom,
  sendJson,
  TokenBook,
  type BlobInfo,
  type Emulator,
  type EmulatorRequest,
} from '../harness/index.js';
import { MAX_REQUEST_BYTES, type Answer, type Ctx, type DownloadRecord, type DropboxState } from './context.js';
import { badInput, DropboxHttpError, dropboxFaultBody, Summaries, WRITE_ROUTE_RE } from './errors.js';
import { createFolder, deleteV2, download, getCurrentAccount, getMetadata, getSpaceUsage, listFolder, listFolderContinue } from './files.js';
import { Namespace, type FileNode } from './model.js';
import { DropboxOAuth, SUBJECT } from './oauth.js';
import { finishBatchV2, sessionAppend, sessionFinish, sessionStart, upload } from './uploads.js';

export { DropboxOAuth } from './oauth.js';

type HostKind = 'api' | 'content';

interface Route {
  host: HostKind;
  style: 'rpc' | 'upload' | 'download';
  /** RPC routes whose argument is Void (`null` or no body). */
  voidArg?: boolean;
  run(ctx: Ctx, args: Record<string, unknown>): Promise<Answer>;
}

const ROUTES: Record<string, Route> = {
  '/2/files/create_folder_v2': { host: 'api', style: 'rpc', run: createFolder },
  '/2/files/get_metadata': { host: 'api', style: 'rpc', run: getMetadata },
  '/2/files/list_folder': { host: 'api', style: 'rpc', run: listFolder },
  '/2/files/list_folder/continue': { host: 'api', style: 'rpc', run: listFolderContinue },
  '/2/files/delete_v2': { host: 'api', style: 'rpc', run: deleteV2 },
  '/2/files/upload_session/finish_batch_v2': { host: 'api', style: 'rpc', run: finishBatchV2 },
  '/2/users/get_current_account': { host: 'api', style: 'rpc', voidArg: true, run: getCurrentAccount },
  '/2/users/get_space_usage': { host: 'api', style: 'rpc', voidArg: true, run: (ctx) => getSpaceUsage(ctx) },
  '/2/files/download': { host: 'content', style: 'download', run: (ctx) => download(ctx) },
  '/2/files/upload': { host: 'content', style: 'upload', run: (ctx) => upload(ctx) },
  '/2/files/upload_session/start': { host: 'content', style: 'upload', run: (ctx) => sessionStart(ctx) },
  '/2/files/upload_session/append_v2': { host: 'content', style: 'upload', run: (ctx) => sessionAppend(ctx, false) },
  '/2/files/upload_session/append': { host: 'content', style: 'upload', run: (ctx) => sessionAppend(ctx, true) },
  '/2/files/upload_session/finish': { host: 'content', style: 'upload', run: (ctx) => sessionFinish(ctx) },
};

const HOSTS: Record<string, HostKind> = {
  'api.dropboxapi.com': 'api',
  'api.dropbox.com': 'api',
  'content.dropboxapi.com': 'content',
};

export interface DropboxEmulatorOptions {
  port?: number;
  /** Seeds ids, cursors, session ids, error-summary padding and random faults. */
  seed?: number;
  /** Space allocated to the account (default 2 GiB, a Basic account). */
  quotaBytes?: number;
  /** Access-token lifetime (default 14400 s, Dropbox's 4 hours). */
  tokenTtlS?: number;
  /** Entries per list_folder page when the call sets no `limit` (default 500). */
  pageSize?: number;
  /** Body limit per upload request (default 150 MiB, Dropbox's). Lower it to test the limit. */
  maxRequestBytes?: number;
}

/** The app and grant a test hands to the SDK; registered at start. */
export interface DropboxCredentials {
  clientId: string;
  clientSecret: string;
  refreshToken: string;
}

export interface DropboxEmulator extends Emulator {
  readonly name: 'dropbox';
  /** A confidential app (key + secret) with one refresh token for the emulated user. */
  readonly credentials: DropboxCredentials;
  /** Apps, refresh tokens and authorization codes (PKCE apps: `addClient(id, null)`). */
  readonly oauth: DropboxOAuth;
  /** An access token issued directly (raw-HTTP tests that skip the token endpoint). */
  accessToken(ttlS?: number): string;
  /** Every access token issued so far expires now: the next call answers 401 expired_access_token. */
  expireTokens(): void;
  /** The user unlinks the app: access tokens answer 401 invalid_access_token, refresh fails invalid_grant. */
  revoke(): void;
  /** Sets the space allocated; writes past it answer `path/insufficient_space`. */
  setQuota(bytes: number): void;
  /** Page size for list_folder calls without `limit`. */
  setPageSize(n: number): void;
  /**
   * The next `count` requests whose path matches get 429 with Retry-After and a RateLimitError
   * body (default: write routes, `too_many_write_operations`, 1 s).
   */
  throttle(count: number, opts?: { match?: RegExp; retryAfterS?: number; reason?: 'too_many_requests' | 'too_many_write_operations' }): void;
  /** The next `count` commits store their bytes with one byte flipped (hash-check tests). */
  corruptNextCommits(count?: number): void;
  /**
   * The next `count` requests whose path matches are fully processed, then the connection is cut
   * instead of answering: the "processed but the response was lost" case (incorrect_offset).
   */
  loseResponses(match: RegExp, count?: number): void;
  /**
   * The next `count` downloads (`files/download`, whole or ranged) send `afterBytes` bytes of
   * their body, then the connection is closed: a download broken part way.
   */
  cutDownloads(afterBytes: number, count?: number): void;
  /** Every `files/download` served: path, the Range asked, status, body bytes actually sent. */
  downloads(): DownloadRecord[];
  /** Upload sessions, for inspection. */
  sessions(): Array<{ id: string; type: 'sequential' | 'concurrent'; size: number; closed: boolean; committed: boolean }>;
  /** Folders, as display paths. */
  folders(): string[];
  /** Files: display path, id, size, content_hash, rev, blob. */
  tree(): Promise<Array<{ path: string; id: string; size: number; hash: string; rev: string; blob: BlobInfo }>>;
  /** Flips a byte of the stored file at `path` (any case) and re-hashes it, as bit rot would show. */
  corrupt(path: string): Promise<void>;
}

export async function startDropboxEmulator(opts: DropboxEmulatorOptions = {}): Promise<DropboxEmulator> {
  const seed = opts.seed ?? 1;
  const random = seededRandom(seed * 7919 + 17);
  const summaries = new Summaries(random);
  const blobs = await BlobStore.create('dropbox');
  const ns = new Namespace(random);
  const ttlS = opts.tokenTtlS ?? 14_400;
  const tokens = new TokenBook({ ttlS, rotateRefresh: false, prefix: 'sl.' });
  const oauth = new DropboxOAuth(tokens, () => ttlS);
  const credentials: DropboxCredentials = {
    clientId: 'stagecoach-test-app',
    clientSecret: 'stagecoach-test-secret',
    refreshToken: 'dbx-rt-stagecoach-test',
  };
  oauth.addClient(credentials.clientId, credentials.clientSecret);
  oauth.addRefreshToken(credentials.refreshToken, credentials.clientId);
  const state: DropboxState = {
    quotaBytes: opts.quotaBytes ?? 2 * 1024 ** 3,
    pageSize: opts.pageSize ?? 500,
    maxRequestBytes: opts.maxRequestBytes ?? MAX_REQUEST_BYTES,
    corruptCommits: 0,
    sessions: new Map(),
    cursors: new Map(),
    random,
    cutDownloads: { left: 0, afterBytes: 0 },
    downloads: [],
  };
  const losses: Array<{ match: RegExp; left: number }> = [];

  const handler = async (r: EmulatorRequest): Promise<void> => {
    let path = r.url.pathname;
    let kind: HostKind | null = HOSTS[r.host] ?? null;
    const prefixed = /^\/(api|content)(\/.*)$/.exec(path);
    if (prefixed) {
      kind = prefixed[1] as HostKind;
      path = prefixed[2]!;
    }
    // `/1/oauth2/token` is the address API v1's OAuth 2 guide gave it; it still answers.
    if ((path === '/oauth2/token' || path === '/1/oauth2/token') && kind !== 'content') return oauth.handle(r);
    const routeName = path.replace(/^\/2\//, '');
    const ctx: Ctx = { r, route: routeName, ns, blobs, errors: summaries, state };
    try {
      const route = ROUTES[path];
      if (!route) throw new DropboxHttpError(404, `Unknown API function: "${routeName}"`);
      if (kind !== null && kind !== route.host) {
        throw badInput(routeName, `this function is served by ${route.host}.dropboxapi.com, not ${r.host}`);
      }
      if (r.method !== 'POST' && !(route.style === 'download' && r.method === 'GET')) {
        throw badInput(routeName, `Expected POST, got ${r.method}`);
      }
      authorize(ctx);
      const args = route.style === 'rpc' ? await rpcArgs(ctx, route.voidArg ?? false) : {};
      const answer = await route.run(ctx, args as Record<string, unknown>);
      if (lose(r, path)) return;
      await write(r, answer);
    } catch (e) {
      if (!(e instanceof DropboxHttpError)) throw e;
      if (lose(r, path)) return;
      const text = typeof e.body === 'string';
      const body = Buffer.from(text ? (e.body as string) : JSON.stringify(e.body));
      r.res.writeHead(e.status, {
        'content-type': text ? 'text/plain; charset=utf-8' : 'application/json',
        'content-length': String(body.length),
        ...e.headers,
      });
      r.res.end(body);
    }
  };

  /** Cuts the connection instead of answering when a loss is armed for this path. */
  function lose(r: EmulatorRequest, path: string): boolean {
    const armed = losses.find((l) => l.left > 0 && l.match.test(path));
    if (!armed) return false;
    armed.left--;
    const entry = server.log.find((e) => e.url === r.req.url && e.status === 0);
    if (entry) entry.fault = 'reset';
    r.req.socket.destroy();
    return true;
  }

  function authorize(ctx: Ctx): void {
    const q = ctx.r.url.searchParams.get('authorization');
    const token = bearer(ctx.r) ?? (q ? q.replace(/^Bearer\s+/i, '') : null);
    if (!token) throw badInput(ctx.route, 'Must provide HTTP header "Authorization" or URL parameter "authorization".');
    const status = tokens.check(token);
    if (status === 'expired') throw summaries.auth('expired_access_token');
    if (status === 'invalid') throw summaries.auth('invalid_access_token');
  }

  const server = new EmulatorServer({
    name: 'dropbox',
    port: opts.port,
    handler,
    faultBody: dropboxFaultBody(summaries),
    faultExempt: /^(\/api)?(\/1)?\/oauth2\//,
    browse: {
      title: 'Dropbox (emulated)',
      hashName: 'content_hash',
      entries: () =>
        ns.all().map((n): BrowseEntry =>
          n.kind === 'folder'
            ? { path: n.display, kind: 'folder' }
            : { path: n.display, kind: 'file', size: n.size, hash: n.contentHash, modified: n.clientModified, versions: [`rev ${n.rev}`] },
        ),
    },
  });
  server.random = seededRandom(seed);
  await server.start();

  const emu: DropboxEmulator = {
    name: 'dropbox',
    server,
    blobs,
    tokens,
    credentials,
    oauth,
    get url() {
      return server.url;
    },
    accessToken(t?: number) {
      return tokens.issue(SUBJECT, t ?? ttlS).accessToken;
    },
    expireTokens() {
      tokens.expireAll();
    },
    revoke() {
      tokens.revoke(SUBJECT);
    },
    setQuota(bytes) {
      state.quotaBytes = bytes;
    },
    setPageSize(n) {
      state.pageSize = n;
    },
    throttle(count, o = {}) {
      const reason = o.reason ?? 'too_many_write_operations';
      const retryAfterS = o.retryAfterS ?? 1;
      const match = o.match ?? WRITE_ROUTE_RE;
      for (let i = 0; i < count; i++) {
        server.faults.queue.push({ match, fault: { kind: 'status', status: 429, retryAfterS, body: summaries.rateLimit(reason, retryAfterS).body } });
      }
    },
    corruptNextCommits(count = 1) {
      state.corruptCommits += count;
    },
    loseResponses(match, count = 1) {
      losses.push({ match, left: count });
    },
    cutDownloads(afterBytes, count = 1) {
      state.cutDownloads = { left: count, afterBytes };
    },
    downloads() {
      return state.downloads.map((d) => ({ ...d }));
    },
    sessions() {
      return [...state.sessions.values()].map((s) => ({ id: s.id, type: s.type, size: s.size, closed: s.closed, committed: s.committed }));
    },
    folders() {
      return ns.all().filter((n) => n.kind === 'folder').map((n) => n.display);
    },
    async tree() {
      return ns
        .all()
        .filter((n): n is FileNode => n.kind === 'file')
        .map((n) => ({ path: n.display, id: n.id, size: n.size, hash: n.contentHash, rev: n.rev, blob: n.blob }));
    },
    async corrupt(p) {
      const node = ns.get(p.toLowerCase());
      if (node?.kind !== 'file') throw new Error(`[stagecoach] [dropbox] emulator: no file at ${p}`);
      await blobs.corrupt(node.blob);
      const hash = (await blobs.hash(node.blob, { ch: () => new DropboxContentHasher() })).ch;
      ns.patch({ ...node, contentHash: hash });
    },
    async close() {
      await server.close();
      await blobs.destroy();
    },
  };
  return emu;
}

/** Reads an RPC body: JSON with a JSON Content-Type; Void routes take no body or `null`. */
async function rpcArgs(ctx: Ctx, voidArg: boolean): Promise<Record<string, unknown> | null> {
  const raw = await readBody(ctx.r);
  if (raw.length === 0) {
    if (voidArg) return null;
    throw badInput(ctx.route, 'request body: could not decode input as JSON');
  }
  const type = String(ctx.r.req.headers['content-type'] ?? '').toLowerCase();
  if (!/^application\/json(;\s*charset=utf-8)?$/.test(type) && type !== 'text/plain; charset=dropbox-cors-hack') {
    throw badInput(
      ctx.route,
      `Bad HTTP "Content-Type" header: "${type}".  Expecting one of "application/json", "application/json; charset=utf-8", "text/plain; charset=dropbox-cors-hack".`,
    );
  }
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch {
    throw badInput(ctx.route, 'request body: could not decode input as JSON');
  }
  if (voidArg) {
    if (v !== null) throw badInput(ctx.route, 'request body: expected null, got value');
    return null;
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw badInput(ctx.route, 'request body: expected object');
  return v as Record<string, unknown>;
}

async function write(r: EmulatorRequest, a: Answer): Promise<void> {
  if (a.stream && a.cut) {
    r.res.writeHead(a.status ?? 200, a.headers ?? {});
    for await (const chunk of a.stream) await new Promise<void>((done, fail) => r.res.write(chunk as Buffer, (e) => (e ? fail(e) : done())));
    // Everything written has reached the socket: close it short of Content-Length.
    r.req.socket.destroy();
    return;
  }
  if (a.stream) {
    r.res.writeHead(a.status ?? 200, a.headers ?? {});
    await pipeline(a.stream, r.res);
    return;
  }
  sendJson(r, a.status ?? 200, a.json === undefined ? null : a.json, a.headers ?? {});
}
