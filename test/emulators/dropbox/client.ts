/**
 * Points the official `dropbox` SDK (10.34) at a Dropbox emulator. The SDK hard-codes
 * `https://{api,content}.dropboxapi.com/2/…` and `https://api.dropboxapi.com/oauth2/token`, so the
 * only seam is its `fetch` option: this wrapper sends those URLs to the emulator's origin and
 * keeps the original host in the `Host` header, the way an HTTPS proxy would, so the emulator can
 * check that every call went to the right host. Anything else is refused before a socket opens.
 *
 * node-fetch v2 is kept on purpose (it is what the SDK uses by default): Node's global fetch
 * cannot send the SDK's stream bodies without `duplex: 'half'`.
 */
import { Dropbox, DropboxAuth } from 'dropbox';
import fetch, { type RequestInit, type Response } from 'node-fetch';

/** The hosts the SDK talks to. */
export const DROPBOX_HOSTS: readonly string[] = ['api.dropboxapi.com', 'content.dropboxapi.com', 'api.dropbox.com', 'notify.dropboxapi.com'];

/**
 * A `fetch` for the SDK that rewrites Dropbox's https URLs to `emulatorUrl` (e.g.
 * `http://127.0.0.1:PORT`). Token refreshes go through it too. A URL for any other host rejects.
 */
export function dropboxEmulatorFetch(emulatorUrl: string): (url: string, init?: RequestInit) => Promise<Response> {
  const base = new URL(emulatorUrl);
  return async (url: string, init: RequestInit = {}) => {
    const u = new URL(url);
    if (u.protocol !== 'https:' || !DROPBOX_HOSTS.includes(u.hostname)) {
      throw new Error(`[stagecoach] [dropbox] emulator fetch: refusing ${u.origin}, not a Dropbox API host`);
    }
    const target = new URL(u.pathname + u.search, base);
    const headers = { ...(init.headers as Record<string, string> | undefined), Host: u.host };
    return fetch(target.href, { ...init, headers });
  };
}

export interface DropboxClientOptions {
  /** The emulator's base URL (`emu.url`). */
  url: string;
  /** App key. */
  clientId: string;
  /** App secret; omit for a PKCE app. */
  clientSecret?: string;
  /** Long-lived refresh token: the SDK refreshes ahead of expiry (never on a 401). */
  refreshToken?: string;
  /** A ready access token, instead of (or before) a refresh. */
  accessToken?: string;
}

/**
 * The SDK's token holder, fetching through the emulator. Keep it when the caller must refresh
 * after a 401 itself (`auth.refreshAccessToken()` returns a promise, though typed void): the SDK
 * refreshes only ahead of the expiry it was told.
 */
export function createDropboxAuth(opts: DropboxClientOptions): DropboxAuth {
  return new DropboxAuth({
    clientId: opts.clientId,
    ...(opts.clientSecret !== undefined ? { clientSecret: opts.clientSecret } : {}),
    ...(opts.refreshToken !== undefined ? { refreshToken: opts.refreshToken } : {}),
    ...(opts.accessToken !== undefined ? { accessToken: opts.accessToken } : {}),
    fetch: dropboxEmulatorFetch(opts.url),
  });
}

/** A `Dropbox` SDK client whose every request (API calls and token refreshes) reaches the emulator. */
export function createDropboxClient(opts: DropboxClientOptions | { auth: DropboxAuth }): Dropbox {
  return new Dropbox({ auth: 'auth' in opts ? opts.auth : createDropboxAuth(opts) });
}
