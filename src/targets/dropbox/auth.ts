/**
 * Dropbox sign-in: the SDK's token holder with one refresh in flight at a time and a refresh on
 * 401, and the `stagecoach auth <id>` setup flow.
 *
 * A Dropbox target signs in with an app key, a long-lived refresh token and, for a confidential
 * app, the app secret (a PKCE app has none). Access tokens live four hours. The SDK refreshes
 * only ahead of the expiry it was told and never on a 401, and it does not share a refresh
 * between parallel calls; so:
 * - `DropboxAuth.refreshAccessToken` is replaced by a gate: while a refresh runs, every caller
 *   (the SDK's own check before each request included) waits for that one;
 * - `call(fn)` runs one API call; when Dropbox answers 401 `expired_access_token`, it refreshes
 *   unless the token changed since that request was made (another call refreshed already), and
 *   runs `fn` once more. `fn` builds its request body afresh, so a stream body is replayed from
 *   the file. Nothing else is retried here: the pipeline's pacer owns retries.
 * The refresh token and the secret travel in the token request's body (see transport.ts), never in a
 * URL, a log line or an error message.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Dropbox, DropboxAuth } from 'dropbox';
import { TargetError } from '../../errors.js';
import { codeFromPaste } from '../kit/pasted-code.js';
import type { DropboxEndpoints, DropboxOptions } from './api-types.js';
import { errorTags, isDropboxResponseError } from './classify.js';
import { createDropboxFetch, createDropboxStream, type CallScope, type ScopedFetch, type ScopedStream, type StreamInit } from './transport.js';
import { writeSecretFile } from '../secret-file.js';
import type { AuthIO } from '../target.js';

/** Where a user signs in to Dropbox to authorize an app. */
export const DROPBOX_AUTHORIZE_URL = 'https://www.dropbox.com/oauth2/authorize';
/** The token endpoint (rewritten to `endpoints.api` when there is an endpoints block). */
export const DROPBOX_TOKEN_URL = 'https://api.dropboxapi.com/oauth2/token';

/** A signed-in Dropbox client for one target. */
export interface DropboxSession {
  readonly auth: DropboxAuth;
  /**
   * Runs one API call in its own scope (cancelled by `signal`): `fn` gets a client whose
   * requests carry that scope. On a 401
   * `expired_access_token`, refreshes (or waits for the refresh under way) and runs `fn` once
   * more; any other error, or a second 401, is thrown as it came. `fn` MUST build its request
   * anew on every run (a fresh stream body). `send` sends, in the same scope (endpoints, proxy
   * agent, cancellation, token tracking), a request the SDK cannot make (a ranged download,
   * transport.ts's `createDropboxStream`); a 401 `fn` turns into a DropboxResponseError is
   * refreshed the same way.
   */
  call<T>(fn: (dbx: Dropbox, send: BoundStream) => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** The secrets this session holds now (refresh token, app secret, access token), for redaction. */
  secrets(): string[];
  /** Refreshes done so far (the first sign-in included). */
  readonly refreshes: number;
}

/** The session's streamed request (`createDropboxStream`), bound to one call's scope. */
export type BoundStream = (url: string, init: StreamInit) => ReturnType<ScopedStream>;

/** Transport settings of a session (the rest comes from the target's options). */
export interface SessionOptions {
  /** Per-request timeout (ms); 0: none. */
  timeoutMs: number;
  /** The fetch under the wrapper (tests). */
  fetch?: Parameters<typeof createDropboxFetch>[0]['fetch'];
}

/** True for Dropbox's "the access token has expired" answer. */
export function isExpiredToken(err: unknown): boolean {
  return isDropboxResponseError(err) && err.status === 401 && errorTags(err)[0] === 'expired_access_token';
}

/** Makes the SDK client of a target: DropboxAuth with the gated refresh, Dropbox on top. */
export function createDropboxSession(options: DropboxOptions, opts: SessionOptions): DropboxSession {
  const fetch: ScopedFetch = createDropboxFetch({ endpoints: options.endpoints, timeoutMs: opts.timeoutMs, ...(opts.fetch ? { fetch: opts.fetch } : {}) });
  const stream: ScopedStream = createDropboxStream({ endpoints: options.endpoints, timeoutMs: opts.timeoutMs });
  const auth = new DropboxAuth({
    clientId: options.auth.appKey,
    ...(options.auth.appSecret !== undefined ? { clientSecret: options.auth.appSecret } : {}),
    refreshToken: options.auth.refreshToken,
    fetch,
  });
  const original = (auth.refreshAccessToken as unknown as () => Promise<void>).bind(auth);
  let inflight: Promise<void> | null = null;
  let refreshes = 0;
  // The refresh belongs to no call: a put cancelled meanwhile must not cancel it for the others.
  const refresh = (): Promise<void> => {
    inflight ??= Promise.resolve()
      .then(original)
      .then(() => {
        refreshes++;
      })
      .finally(() => {
        inflight = null;
      });
    return inflight;
  };
  (auth as unknown as { refreshAccessToken: () => Promise<void> }).refreshAccessToken = refresh;
  // One client per call, its requests bound to the call's scope by the fetch it is given (an
  // AsyncLocalStorage did this before, but it turns on Node's promise hooks for the whole
  // process, ~10 % more CPU on every promise). The SDK's constructor copies every route method
  // onto the client (`Object.assign(this, routes)`, ~300 of them): each call's client is one
  // made once with only its own `fetch`, which the SDK's requests read from `this.fetch`.
  const base = new Dropbox({ auth, fetch: (url: string, init?: Parameters<ScopedFetch>[1]) => fetch(url, init) });
  const client = (scope: CallScope): Dropbox =>
    Object.create(base, { fetch: { value: (url: string, init?: Parameters<ScopedFetch>[1]) => fetch(url, init, scope) } }) as Dropbox;

  return {
    auth,
    get refreshes() {
      return refreshes;
    },
    async call<T>(fn: (dbx: Dropbox, send: BoundStream) => Promise<T>, signal?: AbortSignal): Promise<T> {
      const scope: CallScope = { signal };
      try {
        return await fn(client(scope), (url, init) => stream(url, init, scope));
      } catch (err) {
        if (!isExpiredToken(err)) throw err;
        // Another call may have refreshed since this request's token was read: then just replay.
        if (scope.token === undefined || auth.getAccessToken() === scope.token) await refresh();
        const again: CallScope = { signal };
        return await fn(client(again), (url, init) => stream(url, init, again));
      }
    },
    secrets() {
      const out: string[] = [];
      if (options.auth.refreshToken) out.push(options.auth.refreshToken);
      if (options.auth.appSecret) out.push(options.auth.appSecret);
      const at = auth.getAccessToken();
      if (at) out.push(at);
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// `stagecoach auth <id>`

export type { AuthIO } from '../target.js';

/** What `authorize` needs: the app, where the token goes, and (tests) where Dropbox is. */
export interface DropboxAuthorizeOptions {
  /** The target's id (named in the instructions and errors). */
  id: string;
  /** The app key. */
  appKey: string;
  /** The app secret; absent: PKCE (a public app). */
  appSecret?: string | undefined;
  /**
   * Where the refresh token is written (mode 0600, atomically; the folder is made 0700). The CLI
   * passes `<stateDir>/<id>/dropbox-refresh-token`; the config then reads it with `${file:...}`.
   */
  tokenFile: string;
  /** The config's endpoints block (emulators and tests): the code is exchanged there. */
  endpoints?: DropboxEndpoints | undefined;
  /** Where the user signs in. Default https://www.dropbox.com/oauth2/authorize. */
  authorizeUrl?: string;
  /** Random bytes for the PKCE verifier (tests). */
  random?: (n: number) => Buffer;
  /** Timeout of the token request (ms). Default 60 s. */
  timeoutMs?: number;
  /** The fetch under the wrapper (tests). */
  fetch?: SessionOptions['fetch'];
}

/** What `authorize` did; the refresh token itself is only in `tokenFile`. */
export interface AuthorizeResult {
  /** Where the refresh token was written. */
  tokenFile: string;
  /** The line to put under `auth:` of the target in the config. */
  configLine: string;
  /** True when the code was obtained with PKCE (no app secret). */
  pkce: boolean;
  /** The Dropbox account that authorized the app, if the token endpoint said. */
  accountId: string | undefined;
}

function fail(id: string, rule: string, detail: string, cause?: unknown): TargetError {
  return new TargetError(id, 'fatal', `${rule}: ${detail}`, { code: `dropbox.${rule}`, cause });
}

/**
 * The code in what the user pasted: the bare code Dropbox shows, or an address holding
 * `code=` (when the app has a redirect URI); see kit/pasted-code.ts. Dropbox's page flow sends
 * no state.
 */
export function codeFromAnswer(answer: string, targetId: string): string {
  return codeFromPaste(answer, { targetId, provider: 'dropbox', providerName: 'Dropbox' });
}

/**
 * `stagecoach auth <id>` for a Dropbox target, headless (as on a NAS):
 * 1. prints Dropbox's authorize URL for the app (`response_type=code`,
 *    `token_access_type=offline` so a refresh token is issued, no redirect URI: Dropbox then
 *    shows the code on its own page), with PKCE (S256) when there is no app secret;
 * 2. takes the pasted code (or an address holding `code=`);
 * 3. exchanges it at the token endpoint (`grant_type=authorization_code`, with the secret or the
 *    PKCE verifier, in the request body), writes the refresh token to `tokenFile` (mode 0600,
 *    atomically) and prints the config line that reads it: `refreshToken: ${file:<path>}`.
 * The refresh token is never printed. Errors are TargetErrors `fatal`: `dropbox.auth-no-code`,
 * `dropbox.auth-denied`, `dropbox.auth-code-refused` (the endpoint refused the code: codes are
 * single-use and short-lived), `dropbox.auth-failed`, `dropbox.auth-no-refresh-token`.
 */
export async function authorize(options: DropboxAuthorizeOptions, io: AuthIO): Promise<AuthorizeResult> {
  const id = options.id;
  const random = options.random ?? randomBytes;
  const pkce = options.appSecret === undefined || options.appSecret === '';
  const verifier = pkce ? random(48).toString('base64url') : undefined;
  const params = new URLSearchParams({ client_id: options.appKey, response_type: 'code', token_access_type: 'offline' });
  if (verifier) {
    params.set('code_challenge', createHash('sha256').update(verifier).digest('base64url'));
    params.set('code_challenge_method', 'S256');
  }
  const url = `${options.authorizeUrl ?? DROPBOX_AUTHORIZE_URL}?${params.toString()}`;

  io.print(`Authorize Stagecoach to archive into Dropbox for target "${id}".`);
  io.print('1. Open this address in a browser (on any computer) and sign in with the Dropbox account to archive to:');
  io.print('');
  io.print(`   ${url}`);
  io.print('');
  io.print('2. Click "Allow". Dropbox then shows an access code (it is valid for a few minutes, once).');
  const answer = await io.prompt('3. Paste the code here: ');
  const code = codeFromAnswer(answer, id);

  const body = new URLSearchParams({ grant_type: 'authorization_code', code, client_id: options.appKey });
  if (verifier) body.set('code_verifier', verifier);
  else body.set('client_secret', options.appSecret!);
  const fetch = createDropboxFetch({ endpoints: options.endpoints, timeoutMs: options.timeoutMs ?? 60_000, ...(options.fetch ? { fetch: options.fetch } : {}) });
  let status: number;
  let json: Record<string, unknown> | null = null;
  try {
    const res = await fetch(DROPBOX_TOKEN_URL, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: body.toString(),
    });
    status = res.status;
    const text = await res.text();
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = null;
    }
  } catch (err) {
    throw fail(id, 'auth-failed', `the token endpoint could not be reached: ${(err as Error).message}`, err);
  }
  if (status !== 200 || json === null) {
    const error = typeof json?.error === 'string' ? json.error : undefined;
    const desc = typeof json?.error_description === 'string' ? `: ${json.error_description}` : '';
    if (error === 'invalid_grant') {
      throw fail(id, 'auth-code-refused', `Dropbox refused the code (invalid_grant${desc}); codes are single-use and expire within minutes: run \`stagecoach auth ${id}\` again`);
    }
    throw fail(id, 'auth-failed', `the token endpoint answered ${status}${error ? ` ${error}${desc}` : ''}; check auth.appKey${pkce ? '' : ' and auth.appSecret'} of target "${id}"`);
  }
  const refreshToken = json.refresh_token;
  if (typeof refreshToken !== 'string' || refreshToken === '') {
    throw fail(id, 'auth-no-refresh-token', 'Dropbox issued no refresh token (was token_access_type=offline dropped?); run the command again');
  }
  await writeSecretFile(options.tokenFile, `${refreshToken}\n`);
  const configLine = `refreshToken: \${file:${options.tokenFile}}`;
  const accountId = typeof json.account_id === 'string' ? json.account_id : undefined;
  io.print('');
  io.print(`Signed in${accountId ? ` (Dropbox account ${accountId})` : ''}. The refresh token is stored in ${options.tokenFile} (mode 0600).`);
  io.print(`Under auth: of target "${id}" in the config, set:`);
  io.print(`  ${configLine}`);
  if (pkce) io.print('  (and leave appSecret out: this token was obtained with PKCE)');
  return { tokenFile: options.tokenFile, configLine, pkce, accountId };
}
