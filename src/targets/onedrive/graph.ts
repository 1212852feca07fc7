/**
 * The Graph calls of the OneDrive target, through the official client
 * (`@microsoft/microsoft-graph-client` 3.0.7) with its transport replaced by `NodeHttpHandler`
 * and its own retries off (`RetryHandlerOptions(0, 0)`): the pipeline's pacer retries.
 *
 * Each call gets its token first (so MSAL's errors reach the caller as they are, not wrapped in
 * a GraphError that loses them) and hands it to the client for that one request. Graph never
 * refreshes on 401: on a 401 the call asks for a fresh token and replays once — every body sent
 * here is a Buffer or JSON, so it can be sent again. Every error leaving is converted by
 * `toOneDriveError` (status, Graph's codes, Retry-After; no request, no header).
 */
import type { AuthenticationProvider, Client, GraphRequest } from '@microsoft/microsoft-graph-client';
import {
  AuthenticationHandlerOptions,
  Client as GraphClient,
  MiddlewareFactory,
  RetryHandler,
  RetryHandlerOptions,
} from '@microsoft/microsoft-graph-client';
import type { OnedriveOptions } from './api-types.js';
import type { OneDriveAuth } from './auth.js';
import { OneDriveHttpError, toOneDriveError } from './classify.js';
import { NodeHttpHandler, type UrlRewrite } from './http.js';

/** Where the target's drive is in Graph: `/drives/{driveId}`, `/users/{userId}/drive` (app), or `/me/drive`. */
export function drivePathOf(options: OnedriveOptions): string {
  if (options.driveId) return `/drives/${encodeURIComponent(options.driveId)}`;
  if (options.auth.kind === 'app') return `/users/${encodeURIComponent(options.auth.userId)}/drive`;
  return '/me/drive';
}

/**
 * A Graph client whose last middleware is `NodeHttpHandler` and whose RetryHandler retries
 * nothing. Its base URL stays https://graph.microsoft.com, so Authorization goes to Graph calls
 * only. The default authentication provider refuses: every call brings its own token.
 */
export function createGraphClient(rewrite: UrlRewrite | undefined, timeoutMs: number): Client {
  const refuse: AuthenticationProvider = {
    getAccessToken: () => Promise.reject(new Error('[stagecoach] a Graph call was made without a token')),
  };
  const chain = MiddlewareFactory.getDefaultMiddlewareChain(refuse);
  for (let i = 0; i < chain.length; i++) {
    if (chain[i] instanceof RetryHandler) chain[i] = new RetryHandler(new RetryHandlerOptions(0, 0));
  }
  chain[chain.length - 1] = new NodeHttpHandler(rewrite, timeoutMs);
  return GraphClient.initWithMiddleware({ middleware: chain });
}

/** Per-call extras: query parameters, headers, and the put's abort signal. */
export interface CallOptions {
  query?: Record<string, string>;
  signal?: AbortSignal | undefined;
  headers?: Record<string, string>;
}

/** The abort a cancelled call rejects with. */
export function abortError(targetId: string, signal: AbortSignal): Error {
  const err = new Error(`[stagecoach] [${targetId}] aborted: the put was cancelled`, { cause: signal.reason });
  err.name = 'AbortError';
  return err;
}

/** Graph requests for one drive, with tokens from `auth` and one replay after a 401. */
export class GraphApi {
  constructor(
    private readonly client: Client,
    private readonly auth: OneDriveAuth,
    /** `/me/drive`, `/users/{id}/drive` or `/drives/{id}`. */
    readonly drive: string,
    private readonly targetId: string,
  ) {}

  private request(path: string, token: string, opts: CallOptions): GraphRequest {
    const provider: AuthenticationProvider = { getAccessToken: async () => token };
    let r = this.client.api(path).middlewareOptions([new AuthenticationHandlerOptions(provider)]);
    if (opts.query) r = r.query(opts.query);
    for (const [k, v] of Object.entries(opts.headers ?? {})) r = r.header(k, v);
    if (opts.signal) r = r.option('signal', opts.signal);
    return r;
  }

  /** Runs `send` with a token; after a 401, once more with a fresh one. Errors converted. */
  private async call<T>(path: string, opts: CallOptions, send: (r: GraphRequest) => Promise<T>): Promise<T> {
    const signal = opts.signal;
    if (signal?.aborted) throw abortError(this.targetId, signal);
    let token = await this.auth.token();
    for (let attempt = 0; ; attempt++) {
      try {
        return await send(this.request(path, token, opts));
      } catch (raw) {
        if (signal?.aborted) throw abortError(this.targetId, signal);
        const err = toOneDriveError(raw);
        if (attempt === 0 && err instanceof OneDriveHttpError && err.status === 401) {
          token = await this.auth.refresh(token);
          continue;
        }
        throw err;
      }
    }
  }

  get<T>(path: string, opts: CallOptions = {}): Promise<T> {
    return this.call(path, opts, (r) => r.get() as Promise<T>);
  }

  /** GET that resolves null on 404. */
  async getOrNull<T>(path: string, opts: CallOptions = {}): Promise<T | null> {
    try {
      return await this.get<T>(path, opts);
    } catch (err) {
      if (err instanceof OneDriveHttpError && err.status === 404) return null;
      throw err;
    }
  }

  post<T>(path: string, body: unknown, opts: CallOptions = {}): Promise<T> {
    return this.call(path, opts, (r) => r.post(body) as Promise<T>);
  }

  patch<T>(path: string, body: unknown, opts: CallOptions = {}): Promise<T> {
    return this.call(path, opts, (r) => r.patch(body) as Promise<T>);
  }

  /** PUT of raw bytes (`application/octet-stream`). */
  putBytes<T>(path: string, body: Buffer, opts: CallOptions = {}): Promise<T> {
    const headers = { 'Content-Type': 'application/octet-stream', ...opts.headers };
    return this.call(path, { ...opts, headers }, (r) => r.put(body) as Promise<T>);
  }
}
