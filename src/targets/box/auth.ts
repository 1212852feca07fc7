/**
 * Box sign-in: the token file, one refresh in flight at a time, the SDK's network session, and
 * the `stagecoach auth <id>` setup flow.
 *
 * Box refresh tokens are single use: every refresh returns a new one, and the old one is dead
 * from then on. So the new one is written to the token file (temp + fsync + rename, mode 0600)
 * inside `TokenStorage.store()`, before the refresh is reported done, and only one refresh runs at
 * a time per target: a second refresh with the same token would fail `invalid_grant` and park the
 * target.
 *
 * How parallel 401s share one refresh: every request carries its own `RequestAuth` (put there by
 * `authInterceptor`), which records the token *generation* its Authorization header was made
 * from. On a 401, `RefreshOn401Strategy` asks the gate to refresh "past" that generation: if a
 * refresh is running, it waits for it; if one finished since the header was made, it does nothing
 * (the replay takes the new token); otherwise it starts one. The request is then replayed once.
 * Nothing else is retried: the project's pacer owns retries.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
// The two auth modules, not the SDK's index: the index loads every manager and schema of the
// API (~1 s at each start, against ~0.35 s for what the target uses).
import { BoxCcgAuth, CcgConfig } from 'box-node-sdk/lib/box/ccgAuth';
import { BoxOAuth, OAuthConfig } from 'box-node-sdk/lib/box/oauth';
import type { TokenStorage } from 'box-node-sdk/lib/box/tokenStorage';
import type { Authentication } from 'box-node-sdk/lib/networking/auth';
import { BaseUrls } from 'box-node-sdk/lib/networking/baseUrls';
import type { FetchOptions } from 'box-node-sdk/lib/networking/fetchOptions';
import type { FetchResponse } from 'box-node-sdk/lib/networking/fetchResponse';
import type { Interceptor } from 'box-node-sdk/lib/networking/interceptors';
import { NetworkSession } from 'box-node-sdk/lib/networking/network';
import type { RetryStrategy } from 'box-node-sdk/lib/networking/retries';
import type { AccessToken } from 'box-node-sdk/lib/schemas/accessToken';
import { TargetError } from '../../errors.js';
import type { BoxOptions } from './api-types.js';
import { BoxHttpError, httpRule, toBoxError } from './classify.js';
import { KitNetworkClient } from './transport.js';
import { writeSecretFile } from '../secret-file.js';
import type { AuthIO, SharedSecrets } from '../target.js';
import { codeFromPaste } from '../kit/pasted-code.js';

/** The default base URLs of Box (what NetworkSession uses when given none). */
export const BOX_DEFAULT_ENDPOINTS = Object.freeze({
  baseUrl: 'https://api.box.com',
  uploadUrl: 'https://upload.box.com/api',
  oauth2Url: 'https://account.box.com/api/oauth2',
});

/** An access token this close to its expiry is refreshed before use rather than sent. */
const EXPIRY_SKEW_MS = 60_000;

/** The token file's name in the target's state folder when the config names none. */
export const TOKEN_FILE_NAME = 'box-tokens.json';

/** The token file a target with `options` uses (OAuth), absolute. */
export function tokenFilePath(options: BoxOptions, stateDir: string): string {
  const auth = options.auth;
  return auth.kind === 'oauth' && auth.tokenFile ? resolve(auth.tokenFile) : join(resolve(stateDir), TOKEN_FILE_NAME);
}

/** What the token file holds (JSON). */
interface TokenFileJson {
  version: 1;
  accessToken?: string;
  refreshToken?: string;
  /** ms since the epoch; absent: unknown. */
  expiresAt?: number;
  tokenType?: string;
  savedAt: string;
}

/** A token as the storage keeps it: the SDK's fields plus when the access token expires. */
export interface HeldToken extends AccessToken {
  expiresAt?: number;
}

/**
 * The SDK's TokenStorage, backed by a file (OAuth) or memory only (CCG: no refresh token to
 * keep). Reads are served from memory; `current()` is synchronous so the gate can read the token
 * and its generation in one tick. `store()` writes the file before it resolves: when the SDK
 * reports a refresh done, the rotated refresh token is on disk (on a fleet's journal, the journal
 * first: see `fileAfterJournal`). Writes are serialised.
 *
 * Start-up: a token file that exists wins; else the config's first `refreshToken`; else nothing
 * (sign in with `stagecoach auth <id>`).
 */
export class BoxTokenStorage implements TokenStorage {
  #token: HeldToken | undefined;
  #loaded: Promise<void> | null = null;
  #writing: Promise<unknown> = Promise.resolve();
  readonly #file: string | null;
  readonly #initialRefreshToken: string | undefined;
  readonly #now: () => number;
  readonly #targetId: string;

  /** See `fileAfterJournal`: the last deferred write, until `saved()` has seen it. */
  #unsaved: Promise<unknown> | null = null;
  readonly #fileAfterJournal: boolean;

  /**
   * `fileAfterJournal`: a fleet's journal keeps the tokens (BoxAuthGate's shared secrets), and
   * what the daemon stores must reach the journal first. `store()` then resolves once the token is
   * held, its file written behind it, and `saved()` reports that write. Waiting for the file's
   * fsyncs before the journal's commit left a daemon killed meanwhile holding the only copy of a
   * refresh token Box had already rotated: every daemon of the fleet then lost the sign-in.
   */
  constructor(opts: { targetId: string; file: string | null; initialRefreshToken?: string | undefined; now?: () => number; fileAfterJournal?: boolean }) {
    this.#file = opts.file;
    this.#initialRefreshToken = opts.initialRefreshToken;
    this.#now = opts.now ?? Date.now;
    this.#targetId = opts.targetId;
    this.#fileAfterJournal = opts.fileAfterJournal ?? false;
  }

  /** Resolves once the token file holds what was stored last; throws as `store()` would have. */
  async saved(): Promise<void> {
    const write = this.#unsaved;
    this.#unsaved = null;
    if (write !== null) await this.#settled(write);
  }

  /** The file the tokens are kept in, or null (memory only). */
  get file(): string | null {
    return this.#file;
  }

  /** Loads the token file (or the config's first refresh token) once. */
  load(): Promise<void> {
    this.#loaded ??= (async () => {
      const fromFile = await this.#readFile();
      if (fromFile) this.#token = fromFile;
      else if (this.#initialRefreshToken) this.#token = { refreshToken: this.#initialRefreshToken };
    })().catch((err: unknown) => {
      this.#loaded = null;
      throw err;
    });
    return this.#loaded;
  }

  async #readFile(): Promise<HeldToken | null> {
    if (!this.#file) return null;
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new TargetError(this.#targetId, 'fatal', `token-file-unreadable: the Box token file ${this.#file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
        code: 'box.token-file-unreadable',
      });
    }
    try {
      const j = JSON.parse(text) as Partial<TokenFileJson>;
      if (typeof j.refreshToken !== 'string' && typeof j.accessToken !== 'string') throw new Error('no token in it');
      const t: HeldToken = { tokenType: j.tokenType ?? 'bearer' };
      return {
        ...t,
        ...(typeof j.accessToken === 'string' ? { accessToken: j.accessToken } : {}),
        ...(typeof j.refreshToken === 'string' ? { refreshToken: j.refreshToken } : {}),
        ...(typeof j.expiresAt === 'number' ? { expiresAt: j.expiresAt } : {}),
      };
    } catch {
      // Never quote the content: it holds the tokens.
      throw new TargetError(
        this.#targetId,
        'fatal',
        `token-file-unreadable: the Box token file ${this.#file} is not a token file; run \`stagecoach auth ${this.#targetId}\``,
        { code: 'box.token-file-unreadable' },
      );
    }
  }

  /**
   * Another process (`stagecoach auth`, `stagecoach check`) may have rotated the tokens and
   * written the file: when the file's refresh token differs from the one held, take the file's
   * tokens. True when it did.
   */
  async adoptNewerFile(): Promise<boolean> {
    if (!this.#file) return false;
    await this.#writing;
    const fromFile = await this.#readFile().catch(() => null);
    if (!fromFile?.refreshToken || fromFile.refreshToken === this.#token?.refreshToken) return false;
    this.#token = fromFile;
    return true;
  }

  /** The token held now (synchronous). */
  current(): HeldToken | undefined {
    return this.#token;
  }

  /** True when `t` has no access token or it expires within a minute (by our clock). */
  stale(t: HeldToken | undefined): boolean {
    if (!t?.accessToken) return true;
    return t.expiresAt !== undefined && this.#now() >= t.expiresAt - EXPIRY_SKEW_MS;
  }

  async store(token: AccessToken): Promise<undefined> {
    const held: HeldToken = {
      ...(token.accessToken !== undefined ? { accessToken: token.accessToken } : {}),
      // A grant without a refresh token (CCG) keeps none; an OAuth grant always brings the new one.
      ...(token.refreshToken !== undefined ? { refreshToken: token.refreshToken } : {}),
      tokenType: token.tokenType ?? 'bearer',
      ...(typeof token.expiresIn === 'number' ? { expiresIn: token.expiresIn, expiresAt: this.#now() + token.expiresIn * 1000 } : {}),
    };
    return this.#keep(held);
  }

  /**
   * Takes tokens another daemon refreshed (read from the shared journal as `serialize()` wrote
   * them), and writes them to the token file as a refresh of our own would. False when `text`
   * holds no token.
   */
  async adopt(text: string): Promise<boolean> {
    let j: Partial<TokenFileJson>;
    try {
      j = JSON.parse(text) as Partial<TokenFileJson>;
    } catch {
      return false;
    }
    if (typeof j.refreshToken !== 'string') return false;
    await this.#keep({
      tokenType: j.tokenType ?? 'bearer',
      refreshToken: j.refreshToken,
      ...(typeof j.accessToken === 'string' ? { accessToken: j.accessToken } : {}),
      ...(typeof j.expiresAt === 'number' ? { expiresAt: j.expiresAt } : {}),
    });
    return true;
  }

  /** Adopts `text` (as adopt()) when its refresh token is not `mine`. True when it did. */
  async adoptIfNewer(text: string, mine: string | undefined): Promise<boolean> {
    let theirs: string | undefined;
    try {
      theirs = (JSON.parse(text) as Partial<TokenFileJson>).refreshToken;
    } catch {
      return false;
    }
    if (typeof theirs !== 'string' || theirs === mine) return false;
    return this.adopt(text);
  }

  /** The held tokens as the shared journal keeps them (the token file's JSON), or null. */
  serialize(): string | null {
    const t = this.#token;
    if (!t?.refreshToken) return null;
    const body: TokenFileJson = {
      version: 1,
      ...(t.accessToken !== undefined ? { accessToken: t.accessToken } : {}),
      refreshToken: t.refreshToken,
      ...(t.expiresAt !== undefined ? { expiresAt: t.expiresAt } : {}),
      tokenType: t.tokenType ?? 'bearer',
      savedAt: new Date(this.#now()).toISOString(),
    };
    return JSON.stringify(body);
  }

  async #keep(held: HeldToken): Promise<undefined> {
    this.#token = held;
    if (!this.#file) return undefined;
    const file = this.#file;
    const body: TokenFileJson = {
      version: 1,
      ...(held.accessToken !== undefined ? { accessToken: held.accessToken } : {}),
      ...(held.refreshToken !== undefined ? { refreshToken: held.refreshToken } : {}),
      ...(held.expiresAt !== undefined ? { expiresAt: held.expiresAt } : {}),
      tokenType: held.tokenType ?? 'bearer',
      savedAt: new Date(this.#now()).toISOString(),
    };
    // The refresh token this replaces is spent: the new one goes in place before the fsyncs.
    const write = this.#writing.then(() => writeSecretFile(file, `${JSON.stringify(body, null, 2)}\n`, { renameBeforeSync: true }));
    this.#writing = write.catch(() => undefined);
    if (this.#fileAfterJournal) {
      // Reported by saved(), once the journal holds the token; a later write reports the last.
      // (#writing above already handles a rejection of `write`.)
      this.#unsaved = write;
      return undefined;
    }
    return this.#settled(write);
  }

  async #settled(write: Promise<unknown>): Promise<undefined> {
    const file = this.#file;
    try {
      await write;
    } catch (err) {
      // The rotated refresh token exists only in memory now; a restart would lose the sign-in.
      throw new TargetError(
        this.#targetId,
        'fatal',
        `token-not-saved: the rotated Box token could not be written to ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        { code: 'box.token-not-saved' },
      );
    }
    return undefined;
  }

  async get(): Promise<AccessToken | undefined> {
    await this.load();
    return this.#token;
  }

  async clear(): Promise<undefined> {
    this.#token = undefined;
    return undefined;
  }
}

function isAuthDead(err: unknown): boolean {
  const e = toBoxError(err);
  return e instanceof BoxHttpError && httpRule(e.status, e.boxCode).kind === 'fatal' && (e.status === 400 || e.status === 401);
}

/**
 * The target's one Authentication: wraps the SDK's BoxOAuth or BoxCcgAuth so that a refresh is
 * single-flight and every successful refresh bumps `generation`. After Box refused the refresh
 * token (`invalid_grant`) it stops asking Box and fails at once with that error, until the token
 * file holds a new sign-in (`stagecoach auth <id>` written by another process).
 */
export class BoxAuthGate implements Authentication {
  #generation = 0;
  #refreshing: Promise<void> | null = null;
  #dead: unknown = null;
  /** Successful token grants made by this gate (tests count them). */
  grants = 0;

  constructor(
    readonly inner: BoxOAuth | BoxCcgAuth,
    readonly storage: BoxTokenStorage,
    private readonly opts: { targetId: string; kind: 'oauth' | 'ccg'; session: () => NetworkSession; shared?: { secrets: SharedSecrets; key: string } },
  ) {}

  /** Bumped by every refresh (or adoption of a newer token file). */
  get generation(): number {
    return this.#generation;
  }

  /** True while a refresh is running. */
  get refreshing(): boolean {
    return this.#refreshing !== null;
  }

  /** The Authorization header to send now and the generation it belongs to. */
  async authorization(networkSession?: NetworkSession): Promise<{ header: string; generation: number }> {
    await this.storage.load();
    // Bounded: each round either returns or waits for a refresh that changed the token.
    for (let round = 0; round < 3; round++) {
      if (this.#refreshing !== null) {
        await this.#refreshing;
        continue;
      }
      const t = this.storage.current();
      if (t?.accessToken && !this.storage.stale(t)) return { header: `Bearer ${t.accessToken}`, generation: this.#generation };
      await this.refresh(this.#generation, networkSession);
    }
    throw new TargetError(this.opts.targetId, 'retry', 'auth-failed: Box gave no usable access token', { code: 'box.auth-failed' });
  }

  /**
   * Makes sure the token is newer than generation `seen`: joins the refresh in flight, does
   * nothing if one already finished since `seen`, else starts one. Rejects with the token
   * endpoint's error (the SDK's BoxApiError) when Box refuses.
   */
  refresh(seen: number, networkSession?: NetworkSession): Promise<void> {
    if (this.#refreshing !== null) return this.#refreshing;
    if (seen < this.#generation) return Promise.resolve();
    const p = this.#doRefresh(networkSession ?? this.opts.session()).finally(() => {
      this.#refreshing = null;
    });
    this.#refreshing = p;
    return p;
  }

  async #doRefresh(networkSession: NetworkSession): Promise<void> {
    const shared = this.opts.kind === 'oauth' ? this.opts.shared : undefined;
    if (shared === undefined) return this.#refreshHere(networkSession);
    // Several daemons, one Box sign-in: the refresh runs under the journal's row lock. A daemon
    // that finds a refresh token newer than its own there takes it (another daemon refreshed)
    // and refreshes only if that one's access token is stale too; either way the row ends up
    // holding the live refresh token, which no other daemon has spent.
    await shared.secrets.update(shared.key, async (stored) => {
      await this.storage.load();
      const mine = this.storage.current()?.refreshToken;
      if (stored !== null && (await this.storage.adoptIfNewer(stored, mine))) {
        this.#dead = null;
        this.#generation++;
        if (!this.storage.stale(this.storage.current())) return { result: undefined };
      }
      await this.#refreshHere(networkSession);
      return { value: this.storage.serialize() ?? undefined, result: undefined };
    });
    // The journal holds the token now; then this daemon's own token file (see fileAfterJournal).
    await this.storage.saved();
  }

  async #refreshHere(networkSession: NetworkSession): Promise<void> {
    await this.storage.load();
    if (await this.storage.adoptNewerFile()) {
      this.#dead = null;
      this.#generation++;
      if (!this.storage.stale(this.storage.current())) return;
    }
    if (this.#dead) throw this.#dead;
    if (this.opts.kind === 'oauth' && !this.storage.current()?.refreshToken) {
      const err = new TargetError(
        this.opts.targetId,
        'fatal',
        `not-signed-in: there is no Box sign-in for this target yet; run \`stagecoach auth ${this.opts.targetId}\``,
        { code: 'box.not-signed-in' },
      );
      this.#dead = err;
      throw err;
    }
    try {
      await this.inner.refreshToken(networkSession);
    } catch (err) {
      if (isAuthDead(err)) this.#dead = err;
      throw err;
    }
    this.grants++;
    this.#generation++;
  }

  async retrieveToken(networkSession?: NetworkSession): Promise<AccessToken> {
    await this.authorization(networkSession);
    return this.storage.current()!;
  }

  async refreshToken(networkSession?: NetworkSession): Promise<AccessToken> {
    await this.refresh(this.#generation, networkSession);
    return this.storage.current()!;
  }

  async retrieveAuthorizationHeader(networkSession?: NetworkSession): Promise<string> {
    return (await this.authorization(networkSession)).header;
  }

  revokeToken(networkSession?: NetworkSession): Promise<undefined> {
    return this.inner.revokeToken(networkSession);
  }

  downscopeToken(scopes: readonly string[], resource?: string, sharedLink?: string, networkSession?: NetworkSession): Promise<AccessToken> {
    return this.inner.downscopeToken(scopes, resource, sharedLink, networkSession);
  }
}

/**
 * The Authentication one request carries: it asks the gate for the header and remembers the
 * generation of the token it sent, so a 401 can tell a stale token from a dead one.
 */
export class RequestAuth implements Authentication {
  used = -1;
  constructor(readonly gate: BoxAuthGate) {}

  async retrieveAuthorizationHeader(networkSession?: NetworkSession): Promise<string> {
    const a = await this.gate.authorization(networkSession);
    this.used = a.generation;
    return a.header;
  }

  retrieveToken(networkSession?: NetworkSession): Promise<AccessToken> {
    return this.gate.retrieveToken(networkSession);
  }

  refreshToken(networkSession?: NetworkSession): Promise<AccessToken> {
    return this.gate.refreshToken(networkSession);
  }

  revokeToken(networkSession?: NetworkSession): Promise<undefined> {
    return this.gate.revokeToken(networkSession);
  }

  downscopeToken(scopes: readonly string[], resource?: string, sharedLink?: string, networkSession?: NetworkSession): Promise<AccessToken> {
    return this.gate.downscopeToken(scopes, resource, sharedLink, networkSession);
  }
}

/** Gives every request made with a BoxAuthGate its own RequestAuth (see the module comment). */
export function authInterceptor(): Interceptor {
  return {
    beforeRequest(options: FetchOptions): FetchOptions {
      return options.auth instanceof BoxAuthGate ? { ...options, auth: new RequestAuth(options.auth) } : options;
    },
    afterRequest(response: FetchResponse): FetchResponse {
      return response;
    },
  };
}

/**
 * Replaces the SDK's BoxRetryStrategy (which retries 429/5xx and uploads up to 5 times and never
 * honours Retry-After): retries nothing but one replay of a request that got 401, after the gate
 * made the token newer than the one that request sent. A refused refresh rejects the request
 * with the token endpoint's error.
 */
export class RefreshOn401Strategy implements RetryStrategy {
  async shouldRetry(fetchOptions: FetchOptions, fetchResponse: FetchResponse, attemptNumber: number): Promise<boolean> {
    const auth = fetchOptions.auth;
    if (fetchResponse.status !== 401 || attemptNumber > 1 || !(auth instanceof RequestAuth)) return false;
    await auth.gate.refresh(auth.used, fetchOptions.networkSession);
    return true;
  }

  retryAfter(): number {
    return 0;
  }
}

/**
 * The SDK's network session for `options.endpoints` (Box's own hosts when absent), sending
 * through KitNetworkClient (transport.ts: the kit's fetch in place of the SDK's client on
 * node-fetch), with the agent every cloud target shares (src/targets/kit/proxy.ts): connections
 * kept alive, HTTPS_PROXY / NO_PROXY honoured. (The SDK's default agent, proxy-agent's
 * ProxyAgent without options, closed each connection after one request.)
 */
export function createBoxNetworkSession(options: BoxOptions, requestTimeoutMs: number): NetworkSession {
  const e = options.endpoints ?? BOX_DEFAULT_ENDPOINTS;
  const trim = (u: string): string => u.replace(/\/+$/, '');
  return new NetworkSession({
    baseUrls: new BaseUrls({ baseUrl: trim(e.baseUrl), uploadUrl: trim(e.uploadUrl), oauth2Url: trim(e.oauth2Url) }),
    retryStrategy: new RefreshOn401Strategy(),
    interceptors: [authInterceptor()],
    ...(requestTimeoutMs > 0 ? { timeoutConfig: { timeoutMs: requestTimeoutMs } } : {}),
    networkClient: new KitNetworkClient(),
  });
}

/** The sign-in of one target: the gate the SDK client uses, its storage and session. */
export interface BoxAuth {
  gate: BoxAuthGate;
  storage: BoxTokenStorage;
  networkSession: NetworkSession;
  /** Every secret this sign-in knows now (client secret, tokens), for scrubbing messages. */
  secrets(): string[];
}

/**
 * Builds the sign-in for `options.auth`: OAuth with rotating refresh tokens kept in the token
 * file (`auth.tokenFile`, default `<stateDir>/box-tokens.json`), or a Client Credentials Grant
 * (enterprise or user subject; tokens in memory, fetched again when they expire). Nothing is
 * read or requested until the first call.
 */
export function createBoxAuth(
  options: BoxOptions,
  stateDir: string,
  opts: { requestTimeoutMs: number; now?: () => number; shared?: SharedSecrets | undefined },
): BoxAuth {
  const auth = options.auth;
  const networkSession = createBoxNetworkSession(options, opts.requestTimeoutMs);
  let storage: BoxTokenStorage;
  let inner: BoxOAuth | BoxCcgAuth;
  if (auth.kind === 'oauth') {
    storage = new BoxTokenStorage({
      targetId: options.id,
      file: tokenFilePath(options, stateDir),
      initialRefreshToken: auth.refreshToken,
      ...(opts.now ? { now: opts.now } : {}),
      fileAfterJournal: opts.shared !== undefined,
    });
    inner = new BoxOAuth({ config: new OAuthConfig({ clientId: auth.clientId, clientSecret: auth.clientSecret, tokenStorage: storage }) });
  } else {
    storage = new BoxTokenStorage({ targetId: options.id, file: null, ...(opts.now ? { now: opts.now } : {}) });
    inner = new BoxCcgAuth({
      config: new CcgConfig({
        clientId: auth.clientId,
        clientSecret: auth.clientSecret,
        ...(auth.userId !== undefined ? { userId: auth.userId } : { enterpriseId: auth.enterpriseId }),
        tokenStorage: storage,
      }),
    });
  }
  const gate = new BoxAuthGate(inner, storage, {
    targetId: options.id,
    kind: auth.kind,
    session: () => networkSession,
    // One row per Box app and target: the fleet's daemons share the target's sign-in.
    ...(opts.shared ? { shared: { secrets: opts.shared, key: `box:${options.id}:${auth.clientId}` } } : {}),
  });
  const configSecrets = [auth.clientSecret, ...(auth.kind === 'oauth' && auth.refreshToken ? [auth.refreshToken] : [])];
  const seen = new Set<string>(configSecrets);
  return {
    gate,
    storage,
    networkSession,
    secrets() {
      const t = storage.current();
      // Keep every token ever held: an error about an old request may quote an old token.
      if (t?.accessToken) seen.add(t.accessToken);
      if (t?.refreshToken) seen.add(t.refreshToken);
      return [...seen];
    },
  };
}

export type { AuthIO } from '../target.js';

/** The code in what the user pasted: the bare code, or the URL the browser was sent to. */
export function codeFromAnswer(answer: string, state: string, targetId: string): string {
  return codeFromPaste(answer, { state, targetId, provider: 'box', providerName: 'Box' });
}

/**
 * `stagecoach auth <id>` for a Box target, headless (as on a NAS). OAuth: prints the authorize
 * URL, takes the pasted code or redirected URL, exchanges it (authorization_code grant) and writes
 * the tokens to the token file (mode 0600, atomic), which from then on wins over the config's
 * `refreshToken`. Box codes live 30 seconds. CCG: needs no setup; checks that a token can be had.
 * Resolves with a line for the user; never prints a token. Errors are TargetErrors (`fatal`).
 */
export async function authorize(
  options: BoxOptions,
  ctx: { stateDir: string },
  io: AuthIO,
  opts: { redirectUri?: string; state?: string; requestTimeoutMs?: number } = {},
): Promise<string> {
  const auth = options.auth;
  const networkSession = createBoxNetworkSession(options, opts.requestTimeoutMs ?? 60_000);
  const wrap = (err: unknown): unknown => {
    if (err instanceof TargetError) return err;
    const e = toBoxError(err);
    const detail = e instanceof Error ? e.message : String(e);
    const rule = e instanceof BoxHttpError && e.boxCode === 'invalid_grant' ? 'auth-code-refused' : 'auth-failed';
    const hint = rule === 'auth-code-refused' ? ': codes are single use and expire after 30 seconds; run the command again' : '';
    return new TargetError(options.id, 'fatal', `${rule}: ${detail}${hint}`, { code: `box.${rule}`, cause: e });
  };
  if (auth.kind === 'ccg') {
    const storage = new BoxTokenStorage({ targetId: options.id, file: null });
    const ccg = new BoxCcgAuth({
      config: new CcgConfig({
        clientId: auth.clientId,
        clientSecret: auth.clientSecret,
        ...(auth.userId !== undefined ? { userId: auth.userId } : { enterpriseId: auth.enterpriseId }),
        tokenStorage: storage,
      }),
    });
    try {
      await ccg.refreshToken(networkSession);
    } catch (err) {
      throw wrap(err);
    }
    const subject = auth.userId !== undefined ? `user ${auth.userId}` : `enterprise ${auth.enterpriseId}`;
    const line = `${options.id}: Client Credentials Grant needs no sign-in; Box issued a token for ${subject}.`;
    io.print(line);
    return line;
  }

  const file = tokenFilePath(options, ctx.stateDir);
  const state = opts.state ?? randomBytes(12).toString('hex');
  const oauth2Url = (options.endpoints?.oauth2Url ?? BOX_DEFAULT_ENDPOINTS.oauth2Url).replace(/\/+$/, '');
  const params = new URLSearchParams({ response_type: 'code', client_id: auth.clientId, state });
  if (opts.redirectUri) params.set('redirect_uri', opts.redirectUri);
  io.print(`Sign in to Box for target "${options.id}":`);
  io.print(`1. Open this URL in a browser (any machine), sign in and grant access:`);
  io.print(`   ${oauth2Url}/authorize?${params.toString()}`);
  io.print(`2. Box sends the browser to the app's redirect URI; the page may fail to load, that is fine.`);
  io.print(`   Paste the code, or the whole address from the browser's address bar, within 30 seconds.`);
  const answer = await io.prompt('Code or URL: ');
  const code = codeFromAnswer(answer, state, options.id);
  const storage = new BoxTokenStorage({ targetId: options.id, file });
  const oauth = new BoxOAuth({ config: new OAuthConfig({ clientId: auth.clientId, clientSecret: auth.clientSecret, tokenStorage: storage }) });
  try {
    await oauth.getTokensAuthorizationCodeGrant(code, networkSession);
  } catch (err) {
    throw wrap(err);
  }
  const line = `${options.id}: signed in to Box; tokens stored in ${file} (mode 0600). Box rotates them on every refresh; keep that file.`;
  io.print(line);
  return line;
}
