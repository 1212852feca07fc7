/**
 * The `fetch` the Dropbox SDK is given. The SDK hard-codes `https://{api,content}.dropboxapi.com`
 * and takes no base URL, so this is where the target:
 * - points the SDK at the config's `endpoints` (`{api, content}` base URLs) by rewriting those
 *   hosts, or leaves the real hosts alone when there is no `endpoints` block. A rewritten request
 *   is sent as to any base URL: its Host is the endpoint's own;
 * - moves the token request's parameters out of the URL: the SDK puts the refresh token and the
 *   app secret in the query string of `POST /oauth2/token`, where proxies and error messages
 *   would show them. They go in a form body instead (Dropbox documents both), so no URL this
 *   wrapper sends ever holds a secret;
 * - ties each request to the call that made it (the `CallScope` the session binds into a
 *   per-call client's fetch): the put's
 *   abort signal cancels it, and the bearer token it carried is recorded, so a 401 can tell a
 *   stale token from one already refreshed;
 * - aborts a request whose body stream fails and rejects with the body's error; cuts a request
 *   the server answered with an error before its body was sent, so the upload stops there;
 * - turns the fetch's errors into DropboxNetworkError with a clean message.
 * Requests go out through the kit's fetch (../kit/fetch.ts), a node:http exchange that keeps
 * connections alive. `createDropboxStream` sends what the SDK cannot (a ranged download) with
 * Node's http client directly, its answer handed over unread as an IncomingMessage, which fails
 * (`aborted`) when its connection closes short of its Content-Length, so a broken download is seen.
 * No retry here: the project's pacer retries; auth.ts replays once after a token refresh.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { abortError } from '../kit/abort.js';
import { FetchResponse as Response, fetch as leanFetch, type FetchInit as RequestInit } from '../kit/fetch.js';
import { agentFor } from '../kit/proxy.js';
import { DropboxNetworkError } from './classify.js';
import type { DropboxEndpoints } from './api-types.js';

/** The hosts the SDK sends to, and which endpoint stands in for each. */
const HOSTS: Record<string, keyof DropboxEndpoints> = {
  'api.dropboxapi.com': 'api',
  'api.dropbox.com': 'api',
  'content.dropboxapi.com': 'content',
};

/** What one API call (and its replay) shares with the requests it makes. */
export interface CallScope {
  /** Cancels the call's requests (the put's signal). */
  signal?: AbortSignal | undefined;
  /** The bearer token the call's last request carried. */
  token?: string | undefined;
}

/** The SDK's fetch with the scope of the call that sends the request (none: not cancellable, not tracked). */
export type ScopedFetch = (url: string, init?: RequestInit, scope?: CallScope) => Promise<Response>;

/** How `createDropboxFetch` sends: where to, and how long a request may take. */
export interface DropboxFetchOptions {
  /** Base URLs for the two hosts; absent: the real hosts. */
  endpoints?: DropboxEndpoints | undefined;
  /** Per-request timeout (ms) until the answer is read; 0: none. */
  timeoutMs: number;
  /** The underlying fetch (tests). Default the kit's (../kit/fetch.ts). */
  fetch?: typeof leanFetch;
}

function headerRecord(h: RequestInit['headers']): Record<string, string> {
  if (!h) return {};
  if (typeof (h as { forEach?: unknown }).forEach === 'function' && !Array.isArray(h)) {
    const out: Record<string, string> = {};
    (h as { forEach(cb: (v: string, k: string) => void): void }).forEach((v, k) => {
      out[k] = v;
    });
    return out;
  }
  if (Array.isArray(h)) return Object.fromEntries(h as Array<[string, string]>);
  return { ...(h as Record<string, string>) };
}

function authorizationOf(headers: Record<string, string>): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === 'authorization') return v;
  return undefined;
}

function stripQuery(s: string): string {
  return s.replace(/(https?:\/\/[^\s?#]*)\?[^\s#]*/g, '$1');
}

function networkError(err: unknown): DropboxNetworkError {
  const e = err as { message?: unknown; code?: unknown; errno?: unknown; type?: unknown };
  const code = typeof e.code === 'string' ? e.code : typeof e.errno === 'string' ? e.errno : typeof e.type === 'string' ? e.type : undefined;
  const message = stripQuery(typeof e.message === 'string' ? e.message : String(err));
  return new DropboxNetworkError(`[stagecoach] [dropbox] ${message}`, code, err);
}

/** Resolves a Dropbox URL to the URL to send (endpoint rewrite), or throws for a foreign host. */
export function resolveUrl(url: string, endpoints: DropboxEndpoints | undefined): URL {
  const u = new URL(url);
  if (!endpoints) return u;
  const which = u.protocol === 'https:' ? HOSTS[u.hostname] : undefined;
  if (which === undefined) {
    throw new DropboxNetworkError(`[stagecoach] [dropbox] refusing a request to ${u.origin}: not a Dropbox API host the endpoints block covers`, 'EREFUSED');
  }
  const base = endpoints[which].replace(/\/+$/, '');
  return new URL(`${base}${u.pathname}${u.search}`);
}

/**
 * The `fetch` to give `DropboxAuth` and, bound to a call's scope, each call's client: see the
 * module comment. Requests without a scope (token refreshes) work too, without cancellation or
 * token tracking.
 */
export function createDropboxFetch(opts: DropboxFetchOptions): ScopedFetch {
  const send = opts.fetch ?? leanFetch;
  return async (url: string, init: RequestInit = {}, scope?: CallScope): Promise<Response> => {
    const target = resolveUrl(url, opts.endpoints);
    const headers = headerRecord(init.headers);
    let body = init.body;

    if (target.pathname.endsWith('/oauth2/token') && target.search !== '') {
      // Secrets travel in the body, never in the URL (see the module comment).
      body = target.searchParams.toString();
      target.search = '';
      for (const k of Object.keys(headers)) if (k.toLowerCase() === 'content-type') delete headers[k];
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
    }

    const bearer = authorizationOf(headers);
    if (scope && bearer?.startsWith('Bearer ')) scope.token = bearer.slice('Bearer '.length);

    const signal = scope?.signal;
    if (signal?.aborted) throw abortError('dropbox', signal, 'the request');
    const stream = body instanceof Readable ? body : null;
    // A streamed body gets a controller of its own, to cut the request when the stream fails or
    // the answer is an error; bytes need none, the call's signal is passed as it is.
    const ac = stream ? new AbortController() : null;
    const onAbort = (): void => ac?.abort();
    if (ac) signal?.addEventListener('abort', onAbort, { once: true });

    let bodyError: unknown;
    let answered = false;
    const onBodyError = (e: unknown): void => {
      if (answered) return;
      bodyError = e;
      ac?.abort();
    };
    // `on`, not `once`: the abort below makes the stream error again, and an unheard 'error' throws.
    stream?.on('error', onBodyError);

    try {
      let res: Response;
      try {
        res = await send(target.href, {
          ...init,
          headers,
          body: body ?? null,
          signal: ac ? ac.signal : signal,
          timeout: opts.timeoutMs,
          compress: true,
          // HTTPS_PROXY / NO_PROXY are honoured by the shared agent (src/targets/kit/proxy.ts).
          agent: agentFor(target),
        });
      } catch (err) {
        if (bodyError !== undefined) throw bodyError;
        if (signal?.aborted) throw abortError('dropbox', signal, 'the request');
        throw networkError(err);
      }
      answered = true;
      if (res.ok) return res;
      // An error answer: read it whole, then cut the request if its body is still being sent.
      let text: string;
      try {
        text = await res.text();
      } catch (err) {
        if (signal?.aborted) throw abortError('dropbox', signal, 'the request');
        throw networkError(err);
      }
      if (stream && !stream.readableEnded) ac?.abort();
      return new Response(text, { status: res.status, statusText: res.statusText, headers: res.headers, url: res.url });
    } finally {
      answered = true;
      if (ac) signal?.removeEventListener('abort', onAbort);
    }
  };
}

/** A request whose answer is read as a stream (`createDropboxStream`). */
export interface StreamInit {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
}

/** Sends one bodiless request in a call's scope; resolves with the answer, its body unread. */
export type ScopedStream = (url: string, init: StreamInit, scope?: CallScope) => Promise<http.IncomingMessage>;

/**
 * The sender of requests whose answer is streamed (see the module comment): the endpoints'
 * rewrite, the proxy agent, the call's signal (which also cuts the body once it flows) and token
 * tracking, as `createDropboxFetch`; `timeoutMs` is the most the connection may stay silent.
 * Rejects with DropboxNetworkError, or an AbortError when the scope's signal fired.
 */
export function createDropboxStream(opts: Omit<DropboxFetchOptions, 'fetch'>): ScopedStream {
  return (url: string, init: StreamInit, scope?: CallScope): Promise<http.IncomingMessage> => {
    const target = resolveUrl(url, opts.endpoints);
    const bearer = authorizationOf(init.headers);
    if (scope && bearer?.startsWith('Bearer ')) scope.token = bearer.slice('Bearer '.length);
    const signal = scope?.signal;
    if (signal?.aborted) return Promise.reject(abortError('dropbox', signal, 'the request'));
    const mod = target.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        reject(signal?.aborted ? abortError('dropbox', signal, 'the request') : err instanceof DropboxNetworkError ? err : networkError(err));
      };
      let req: http.ClientRequest;
      try {
        // HTTPS_PROXY / NO_PROXY are honoured by the shared agent (src/targets/kit/proxy.ts).
        req = mod.request(target, { method: init.method, headers: init.headers, agent: agentFor(target), ...(signal ? { signal } : {}) }, (res) => {
          settled = true;
          resolve(res);
        });
      } catch (err) {
        fail(err);
        return;
      }
      req.on('error', fail);
      if (opts.timeoutMs > 0) {
        const ms = opts.timeoutMs;
        req.setTimeout(ms, () => req.destroy(new DropboxNetworkError(`[stagecoach] [dropbox] no data from ${target.hostname} for ${Math.round(ms / 1000)} s`, 'ETIMEDOUT')));
      }
      req.end();
    });
  };
}
