/**
 * How the official SDKs (`@microsoft/microsoft-graph-client` 3.0.7, `@azure/msal-node` 7.2) are
 * pointed at the OneDrive emulator, and the two transport pieces that make them behave on Node 20:
 *
 * - Graph: the client keeps its https base URL (with an http base it sends no Authorization and
 *   glues http upload URLs onto graph.microsoft.com). The last middleware of the default chain —
 *   the global-fetch `HTTPMessageHandler` — is replaced by `NodeHttpHandler`, which sends through
 *   node:http/https: stream bodies go out without being buffered (Node 20's fetch clones a
 *   streamed request and keeps every chunk), and Microsoft hosts can be rewritten to the emulator
 *   with the Host header kept, so the emulator hands back https URLs the SDK understands.
 * - MSAL: an https authority is required; `NodeNetworkClient` (its `system.networkClient`) sends
 *   through the same transport and rewrites login.microsoftonline.com.
 *
 * Without a rewrite, both talk to the real hosts over https: the product can use them as they are.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import type { AuthenticationProvider, Context, Middleware } from '@microsoft/microsoft-graph-client';
import { Client, MiddlewareFactory, RetryHandler, RetryHandlerOptions } from '@microsoft/microsoft-graph-client';
import type { Configuration, INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { ConfidentialClientApplication, PublicClientApplication } from '@azure/msal-node';
import { isMicrosoftHost } from './hosts.js';

/** Maps a request URL to where it is really sent (null: send it where it says). */
export type UrlRewrite = (url: URL) => URL | null;

/**
 * Sends every Microsoft host (Graph, login, upload/download hosts) to `emulatorUrl`, keeping
 * path and query. The original host travels in the Host header.
 */
export function rewriteToEmulator(emulatorUrl: string): UrlRewrite {
  const base = new URL(emulatorUrl);
  return (u) => (isMicrosoftHost(u.hostname) ? new URL(u.pathname + u.search, base) : null);
}

type Body = Buffer | Readable | null;

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
  if (type && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = type;
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

export interface SendOptions {
  method: string;
  headers: Record<string, string>;
  body: Body;
  signal?: AbortSignal | null;
  rewrite?: UrlRewrite;
}

/**
 * One HTTP exchange through node:http/https. Streams the body (a Readable is piped, never
 * buffered). With a rewrite, the request goes to the rewritten URL and carries the original
 * Host. Resolves when the response headers arrive.
 */
export function sendHttp(url: URL, opts: SendOptions): Promise<http.IncomingMessage> {
  const target = opts.rewrite?.(url) ?? url;
  const headers: Record<string, string> = { ...opts.headers };
  if (target !== url) headers.host = url.host;
  if (Buffer.isBuffer(opts.body) && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')) {
    headers['content-length'] = String(opts.body.length);
  }
  const mod = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      target,
      { method: opts.method, headers, ...(opts.signal ? { signal: opts.signal } : {}) },
      resolve,
    );
    req.on('error', reject);
    const body = opts.body;
    if (body instanceof Readable) {
      body.once('error', (e) => req.destroy(e));
      body.pipe(req);
    } else req.end(body ?? undefined);
  });
}

/** A fetch Response over a node:http response (streamed, not buffered). */
export function toResponse(res: http.IncomingMessage, method: string, url: string): Response {
  const headers = new Headers();
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
  const status = res.statusCode ?? 500;
  const noBody = method === 'HEAD' || status === 204 || status === 205 || status === 304;
  if (noBody) res.resume();
  const body = noBody ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
  const response = new Response(body, { status, statusText: res.statusMessage ?? '', headers });
  // RedirectHandler compares response.url with the Location to drop Authorization across hosts.
  Object.defineProperty(response, 'url', { value: url });
  return response;
}

/**
 * The last middleware of the Graph client's chain, in place of `HTTPMessageHandler`: sends
 * through node:http/https (optionally rewriting hosts). Redirects are left to RedirectHandler.
 */
export class NodeHttpHandler implements Middleware {
  constructor(private readonly rewrite?: UrlRewrite) {}

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
    const res = await sendHttp(new URL(url), { method, headers, body, signal: context.options?.signal ?? null, ...(this.rewrite ? { rewrite: this.rewrite } : {}) });
    context.response = toResponse(res, method, url);
  }

  setNext(): void {
    // Last in the chain: nothing follows.
  }
}

export interface GraphClientOptions {
  /** Emulator base URL (http://127.0.0.1:PORT). Omit to reach the real Graph over https. */
  emulatorUrl?: string;
  /** Called before each Graph request (not for pre-authenticated upload URLs). */
  getAccessToken: () => Promise<string>;
  /** The SDK's own retry on 429/503/504 (default off: the project's retry policy governs). */
  retry?: { maxRetries: number; delayS: number };
}

/**
 * A Graph client whose transport is `NodeHttpHandler` (and, with `emulatorUrl`, whose Microsoft
 * hosts go to the emulator). Its base URL stays https://graph.microsoft.com, so Authorization is
 * attached to Graph calls and left off upload URLs exactly as against the real service.
 */
export function createGraphClient(opts: GraphClientOptions): Client {
  const authProvider: AuthenticationProvider = { getAccessToken: opts.getAccessToken };
  const chain = MiddlewareFactory.getDefaultMiddlewareChain(authProvider);
  const retry = opts.retry ?? { maxRetries: 0, delayS: 0 };
  for (let i = 0; i < chain.length; i++) {
    if (chain[i] instanceof RetryHandler) chain[i] = new RetryHandler(new RetryHandlerOptions(retry.delayS, retry.maxRetries));
  }
  chain[chain.length - 1] = new NodeHttpHandler(opts.emulatorUrl ? rewriteToEmulator(opts.emulatorUrl) : undefined);
  return Client.initWithMiddleware({ middleware: chain });
}

/**
 * MSAL's network module over the same transport. MSAL parses every answer as JSON (errors too:
 * a 400 `authorization_pending` is a normal response to it, not an exception).
 */
export class NodeNetworkClient implements INetworkModule {
  constructor(private readonly rewrite?: UrlRewrite) {}

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return this.send<T>('GET', url, options, timeout);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>('POST', url, options);
  }

  private async send<T>(method: string, url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    const signal = timeout ? AbortSignal.timeout(timeout) : null;
    const body = method === 'POST' ? Buffer.from(options?.body ?? '', 'utf8') : null;
    const res = await sendHttp(new URL(url), { method, headers: { ...options?.headers }, body, signal, ...(this.rewrite ? { rewrite: this.rewrite } : {}) });
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const text = Buffer.concat(chunks).toString('utf8');
    return { headers, body: (text ? JSON.parse(text) : {}) as T, status: res.statusCode ?? 0 };
  }
}

export interface MsalOptions {
  clientId: string;
  /** Default `https://login.microsoftonline.com/consumers` (personal accounts). */
  authority?: string;
  /** Emulator base URL; omit to reach the real identity platform. */
  emulatorUrl?: string;
  /** MSAL cache configuration, e.g. a `cachePlugin` that persists the token cache. */
  cache?: Configuration['cache'];
}

function msalConfig(opts: MsalOptions, extraAuth: Record<string, unknown> = {}): Configuration {
  return {
    auth: { clientId: opts.clientId, authority: opts.authority ?? 'https://login.microsoftonline.com/consumers', ...extraAuth },
    system: { networkClient: new NodeNetworkClient(opts.emulatorUrl ? rewriteToEmulator(opts.emulatorUrl) : undefined) },
    ...(opts.cache ? { cache: opts.cache } : {}),
  };
}

/** A public-client MSAL app (device code, auth code, silent refresh) pointed per `opts`. */
export function createMsalApp(opts: MsalOptions): PublicClientApplication {
  return new PublicClientApplication(msalConfig(opts));
}

/** A confidential-client MSAL app (client credentials) pointed per `opts`. */
export function createMsalConfidentialApp(opts: MsalOptions & { clientSecret: string; authority: string }): ConfidentialClientApplication {
  return new ConfidentialClientApplication(msalConfig(opts, { clientSecret: opts.clientSecret }));
}
