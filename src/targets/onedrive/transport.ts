/**
 * The OneDrive target's transport: the Graph calls (`GraphApi`, below) and the one
 * node:http/https exchange under them (`sendHttp`), used three ways.
 *
 * - `NodeHttpHandler` replaces the last middleware of the Graph client's default chain (the
 *   global-fetch `HTTPMessageHandler`). Node 20's fetch keeps every chunk of a streamed request
 *   body in memory (it clones the request), and the client has no other way to point at another
 *   host while keeping its https base URL — which it needs: with an http base it sends no
 *   Authorization and glues http upload URLs onto graph.microsoft.com.
 * - `NodeNetworkClient` is MSAL's `system.networkClient` over the same exchange.
 * - The target sends upload-session fragments with it directly (no Authorization: the upload
 *   URL is its own credential).
 *
 * With the config's `endpoints` set, Microsoft's hosts are sent elsewhere (`endpointRewrite`):
 * graph.microsoft.com and the pre-authenticated upload/download hosts (api.onedrive.com,
 * *.1drv.com, *.sharepoint.com) to `endpoints.graph`, the identity platform's hosts to
 * `endpoints.login`. The request keeps the original Host header, so a server standing in for
 * several hosts (an emulator, a proxy) tells them apart, and the URLs it hands out are the
 * public https ones the SDK expects. Without `endpoints`, requests go where they say, over https.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import type { AuthenticationProvider, Client, Context, GraphRequest, Middleware } from '@microsoft/microsoft-graph-client';
import {
  AuthenticationHandlerOptions,
  Client as GraphClient,
  MiddlewareFactory,
  ResponseType,
  RetryHandler,
  RetryHandlerOptions,
} from '@microsoft/microsoft-graph-client';
import { abortError } from '../kit/abort.js';
import { FetchHeaders } from '../kit/fetch.js';
import { agentFor } from '../kit/proxy.js';
import type { GraphErrorBody, OnedriveOptions } from './api-types.js';
import type { OneDriveAuth } from './auth.js';
import { OneDriveHttpError, OneDriveNetworkError, toOneDriveError } from './classify.js';

/** Maps a request URL to where it is really sent (null: send it where it says). */
export type UrlRewrite = (url: URL) => URL | null;

/** Graph's host. */
export const GRAPH_HOST = 'graph.microsoft.com';
/** The identity platform's host and its aliases. */
export const LOGIN_HOSTS: readonly string[] = ['login.microsoftonline.com', 'login.microsoft.com', 'login.windows.net'];
/** Hosts of pre-authenticated upload and download URLs (Personal and for Business). */
export const CONTENT_HOST = /^(api\.onedrive\.com|([a-z0-9-]+\.)+1drv\.com|[a-z0-9-]+(-my)?\.sharepoint\.com)$/i;

/** Largest answer body read into memory (JSON answers are a few KiB). */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

function rebase(u: URL, base: URL): URL {
  const prefix = base.pathname.replace(/\/+$/, '');
  return new URL(`${prefix}${u.pathname}${u.search}`, base.origin);
}

/**
 * The rewrite for the config's `endpoints` (undefined: none). Graph and content hosts go to
 * `graph`, login hosts to `login`; path and query are kept (after the endpoint's own path).
 */
export function endpointRewrite(endpoints: { graph: string; login: string } | undefined): UrlRewrite | undefined {
  if (!endpoints) return undefined;
  const graph = new URL(endpoints.graph);
  const login = new URL(endpoints.login);
  return (u) => {
    const host = u.hostname.toLowerCase();
    if (LOGIN_HOSTS.includes(host)) return rebase(u, login);
    if (host === GRAPH_HOST || CONTENT_HOST.test(host)) return rebase(u, graph);
    return null;
  };
}

/** A request body: bytes, a stream (piped, never buffered), or nothing. */
export type Body = Buffer | Readable | null;

/** One exchange for `sendHttp`. Headers are sent as given (plus Host when rewritten, Content-Length for a Buffer). */
export interface SendOptions {
  method: string;
  headers: Record<string, string>;
  body: Body;
  signal?: AbortSignal | null | undefined;
  rewrite?: UrlRewrite | undefined;
  /** The exchange fails with OneDriveNetworkError (`ETIMEDOUT`) after this long without data. 0: never. */
  timeoutMs?: number | undefined;
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

/**
 * One HTTP exchange through node:http/https. With a rewrite, the request goes to the rewritten
 * URL and carries the original Host. Resolves when the response headers arrive; the caller reads
 * (or discards) the body. Fails with OneDriveNetworkError when no answer comes (the message holds
 * neither the URL nor any header), or the signal's AbortError.
 */
export function sendHttp(url: URL, opts: SendOptions): Promise<http.IncomingMessage> {
  const target = opts.rewrite?.(url) ?? url;
  const headers: Record<string, string> = { ...opts.headers };
  if (target !== url) headers.host = url.host;
  if (Buffer.isBuffer(opts.body) && !hasHeader(headers, 'content-length')) headers['content-length'] = String(opts.body.length);
  const mod = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      if (err.name === 'AbortError' || err instanceof OneDriveNetworkError) {
        reject(err);
        return;
      }
      const errno = (err as NodeJS.ErrnoException).code;
      // Node's messages name the address at most ("connect ECONNREFUSED 127.0.0.1:443"), never the path.
      reject(new OneDriveNetworkError(`no answer from ${url.hostname}: ${err.message}`, typeof errno === 'string' ? errno : undefined));
    };
    let req: http.ClientRequest;
    try {
      // HTTPS_PROXY / NO_PROXY are honoured by the shared agent (src/targets/proxy.ts).
      req = mod.request(target, { method: opts.method, headers, agent: agentFor(target), ...(opts.signal ? { signal: opts.signal } : {}) }, (res) => {
        settled = true;
        resolve(res);
      });
    } catch (err) {
      fail(err as Error);
      return;
    }
    req.on('error', fail);
    if (opts.timeoutMs && opts.timeoutMs > 0) {
      const ms = opts.timeoutMs;
      req.setTimeout(ms, () => {
        const err = new OneDriveNetworkError(`no data from ${url.hostname} for ${Math.round(ms / 1000)} s`, 'ETIMEDOUT');
        req.destroy(err);
      });
    }
    const body = opts.body;
    if (body instanceof Readable) {
      body.once('error', (e) => req.destroy(e));
      body.pipe(req);
    } else req.end(body ?? undefined);
  });
}

/** Reads a whole (small) answer body. More than 16 MiB fails: no answer this target reads is that big. */
export async function readBody(res: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res) {
      n += (c as Buffer).length;
      if (n > MAX_BODY_BYTES) {
        res.destroy();
        throw new OneDriveNetworkError(`an answer body was larger than ${MAX_BODY_BYTES} bytes`);
      }
      chunks.push(c as Buffer);
    }
  } catch (err) {
    if (err instanceof OneDriveNetworkError) throw err;
    if (err instanceof Error && err.name === 'AbortError') throw err;
    const errno = (err as NodeJS.ErrnoException).code;
    throw new OneDriveNetworkError(`the answer was cut: ${(err as Error).message}`, typeof errno === 'string' ? errno : undefined);
  }
  return Buffer.concat(chunks);
}

/** Parses a JSON body; undefined when it is empty or not JSON. */
export function parseJson(buf: Buffer): unknown {
  if (buf.length === 0) return undefined;
  try {
    return JSON.parse(buf.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Turns any fetch-style body into a Buffer or a Node stream without reading a stream into memory. */
async function toBody(body: unknown, headers: Record<string, string>): Promise<Body> {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (body instanceof Readable) return body;
  if (typeof (body as { pipe?: unknown }).pipe === 'function') return Readable.from(body as AsyncIterable<Buffer>);
  if (body instanceof ReadableStream) return Readable.fromWeb(body as import('node:stream/web').ReadableStream);
  // Blob, FormData, URLSearchParams: let Response serialise them (they are small).
  const r = new Response(body as ConstructorParameters<typeof Response>[0]);
  const type = r.headers.get('content-type');
  if (type && !hasHeader(headers, 'content-type')) headers['content-type'] = type;
  return Buffer.from(await r.arrayBuffer());
}

function headerRecord(h: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  if (h instanceof Headers) h.forEach((v, k) => (out[k] = v));
  else if (Array.isArray(h)) for (const [k, v] of h as Array<[string, string]>) out[k] = v;
  else for (const [k, v] of Object.entries(h as Record<string, unknown>)) if (v !== undefined && v !== null) out[k] = String(v);
  return out;
}

/** Answers up to this size (by their Content-Length) are read whole before they are handed on. */
const SMALL_ANSWER_BYTES = 1 << 20;

/**
 * What the Graph client gets for a node:http answer: read whole first when its Content-Length
 * says it is small (every JSON answer of Graph), as a `SmallAnswer`; else a fetch Response over
 * the body, streamed, not buffered.
 */
async function toResponse(res: http.IncomingMessage, method: string, url: string): Promise<Response> {
  const status = res.statusCode ?? 500;
  const noBody = method === 'HEAD' || status === 204 || status === 205 || status === 304;
  if (noBody) res.resume();
  const length = Number(res.headers['content-length'] ?? NaN);
  if (noBody || length <= SMALL_ANSWER_BYTES) {
    const bytes = noBody ? Buffer.alloc(0) : await readBody(res);
    return new SmallAnswer(bytes, status, res.statusMessage ?? '', FetchHeaders.fromRaw(res.rawHeaders), url) as unknown as Response;
  }
  const response = new Response(Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>, { status, statusText: res.statusMessage ?? '' });
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) response.headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
  // RedirectHandler compares response.url with the Location to drop Authorization across hosts.
  Object.defineProperty(response, 'url', { value: url });
  return response;
}

/** UTF-8 decoded as fetch's text() decodes it: a leading byte order mark dropped. */
function utf8(b: Buffer): string {
  return (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? b.subarray(3) : b).toString('utf8');
}

/**
 * The part of a fetch Response the Graph client and its middleware read (status, ok, url,
 * headers' get/has, the body read once as JSON, text, bytes or a blob), over bytes already read.
 * A real Response over them cost ~0.1 ms of the main thread per answer (a web stream, webidl
 * checks, undici's Headers), three answers per OneDrive upload; the client reads the JSON once.
 * `body` (a web stream) is made only if asked for.
 */
class SmallAnswer {
  readonly type = 'default';
  readonly redirected = false;
  #used = false;
  #stream: ReadableStream<Uint8Array> | null = null;

  constructor(
    readonly bytes: Buffer,
    readonly status: number,
    readonly statusText: string,
    readonly headers: FetchHeaders,
    readonly url: string,
  ) {}

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#stream === null) this.#stream = new Response(this.bytes).body;
    return this.#stream;
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  #take(): Buffer {
    if (this.#used) throw new TypeError('Body is unusable: Body has already been read');
    this.#used = true;
    return this.bytes;
  }

  async text(): Promise<string> {
    return utf8(this.#take());
  }

  async json(): Promise<unknown> {
    return JSON.parse(utf8(this.#take())) as unknown;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = this.#take();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }

  async blob(): Promise<Blob> {
    return new Blob([this.#take()], { type: this.headers.get('content-type') ?? '' });
  }

  clone(): SmallAnswer {
    if (this.#used) throw new TypeError('Response.clone: Body has already been consumed.');
    return new SmallAnswer(this.bytes, this.status, this.statusText, this.headers, this.url);
  }
}

/**
 * The last middleware of the Graph client's chain, in place of `HTTPMessageHandler`: sends
 * through `sendHttp` (with the rewrite and the timeout). Redirects are left to RedirectHandler.
 */
export class NodeHttpHandler implements Middleware {
  constructor(
    private readonly rewrite?: UrlRewrite,
    private readonly timeoutMs = 0,
  ) {}

  async execute(context: Context): Promise<void> {
    const request = context.request;
    let url: string;
    let method: string;
    let headers: Record<string, string>;
    let rawBody: unknown;
    if (typeof request === 'string') {
      url = request;
      method = context.options?.method ?? 'GET';
      headers = headerRecord(context.options?.headers);
      rawBody = context.options?.body;
    } else {
      url = request.url;
      method = request.method;
      headers = headerRecord(request.headers);
      rawBody = request.body;
    }
    const body = await toBody(rawBody, headers);
    const res = await sendHttp(new URL(url), {
      method,
      headers,
      body,
      signal: context.options?.signal ?? null,
      rewrite: this.rewrite,
      timeoutMs: this.timeoutMs,
    });
    context.response = await toResponse(res, method, url);
  }

  setNext(): void {
    // Last in the chain: nothing follows.
  }
}

/**
 * MSAL's network module over `sendHttp`. MSAL parses every answer as JSON (errors too: a 400
 * `authorization_pending` is a normal response to it, not an exception). A body that is not JSON
 * (a proxy's error page) becomes `temporarily_unavailable`, so MSAL reports a server error.
 */
export class NodeNetworkClient implements INetworkModule {
  constructor(
    private readonly rewrite?: UrlRewrite,
    private readonly timeoutMs = 0,
  ) {}

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return this.send<T>('GET', url, options, timeout);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>('POST', url, options);
  }

  private async send<T>(method: string, url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    const body = method === 'POST' ? Buffer.from(options?.body ?? '', 'utf8') : null;
    const res = await sendHttp(new URL(url), {
      method,
      headers: { ...options?.headers },
      body,
      rewrite: this.rewrite,
      timeoutMs: timeout ?? this.timeoutMs,
    });
    const raw = await readBody(res);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const status = res.statusCode ?? 0;
    let parsed = parseJson(raw);
    if (typeof parsed !== 'object' || parsed === null) {
      parsed =
        status >= 400 || raw.length > 0
          ? { error: 'temporarily_unavailable', error_description: `the identity platform answered ${status} with a body that is not JSON` }
          : {};
    }
    return { headers, body: parsed as T, status };
  }
}

// ---------------------------------------------------------------------------------------------
// Graph calls

/*
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

  /**
   * GET that resolves null on 404. The answer is taken raw: a 404 is what a lookup before a new
   * file's first upload gets, and the client would make a GraphError (with its stack) of each.
   * Any other error answer fails as through the client (`toOneDriveError`).
   */
  getOrNull<T>(path: string, opts: CallOptions = {}): Promise<T | null> {
    return this.call(path, opts, async (r) => {
      const res = (await r.responseType(ResponseType.RAW).get()) as Response;
      const bytes = Buffer.from(await res.arrayBuffer());
      if (res.status === 404) return null;
      const body = parseJson(bytes);
      if (res.ok) return (body ?? null) as T | null;
      const error = (body as Partial<GraphErrorBody> | undefined)?.error;
      throw toOneDriveError({
        statusCode: res.status,
        code: error?.code,
        message: error?.message,
        body: error ?? bytes.toString('utf8'),
        headers: res.headers,
        requestId: error?.innerError?.['request-id'],
      });
    });
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
