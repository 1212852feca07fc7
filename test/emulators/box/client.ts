/**
 * How box-node-sdk (10.12) is pointed at a Box emulator, and the retry policy it must run with.
 * Tests use it; the product's Box target reuses it with Box's real URLs.
 *
 * Pointing: every manager builds its URLs from the NetworkSession's BaseUrls:
 * `baseUrl + '/2.0/...'` for the API and `baseUrl + '/oauth2/token'` for token grants and
 * refreshes, `uploadUrl + '/2.0/files/content'` for direct uploads (so uploadUrl carries the
 * upload host's `/api` prefix), and chunked-upload URLs come from the session's
 * `session_endpoints`, which the emulator builds from the origin the client used.
 * `oauth2Url` only serves the browser authorize URL. A refresh started without the session goes to
 * the public host: always pass the session (the retry strategy below does).
 *
 * Retries: the SDK's default BoxRetryStrategy retries 429/5xx and even uploads up to 5 attempts,
 * and never honours Retry-After (it looks up `'Retry-After'` in headers whose keys are lower
 * case), so it hammers a throttled Box and duplicates work. Stagecoach's own retry policy must be
 * the only one: `RefreshOn401Strategy` never retries, except one refresh-and-replay of a request
 * that got 401 (expired access token), which is how the SDK refreshes OAuth tokens at all.
 */
import { BoxCcgAuth, BoxClient, BoxOAuth, CcgConfig, OAuthConfig } from 'box-node-sdk';
import type { TokenStorage } from 'box-node-sdk/lib/box/tokenStorage';
import type { Authentication } from 'box-node-sdk/lib/networking/auth';
import { BaseUrls } from 'box-node-sdk/lib/networking/baseUrls';
import type { FetchOptions } from 'box-node-sdk/lib/networking/fetchOptions';
import type { FetchResponse } from 'box-node-sdk/lib/networking/fetchResponse';
import { NetworkSession } from 'box-node-sdk/lib/networking/network';
import type { RetryStrategy } from 'box-node-sdk/lib/networking/retries';

/**
 * Base URLs for an emulator at `url` (e.g. `http://127.0.0.1:PORT`). For the real service pass
 * nothing to NetworkSession (its defaults are api.box.com, upload.box.com/api).
 */
export function boxBaseUrls(url: string): BaseUrls {
  const u = url.replace(/\/+$/, '');
  return new BaseUrls({ baseUrl: u, uploadUrl: `${u}/api`, oauth2Url: `${u}/api/oauth2` });
}

/**
 * A retry strategy that retries nothing but a 401 on an authenticated request: it refreshes the
 * token once (single flight per Authentication, because Box refresh tokens are single use and two
 * parallel refreshes with the same token would fail `invalid_grant`) and replays the request
 * once. A failed refresh rejects the call with the token endpoint's error. Request bodies are
 * replayable because the SDK buffers them before the first attempt.
 */
export class RefreshOn401Strategy implements RetryStrategy {
  private readonly inFlight = new WeakMap<Authentication, Promise<unknown>>();

  async shouldRetry(fetchOptions: FetchOptions, fetchResponse: FetchResponse, attemptNumber: number): Promise<boolean> {
    const auth = fetchOptions.auth;
    if (fetchResponse.status !== 401 || !auth || attemptNumber > 1) return false;
    let p = this.inFlight.get(auth);
    if (!p) {
      p = auth.refreshToken(fetchOptions.networkSession).finally(() => this.inFlight.delete(auth));
      this.inFlight.set(auth, p);
    }
    await p;
    return true;
  }

  retryAfter(): number {
    return 0;
  }
}

/** The NetworkSession for an emulator at `url`: its base URLs and `RefreshOn401Strategy`. */
export function boxNetworkSession(url: string): NetworkSession {
  return new NetworkSession({ baseUrls: boxBaseUrls(url), retryStrategy: new RefreshOn401Strategy() });
}

/** A ready BoxClient with the auth object and session it was built from. */
export interface BoxSdkClient<A> {
  client: BoxClient;
  auth: A;
  networkSession: NetworkSession;
}

/**
 * An OAuth 2.0 (user) client. `tokenStorage` must already hold the saved tokens (at least
 * `refreshToken`; an absent or stale `accessToken` costs one 401 and a refresh). Every refresh
 * rotates the refresh token and hands the new one to `tokenStorage.store()`: the caller must
 * persist it there, or the next refresh fails `invalid_grant`.
 */
export function createBoxOAuthClient(opts: {
  url: string;
  clientId: string;
  clientSecret: string;
  tokenStorage: TokenStorage;
}): BoxSdkClient<BoxOAuth> {
  const networkSession = boxNetworkSession(opts.url);
  const auth = new BoxOAuth({
    config: new OAuthConfig({ clientId: opts.clientId, clientSecret: opts.clientSecret, tokenStorage: opts.tokenStorage }),
  });
  return { client: new BoxClient({ auth, networkSession }), auth, networkSession };
}

/**
 * A Client Credentials Grant client acting as the enterprise's service account
 * (`enterpriseId`) or as a user (`userId`). Tokens are fetched on first use and again on 401.
 */
export function createBoxCcgClient(opts: {
  url: string;
  clientId: string;
  clientSecret: string;
  enterpriseId?: string;
  userId?: string;
  tokenStorage?: TokenStorage;
}): BoxSdkClient<BoxCcgAuth> {
  const networkSession = boxNetworkSession(opts.url);
  const auth = new BoxCcgAuth({
    config: new CcgConfig({
      clientId: opts.clientId,
      clientSecret: opts.clientSecret,
      enterpriseId: opts.enterpriseId,
      userId: opts.userId,
      ...(opts.tokenStorage ? { tokenStorage: opts.tokenStorage } : {}),
    }),
  });
  return { client: new BoxClient({ auth, networkSession }), auth, networkSession };
}
