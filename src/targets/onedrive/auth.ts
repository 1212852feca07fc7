/**
 * Signing the OneDrive target in, with MSAL (`@azure/msal-node` 7.2) owning every token:
 *
 * - **delegated** (a person's OneDrive, Personal with tenant `consumers`, for Business with a
 *   tenant id or domain): `stagecoach auth <id>` signs in once (device-code flow for a public
 *   client; authorization-code flow with PKCE when the config has a client secret) and MSAL's
 *   token cache — refresh token included — is persisted in a file (mode 0600, written
 *   atomically). Each request then asks MSAL for a token silently: from the cache while it is
 *   valid, by the refresh grant when it is not. MSAL does not keep a refresh token it did not
 *   obtain itself, which is why the sign-in goes through MSAL and not through the config.
 * - **app** (client credentials, a business user's drive at `/users/{userId}/drive`): MSAL's
 *   confidential client asks for a `.default` token; nothing is persisted.
 *
 * Graph never refreshes on 401 by itself: after a 401 the caller asks `refresh(rejected)` for
 * another token and replays once. One forced refresh is in flight at a time; callers whose token
 * was already replaced get the new one without another grant. Delegated MSAL calls run one at a
 * time (see `Serial`): MSAL empties its in-memory cache at the start of each silent call.
 *
 * MSAL talks to the identity platform through `NodeNetworkClient` (the config's
 * `endpoints.login` rewrites login.microsoftonline.com). MSAL 7.2 carries that host's metadata
 * built in, so it fetches no discovery document. No token, secret or refresh token ever goes to
 * a log line or an error message.
 */
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type {
  AccountInfo,
  AuthenticationResult,
  ConfidentialClientApplication as ConfidentialClient,
  Configuration,
  ICachePlugin,
  PublicClientApplication as PublicClient,
  TokenCacheContext,
} from '@azure/msal-node';
import { createRequire } from 'node:module';
// MSAL's CommonJS bundle, one file, loads in a third of the time of its ES modules (~0.1 s
// against ~0.3-0.5 s at every start). Its errors are recognised by name (classify.ts), so
// instances from either build classify alike.
const { ConfidentialClientApplication, CryptoProvider, LogLevel, PublicClientApplication } = createRequire(import.meta.url)(
  '@azure/msal-node',
) as typeof import('@azure/msal-node');
import { TargetError } from '../../errors.js';
import type { OnedriveAppAuth, OnedriveDelegatedAuth, OnedriveOptions } from './api-types.js';
import { GRAPH_DEFAULT_SCOPE, LOGIN_BASE_URL } from './api-types.js';
import { adviceFor, classifyRule, detailOf } from './classify.js';
import { NodeNetworkClient, endpointRewrite, type UrlRewrite } from './transport.js';
import { writeSecretFile } from '../secret-file.js';
import type { AuthIO } from '../target.js';
import { codeFromPaste } from '../kit/pasted-code.js';

/** The token cache's file name in the target's state folder (unless `auth.tokenCacheFile`). */
export const TOKEN_CACHE_FILE = 'msal-token-cache.json';

/** Where the delegated token cache is kept: `auth.tokenCacheFile`, or in the state folder. */
export function tokenCachePath(options: OnedriveOptions, stateDir: string): string {
  const auth = options.auth;
  if (auth.kind === 'delegated' && auth.tokenCacheFile) return path.resolve(auth.tokenCacheFile);
  return path.join(stateDir, TOKEN_CACHE_FILE);
}

/**
 * The delegated scopes asked for: `Files.ReadWrite` (the user's own drive), or
 * `Files.ReadWrite.All` when `driveId` names a drive that may be someone else's. MSAL adds
 * `openid profile offline_access` (the refresh token) by itself.
 */
export function delegatedScopes(options: OnedriveOptions): string[] {
  return [options.driveId ? 'Files.ReadWrite.All' : 'Files.ReadWrite'];
}

/** The authority URL of the config's tenant (always the public host; the network client rewrites it). */
export function authorityOf(auth: { tenant: string }): string {
  return `${LOGIN_BASE_URL}/${encodeURIComponent(auth.tenant)}`;
}

/**
 * MSAL's cache plugin over one file. MSAL clears its in-memory cache before each silent call and
 * rebuilds it from what this plugin deserializes, so every access gets the whole cache: from
 * memory while the file is as this plugin last read or wrote it, read again when it changed on
 * disk (another process — `stagecoach auth` — wrote it). After an access that changed the cache,
 * the cache is written with `writeSecretFile`. Writes are serialised.
 */
export class FileTokenCache implements ICachePlugin {
  private seen: string | null = null;
  private data: string | null = null;
  private writes: Promise<void> = Promise.resolve();

  constructor(readonly file: string) {}

  private async signature(): Promise<string | null> {
    try {
      const st = await stat(this.file);
      return `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async beforeCacheAccess(ctx: TokenCacheContext): Promise<void> {
    await this.writes;
    const sig = await this.signature();
    if (sig !== null && sig !== this.seen) {
      this.data = await readFile(this.file, 'utf8');
      this.seen = sig;
    }
    if (this.data !== null) ctx.tokenCache.deserialize(this.data);
  }

  async afterCacheAccess(ctx: TokenCacheContext): Promise<void> {
    if (!ctx.cacheHasChanged) return;
    const data = ctx.tokenCache.serialize();
    const write = this.writes.then(async () => {
      await writeSecretFile(this.file, data);
      this.data = data;
      this.seen = await this.signature();
    });
    // A failed write must not block later ones; this caller still sees it fail.
    this.writes = write.catch(() => undefined);
    await write;
  }
}

/**
 * Runs MSAL calls one at a time. MSAL empties its in-memory cache at the start of every silent
 * call and refills it from the plugin after an await: a call running meanwhile would find no
 * account or no token and report `no_tokens_found`.
 */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => undefined);
    return p;
  }
}

function msalConfig(clientId: string, authority: string, rewrite: UrlRewrite | undefined, timeoutMs: number, extra: { clientSecret?: string; cachePlugin?: ICachePlugin } = {}): Configuration {
  return {
    auth: { clientId, authority, ...(extra.clientSecret ? { clientSecret: extra.clientSecret } : {}) },
    system: {
      networkClient: new NodeNetworkClient(rewrite, timeoutMs),
      // MSAL's own log lines may hold personal data and ids: none of them reach ours.
      loggerOptions: { piiLoggingEnabled: false, logLevel: LogLevel.Error, loggerCallback: () => undefined },
    },
    ...(extra.cachePlugin ? { cache: { cachePlugin: extra.cachePlugin } } : {}),
  };
}

/** The target's view of its credentials. */
export interface OneDriveAuth {
  readonly kind: 'delegated' | 'app';
  /** A Graph access token: MSAL's cached one while valid, else a refreshed one. */
  token(): Promise<string>;
  /**
   * A token other than `rejected` (which Graph answered 401): MSAL's cache if it already holds a
   * newer one, else a forced refresh (one in flight at a time).
   */
  refresh(rejected: string): Promise<string>;
  /** Who is signed in, for `check` (a user name, or the app's client id). */
  who(): Promise<string>;
  /** Every token handed out so far, and the client secret: to scrub from any text shown. */
  secrets(): string[];
}

function authFailure(targetId: string, err: unknown): unknown {
  if (err instanceof TargetError) return err;
  const { kind, rule } = classifyRule(err);
  // MSAL's network errors come back here too; anything else is about the sign-in.
  const detail = detailOf(err);
  return new TargetError(targetId, kind, `${rule}: ${detail}${adviceFor(rule, targetId)}`, { code: `onedrive.${rule}`, cause: err });
}

function noAccount(targetId: string, file: string): TargetError {
  return new TargetError(targetId, 'fatal', `auth-missing: no signed-in account in the token cache ${file}${adviceFor('auth-missing', targetId)}`, {
    code: 'onedrive.auth-missing',
  });
}

/** A token is handed out from memory until this long before it expires, then MSAL is asked. */
const TOKEN_MEMO_MARGIN_MS = 5 * 60_000;

/**
 * Makes the target's credentials. Nothing is read or requested until the first `token()`.
 * Errors are TargetErrors (`onedrive.auth-*`, or `network` / `auth-unavailable` for transient
 * failures of the identity platform).
 */
export function createOneDriveAuth(options: OnedriveOptions, ctx: { stateDir: string }, internals: { requestTimeoutMs?: number } = {}): OneDriveAuth {
  const id = options.id;
  const rewrite = endpointRewrite(options.endpoints);
  const timeoutMs = internals.requestTimeoutMs ?? 120_000;
  const handed = new Set<string>();
  let refreshing: Promise<string> | null = null;
  // The last token and until when to hand it out without asking MSAL: its cache lookup costs
  // about half a millisecond of CPU per request (and a read of the token cache file for
  // delegated auth), which small files pay on every upload.
  let memo: { token: string; until: number } | null = null;
  const keep = (r: AuthenticationResult | null): string => {
    if (!r?.accessToken) throw new TargetError(id, 'retry', 'auth-unavailable: the identity platform returned no access token', { code: 'onedrive.auth-unavailable' });
    handed.add(r.accessToken);
    memo = r.expiresOn ? { token: r.accessToken, until: r.expiresOn.getTime() - TOKEN_MEMO_MARGIN_MS } : null;
    return r.accessToken;
  };
  const memoized = (): string | null => (memo && Date.now() < memo.until ? memo.token : null);

  if (options.auth.kind === 'app') {
    const auth: OnedriveAppAuth = options.auth;
    const cca = new ConfidentialClientApplication(msalConfig(auth.clientId, authorityOf(auth), rewrite, timeoutMs, { clientSecret: auth.clientSecret }));
    const acquire = async (force: boolean): Promise<string> => {
      try {
        return keep(await cca.acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT_SCOPE], ...(force ? { skipCache: true } : {}) }));
      } catch (err) {
        throw authFailure(id, err);
      }
    };
    return {
      kind: 'app',
      token: async () => memoized() ?? acquire(false),
      async refresh(rejected) {
        memo = null;
        const current = await acquire(false);
        if (current !== rejected) return current;
        refreshing ??= acquire(true).finally(() => (refreshing = null));
        return refreshing;
      },
      who: async () => `app ${auth.clientId} in tenant ${auth.tenant}`,
      secrets: () => [...handed, auth.clientSecret],
    };
  }

  const auth: OnedriveDelegatedAuth = options.auth;
  const file = tokenCachePath(options, ctx.stateDir);
  const plugin = new FileTokenCache(file);
  const config = msalConfig(auth.clientId, authorityOf(auth), rewrite, timeoutMs, { cachePlugin: plugin, ...(auth.clientSecret ? { clientSecret: auth.clientSecret } : {}) });
  const app = auth.clientSecret ? new ConfidentialClientApplication(config) : new PublicClientApplication(config);
  const scopes = delegatedScopes(options);
  const serial = new Serial();

  const account = async (): Promise<AccountInfo> => {
    let accounts: AccountInfo[];
    try {
      accounts = await app.getTokenCache().getAllAccounts();
    } catch (err) {
      throw authFailure(id, err);
    }
    const first = accounts[0];
    if (!first) throw noAccount(id, file);
    return first;
  };
  const silent = (force: boolean): Promise<string> =>
    serial.run(async () => {
      const acct = await account();
      try {
        return keep(await app.acquireTokenSilent({ account: acct, scopes, forceRefresh: force }));
      } catch (err) {
        throw authFailure(id, err);
      }
    });
  return {
    kind: 'delegated',
    token: async () => memoized() ?? silent(false),
    async refresh(rejected) {
      memo = null;
      const current = await silent(false);
      if (current !== rejected) return current;
      refreshing ??= silent(true).finally(() => (refreshing = null));
      return refreshing;
    },
    who: async () => (await serial.run(account)).username || 'the signed-in account',
    secrets: () => [...handed, ...(auth.clientSecret ? [auth.clientSecret] : [])],
  };
}

export type { AuthIO } from '../target.js';

/** Knobs of `authorize` (the CLI passes none; tests and odd app registrations may). */
export interface AuthorizeOptions {
  /** Device-code flow: give up after this many seconds (default: the code's own lifetime, 15 minutes). */
  timeoutS?: number;
  /**
   * Authorization-code flow (a delegated client with a secret): the redirect URI registered for
   * the app. Nothing needs to listen there. Default `http://localhost:53682/`.
   */
  redirectUri?: string;
  /** Per-request timeout against the identity platform, ms (default 60 s). */
  requestTimeoutMs?: number;
}

/** The redirect URI the authorization-code flow uses unless told otherwise. */
export const DEFAULT_REDIRECT_URI = 'http://localhost:53682/';

/** The code in what the user pasted: the bare code, or the URL the browser was sent to. */
export function codeFromAnswer(answer: string, state: string, targetId: string): string {
  return codeFromPaste(answer, { state, targetId, provider: 'onedrive', providerName: 'Microsoft' });
}

async function keepOnly(app: PublicClient | ConfidentialClient, keepId: string | undefined): Promise<void> {
  const cache = app.getTokenCache();
  for (const a of await cache.getAllAccounts()) if (a.homeAccountId !== keepId) await cache.removeAccount(a);
}

/**
 * `stagecoach auth <id>` for a OneDrive target, headless (as on a NAS).
 *
 * - delegated, public client: the device-code flow. Prints the verification URL and the user
 *   code, polls the identity platform until the code is approved in a browser (on any machine),
 *   declined or expired.
 * - delegated with a client secret (a confidential web app): the authorization-code flow with
 *   PKCE. Prints the sign-in URL, takes the pasted redirect URL (or bare code).
 * - app: needs no sign-in; checks that a token can be had.
 *
 * A delegated sign-in leaves one account in the token cache file (mode 0600, atomic): the new
 * one. Resolves with a line for the user; never prints a token. Errors are TargetErrors
 * (`fatal`, code `onedrive.auth-*`).
 */
export async function authorize(options: OnedriveOptions, ctx: { stateDir: string }, io: AuthIO, opts: AuthorizeOptions = {}): Promise<string> {
  const id = options.id;
  const rewrite = endpointRewrite(options.endpoints);
  const timeoutMs = opts.requestTimeoutMs ?? 60_000;
  const fail = (err: unknown): unknown => {
    if (err instanceof TargetError) return err;
    const { rule } = classifyRule(err);
    const why = rule === 'auth-revoked' || rule === 'auth-unavailable' ? 'auth-failed' : rule;
    return new TargetError(id, 'fatal', `${why}: the sign-in did not complete: ${detailOf(err)}`, { code: `onedrive.${why}`, cause: err });
  };

  if (options.auth.kind === 'app') {
    const auth = options.auth;
    const cca = new ConfidentialClientApplication(msalConfig(auth.clientId, authorityOf(auth), rewrite, timeoutMs, { clientSecret: auth.clientSecret }));
    try {
      const r = await cca.acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT_SCOPE] });
      if (!r?.accessToken) throw new Error('the identity platform returned no access token');
    } catch (err) {
      throw fail(err);
    }
    const line = `${id}: app-only (client credentials) needs no sign-in; the identity platform issued a token for tenant ${auth.tenant}.`;
    io.print(line);
    return line;
  }

  const auth = options.auth;
  const file = tokenCachePath(options, ctx.stateDir);
  const plugin = new FileTokenCache(file);
  const scopes = delegatedScopes(options);
  let result: AuthenticationResult | null;
  let app: PublicClient | ConfidentialClient;
  if (!auth.clientSecret) {
    const pca = new PublicClientApplication(msalConfig(auth.clientId, authorityOf(auth), rewrite, timeoutMs, { cachePlugin: plugin }));
    app = pca;
    try {
      result = await pca.acquireTokenByDeviceCode({
        scopes,
        deviceCodeCallback: (r) => {
          io.print(`Sign in to OneDrive for target "${id}":`);
          io.print(`1. On any device, open ${r.verificationUri}`);
          io.print(`2. Enter the code ${r.userCode} and sign in with the account whose OneDrive is archived to.`);
          io.print(`Waiting for the sign-in (the code expires in ${Math.round(r.expiresIn / 60)} minutes)…`);
        },
        ...(opts.timeoutS !== undefined ? { timeout: opts.timeoutS } : {}),
      });
    } catch (err) {
      throw fail(err);
    }
  } else {
    const cca = new ConfidentialClientApplication(
      msalConfig(auth.clientId, authorityOf(auth), rewrite, timeoutMs, { cachePlugin: plugin, clientSecret: auth.clientSecret }),
    );
    app = cca;
    const redirectUri = opts.redirectUri ?? DEFAULT_REDIRECT_URI;
    const crypto = new CryptoProvider();
    const pkce = await crypto.generatePkceCodes();
    const state = randomBytes(12).toString('hex');
    try {
      const url = await cca.getAuthCodeUrl({ scopes, redirectUri, codeChallenge: pkce.challenge, codeChallengeMethod: 'S256', state });
      io.print(`Sign in to OneDrive for target "${id}":`);
      io.print('1. Open this URL in a browser (any machine), sign in and grant access:');
      io.print(`   ${url}`);
      io.print(`2. The browser is sent to ${redirectUri}; the page may fail to load, that is fine.`);
      io.print("   Paste the whole address from the browser's address bar (or just its code).");
      const code = codeFromAnswer(await io.prompt('Address or code: '), state, id);
      result = await cca.acquireTokenByCode({ code, scopes, redirectUri, codeVerifier: pkce.verifier });
    } catch (err) {
      throw fail(err);
    }
  }
  if (!result?.account) throw fail(new Error('the identity platform returned no account'));
  try {
    await keepOnly(app, result.account.homeAccountId);
  } catch (err) {
    throw fail(err);
  }
  const line = `${id}: signed in to OneDrive as ${result.account.username || 'the account'}; token cache in ${file} (mode 0600). Keep that file: it holds the refresh token.`;
  io.print(line);
  return line;
}
