/**
 * Credentials for Google Drive: the auth client the SDK calls through (OAuth refresh token or
 * service-account key), and `authorize`, the headless setup behind `stagecoach auth <id>`.
 *
 * Token refresh. google-auth-library refreshes an access token ahead of its expiry (here 5 min
 * ahead) on the next request, one refresh at a time per refresh token. It does NOT refresh on a
 * 401 while it believes the token still valid (expiry_date set), and never replays a request
 * whose body is a stream. So on a 401 the target calls `invalidate()` and replays the request
 * once itself (re-opening the source for a stream body): see transport.ts.
 *
 * Retries. Every request through the auth client (API calls, the token endpoint, the
 * service-account JWT grant) has the library's own retries turned off: the token endpoint is
 * otherwise retried three times on POST. The project's pacer is the only retry policy.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CodeChallengeMethod, JWT, OAuth2Client } from 'google-auth-library';
import { ConfigError, StagecoachError } from '../../errors.js';
import { fetch as leanFetch } from '../kit/fetch.js';
import { codeFromPaste } from '../kit/pasted-code.js';
import { readSavedToken } from '../saved-token.js';
import {
  DEFAULT_AUTH_URL,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_TOKEN_URL,
  DRIVE_FILE_SCOPE,
  DRIVE_SCOPE,
  type GdriveInternals,
  type GdriveOptions,
  type ServiceAccountKey,
} from './api-types.js';
import { redact } from './classify.js';
import { writeSecretFile } from '../secret-file.js';
import type { AuthIO } from '../target.js';

/** Refresh an access token this long before Google says it expires. */
export const EAGER_REFRESH_MS = 5 * 60 * 1000;

/** The credentials a Drive target calls with. */
export interface DriveAuth {
  readonly kind: 'oauth' | 'serviceAccount';
  /** The client the SDK and the resumable uploader send requests through (a JWT is one too). */
  readonly client: OAuth2Client;
  /** The service account's email (for `check`), or undefined for OAuth. */
  readonly email: string | undefined;
  /**
   * Drops the access token so that the next request fetches a new one. Call it after a 401:
   * the library keeps using a token it believes valid until its expiry.
   */
  invalidate(): void;
}

function urlOf(u: unknown): string {
  return u instanceof URL ? u.href : String(u ?? '');
}

/**
 * Turns the client's own retries off for every request it sends, and sends requests for Google's
 * token endpoint to `tokenUrl` when given (the service-account grant has the public URL built
 * in; the OAuth client takes it as an option, this catches both). Every request the client
 * sends (the Drive SDK's calls, the target's raw ones, the token grants) goes out through the
 * kit's fetch (../kit/fetch.ts), not gaxios's node-fetch.
 */
function govern(client: OAuth2Client, tokenUrl: string | undefined, timeoutMs: number): void {
  client.transporter.defaults.fetchImplementation = leanFetch as unknown as typeof fetch;
  client.transporter.interceptors.request.add({
    resolved: async (config) => {
      config.retry = false;
      delete config.retryConfig;
      // The Drive requests carry their own timeout signal (transport.ts); a token request had
      // none, and one that hung held every upload of the target waiting on the token for ever
      // (found by the chaos suite). gaxios turns `timeout` into a signal before interceptors
      // run, so set the signal.
      if (!config.timeout && !config.signal) config.signal = AbortSignal.timeout(timeoutMs);
      if (tokenUrl !== undefined && urlOf(config.url) === DEFAULT_TOKEN_URL) config.url = new URL(tokenUrl);
      return config;
    },
  });
}

function readKeyFile(path: string): ServiceAccountKey {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('auth.keyFile', `Expected \`auth.keyFile\` to be a readable service account key file, got ${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`, { cause: err });
  }
  let key: Partial<ServiceAccountKey>;
  try {
    key = JSON.parse(raw) as Partial<ServiceAccountKey>;
  } catch {
    // The parser's message may quote the file, which holds a private key.
    throw new ConfigError('auth.keyFile', `Expected \`auth.keyFile\` (${path}) to hold JSON, got something else`);
  }
  if (typeof key.client_email !== 'string' || typeof key.private_key !== 'string') {
    throw new ConfigError('auth.keyFile', `Expected \`auth.keyFile\` (${path}) to be a service account key with client_email and private_key`);
  }
  return key as ServiceAccountKey;
}

/**
 * Makes the auth client of a Drive target from its config:
 * - `auth.kind: oauth`: an OAuth2Client with the client id and secret, the refresh token, and
 *   the token endpoint `endpoints.tokenUrl` (default Google's). No request is sent until the
 *   first API call.
 * - `auth.kind: serviceAccount`: a JWT client from the key file, read now (a missing or
 *   malformed file throws ConfigError at `auth.keyFile`, never quoting the key), with the full
 *   Drive scope.
 * Both refresh 5 min before expiry, and never retry on their own. A token request that gets no
 * answer within `requestTimeoutMs` (default 2 min) fails as a network error.
 */
export function createDriveAuth(options: GdriveOptions, internals: GdriveInternals, stateDir?: string): DriveAuth {
  const tokenUrl = options.endpoints?.tokenUrl;
  const timeoutMs = internals.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const auth = options.auth;
  if (auth.kind === 'serviceAccount') {
    const key = readKeyFile(auth.keyFile);
    const client = new JWT({
      email: key.client_email,
      key: key.private_key,
      ...(key.private_key_id ? { keyId: key.private_key_id } : {}),
      scopes: [DRIVE_SCOPE],
      eagerRefreshThresholdMillis: EAGER_REFRESH_MS,
    });
    govern(client, tokenUrl, timeoutMs);
    return {
      kind: 'serviceAccount',
      client,
      email: key.client_email,
      invalidate: () => {
        // A JWT client has no refresh token: an expired-looking credential makes it sign a new grant.
        client.credentials = { refresh_token: 'jwt-placeholder', expiry_date: 1 };
      },
    };
  }
  const client = new OAuth2Client({
    clientId: auth.clientId,
    clientSecret: auth.clientSecret,
    endpoints: { oauth2TokenUrl: tokenUrl ?? DEFAULT_TOKEN_URL },
    eagerRefreshThresholdMillis: EAGER_REFRESH_MS,
  });
  govern(client, tokenUrl, timeoutMs);
  const refreshToken = auth.refreshToken ?? readSavedToken(options.id, stateDir);
  client.setCredentials({ refresh_token: refreshToken });
  return {
    kind: 'oauth',
    client,
    email: undefined,
    invalidate: () => {
      client.setCredentials({ refresh_token: refreshToken });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// `stagecoach auth <id>`

export type { AuthIO } from '../target.js';

export interface GdriveAuthorizeOptions {
  /** The target's id (named in the instructions). */
  id: string;
  clientId: string;
  clientSecret: string;
  /**
   * Where the refresh token is written (mode 0600, atomically; the folder is made 0700). The CLI
   * passes `savedTokenFile(<the target's state folder>)`, where the target finds it when the
   * config has no `auth.refreshToken`.
   */
  tokenFile: string;
  /** Google's endpoints (emulators and tests). */
  endpoints?: { authUrl?: string; tokenUrl?: string };
  /**
   * The redirect URI registered implicitly for a "Desktop app" OAuth client: any loopback port
   * is accepted. Nothing needs to listen there: on a headless machine the browser's attempt to
   * load it fails, and the user copies the address it shows. Default `http://127.0.0.1:53682/`.
   */
  redirectUri?: string;
  /** Random bytes for `state` and the PKCE verifier (tests). */
  random?: (n: number) => Buffer;
}

export interface AuthorizeResult {
  /** Where the refresh token was written. */
  tokenFile: string;
  /** The line to put under `auth:` in the config. */
  configLine: string;
  /** The scope Google granted. */
  scope: string | undefined;
}

export const DEFAULT_REDIRECT_URI = 'http://127.0.0.1:53682/';

/** What the user pasted: the redirected address, its query, or the bare code (kit/pasted-code.ts). */
export function parsePastedCode(pasted: string, expectedState: string, targetId = 'gdrive'): string {
  return codeFromPaste(pasted, { state: expectedState, targetId, provider: 'gdrive', providerName: 'Google' });
}

/**
 * The headless OAuth setup for a Drive target (`stagecoach auth <id>`), for a "Desktop app"
 * OAuth client:
 * 1. prints Google's consent URL (scope `drive.file`: only what the app makes; offline access,
 *    consent forced so a refresh token is issued, PKCE S256, a random `state`, redirect to a loopback address);
 * 2. asks for what the browser ended on: after consent Google sends the browser to
 *    `http://127.0.0.1:53682/?state=…&code=…`, which fails to load on any other machine than the
 *    one running a listener there; the user copies that address (or only the code) and pastes
 *    it. Google blocked the out-of-band copy/paste flow (`urn:ietf:wg:oauth:2.0:oob`) for all
 *    clients in January 2023, so the loopback redirect is the method left for desktop clients;
 * 3. exchanges the code at the token endpoint, writes the refresh token to `tokenFile` (0600,
 *    atomically) and prints the config line that reads it: `refreshToken: ${file:<path>}`.
 * The refresh token is never printed. Errors: TargetError `gdrive.auth-denied`,
 * `gdrive.auth-state-mismatch`, `gdrive.auth-no-code` (kit/pasted-code.ts), StagecoachError
 * `gdrive.auth-exchange-failed` (the token endpoint refused the
 * code; its OAuth error named), `gdrive.auth-no-refresh-token`.
 */
export async function authorize(options: GdriveAuthorizeOptions, io: AuthIO): Promise<AuthorizeResult> {
  const random = options.random ?? randomBytes;
  const redirectUri = options.redirectUri ?? DEFAULT_REDIRECT_URI;
  const client = new OAuth2Client({
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    redirectUri,
    endpoints: {
      oauth2AuthBaseUrl: options.endpoints?.authUrl ?? DEFAULT_AUTH_URL,
      oauth2TokenUrl: options.endpoints?.tokenUrl ?? DEFAULT_TOKEN_URL,
    },
  });
  govern(client, options.endpoints?.tokenUrl, DEFAULT_REQUEST_TIMEOUT_MS);
  const state = random(16).toString('base64url');
  const verifier = random(48).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const url = client.generateAuthUrl({
    access_type: 'offline',
    prompt: 'consent',
    scope: [DRIVE_FILE_SCOPE],
    state,
    code_challenge: challenge,
    code_challenge_method: CodeChallengeMethod.S256,
    redirect_uri: redirectUri,
  });

  io.print(`Authorize Stagecoach to archive into Google Drive for target "${options.id}".`);
  io.print('1. Open this address in a browser (on any computer) and sign in with the Google account to archive to:');
  io.print('');
  io.print(`   ${url}`);
  io.print('');
  io.print(`2. After you allow access, the browser is sent to ${redirectUri}… and most likely shows`);
  io.print('   "this site can\'t be reached". That is expected: copy the whole address from the address bar.');
  const pasted = await io.prompt('3. Paste that address (or only the code in it) here: ');
  const code = parsePastedCode(pasted, state, options.id);

  let tokens;
  try {
    ({ tokens } = await client.getToken({ code, codeVerifier: verifier, redirect_uri: redirectUri }));
  } catch (err) {
    const data = (err as { response?: { data?: { error?: unknown; error_description?: unknown } } }).response?.data;
    const what = typeof data?.error === 'string' ? `${data.error}${typeof data.error_description === 'string' ? `: ${data.error_description}` : ''}` : (err as Error).message;
    throw new StagecoachError('gdrive.auth-exchange-failed', `[stagecoach] [${options.id}] the token endpoint refused the code (${redact(what)}); run \`stagecoach auth ${options.id}\` again and paste the new address promptly (codes are single-use and short-lived)`);
  }
  if (!tokens.refresh_token) {
    throw new StagecoachError(
      'gdrive.auth-no-refresh-token',
      `[stagecoach] [${options.id}] Google issued no refresh token; remove Stagecoach's access at https://myaccount.google.com/permissions and run \`stagecoach auth ${options.id}\` again`,
    );
  }
  await writeSecretFile(options.tokenFile, `${tokens.refresh_token}\n`);
  const configLine = `refreshToken: \${file:${options.tokenFile}}`;
  io.print('');
  io.print(`The refresh token is stored in ${options.tokenFile} (mode 0600).`);
  io.print(`With auth.refreshToken left out of the config, target "${options.id}" reads it from there; or set:`);
  io.print(`  ${configLine}`);
  return { tokenFile: options.tokenFile, configLine, scope: tokens.scope ?? undefined };
}
