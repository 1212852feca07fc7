/**
 * Requests to Box through the session's network client (KitNetworkClient, below, over the kit's
 * fetch): the SDK's auth, base URLs, the 401 refresh-and-replay, and its error parsing, without its response deserialisers (which reject the
 * partial objects `fields=` returns) and with the status and headers kept (a commit's 202 carries
 * Retry-After, which the SDK's own method drops).
 *
 * Every error leaving here is a BoxHttpError or BoxNetworkError (classify.ts): the SDK's errors
 * carry the request, whose Authorization header holds the token, and are never passed on.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { BoxApiError, BoxSdkError } from 'box-node-sdk/lib/box/errors';
import { DataSanitizer } from 'box-node-sdk/lib/internal/logging';
// The uploads manager alone, not BoxClient: the client builds every manager of the API and its
// import is most of a second at each start; the target's only SDK calls are multipart uploads.
import { UploadsManager } from 'box-node-sdk/lib/managers/uploads';
import { shouldIncludeBoxUaHeader, userAgentHeader, xBoxUaHeader } from 'box-node-sdk/lib/networking/boxNetworkClient';
import { FetchOptions, type FetchOptionsInput, type MultipartItem } from 'box-node-sdk/lib/networking/fetchOptions';
import type { FetchResponse } from 'box-node-sdk/lib/networking/fetchResponse';
import type { NetworkSession } from 'box-node-sdk/lib/networking/network';
import type { NetworkClient } from 'box-node-sdk/lib/networking/networkClient';
import { BoxRetryStrategy } from 'box-node-sdk/lib/networking/retries';
import { jsonToSerializedData, sdIsMap, sdToJson, sdToUrlParams, type SerializedData } from 'box-node-sdk/lib/serialization/json';
import { multipartBoundary } from '../kit/boundary.js';
import { readAll } from '../kit/chunks.js';
import { fetch } from '../kit/fetch.js';
import type { BoxAuthGate } from './auth.js';
import { toBoxError } from './classify.js';

/** An answer in the 2xx range. */
export interface BoxResponse<T> {
  status: number;
  /** Lower-case keys. */
  headers: Record<string, string>;
  data: T;
}

export interface BoxRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'OPTIONS';
  /** Absolute URL (build it from `baseUrl` / `uploadUrl`, or a session endpoint). */
  url: string;
  params?: Record<string, string>;
  headers?: Record<string, string>;
  /** A JSON body. */
  json?: unknown;
  /** A binary body (one part of a chunked upload; the SDK holds it to replay after a 401). */
  body?: Buffer;
  signal?: AbortSignal | undefined;
}

/** The SDK's upload calls, as `sdk()` hands them out. */
export interface BoxSdk {
  readonly uploads: UploadsManager;
}

/** The SDK's uploads and raw requests, sharing one session and one auth gate. */
export class BoxApi {
  /** The SDK's managers the target uses (multipart uploads). */
  readonly client: BoxSdk;

  constructor(
    readonly session: NetworkSession,
    readonly gate: BoxAuthGate,
    private readonly redact: (s: string) => string,
  ) {
    this.client = { uploads: new UploadsManager({ auth: gate, networkSession: session }) };
  }

  /** `https://api.box.com` or the configured base URL, without a trailing slash. */
  get baseUrl(): string {
    return this.session.baseUrls.baseUrl;
  }

  /** `https://upload.box.com/api` or the configured upload URL. */
  get uploadUrl(): string {
    return this.session.baseUrls.uploadUrl;
  }

  /** Runs one request; rejects with BoxHttpError (status ≥ 300 after redirects) or BoxNetworkError. */
  async call<T>(req: BoxRequest): Promise<BoxResponse<T>> {
    const options = new FetchOptions({
      url: req.url,
      method: req.method,
      ...(req.params ? { params: req.params } : {}),
      ...(req.headers ? { headers: req.headers } : {}),
      ...(req.json !== undefined ? { data: req.json as SerializedData, contentType: 'application/json' } : {}),
      ...(req.body !== undefined ? { fileStream: Readable.from([req.body]), contentType: 'application/octet-stream' } : {}),
      responseFormat: 'json',
      auth: this.gate,
      networkSession: this.session,
      ...(req.signal ? { cancellationToken: req.signal } : {}),
    });
    try {
      const res = await this.session.networkClient.fetch(options);
      return { status: res.status, headers: res.headers, data: res.data as T };
    } catch (err) {
      throw this.convert(err);
    }
  }

  /** Runs an SDK manager call, converting its errors like `call`. */
  async sdk<T>(fn: (client: BoxSdk) => Promise<T>): Promise<T> {
    try {
      return await fn(this.client);
    } catch (err) {
      throw this.convert(err);
    }
  }

  /** An SDK error as a clean BoxHttpError / BoxNetworkError; other errors unchanged. */
  convert(err: unknown): unknown {
    return toBoxError(err, this.redact);
  }
}

// ---------------------------------------------------------------------------------------------
// The network client the session sends through

/** A request's bodies read once, so that a retry or a redirect sends them again. */
interface Bodies {
  file: Buffer | undefined;
  /** Per multipart item, its file's bytes (undefined for a data item). */
  parts: Array<Buffer | undefined> | undefined;
}

/** A multipart/form-data body as form-data (the SDK's) writes it. */
function multipart(items: readonly MultipartItem[], files: Array<Buffer | undefined>): { body: Buffer; type: string; sha1: string | undefined } {
  const boundary = multipartBoundary('--------------------------', files.filter((f): f is Buffer => f !== undefined));
  const chunks: Buffer[] = [];
  let sha1: string | undefined;
  items.forEach((item, i) => {
    const file = files[i];
    if (file !== undefined) {
      sha1 = createHash('sha1').update(file).digest('hex');
      const name = (item.fileName ?? 'file').replace(/"/g, '%22');
      chunks.push(
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="${item.partName}"; filename="${name}"\r\nContent-Type: ${item.contentType ?? 'application/octet-stream'}\r\n\r\n`,
        ),
        file,
        Buffer.from('\r\n'),
      );
    } else if (item.data !== undefined) {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${item.partName}"\r\n\r\n${sdToJson(item.data)}\r\n`));
    } else {
      throw new BoxSdkError({ message: 'Multipart item must have either body or fileStream' });
    }
  });
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}`, sha1 };
}

/** The body and its headers, as BoxNetworkClient's createRequestInit makes them. */
function requestBody(o: FetchOptions, bodies: Bodies): { headers: Record<string, string>; body: Buffer | string | undefined } {
  if (o.multipartData) {
    const m = multipart(o.multipartData, bodies.parts ?? []);
    return { headers: { 'Content-Type': m.type, ...(m.sha1 !== undefined ? { 'content-md5': m.sha1 } : {}) }, body: m.body };
  }
  const contentType = o.contentType ?? 'application/json';
  const headers = { 'Content-Type': contentType };
  switch (contentType) {
    case 'application/json':
    case 'application/json-patch+json':
      return { headers, body: o.data === undefined ? undefined : sdToJson(o.data) };
    case 'application/x-www-form-urlencoded':
      return { headers, body: o.data === undefined ? undefined : sdToUrlParams(o.data) };
    case 'application/octet-stream':
      if (bodies.file === undefined) throw new BoxSdkError({ message: 'fileStream required for application/octet-stream content type' });
      return { headers, body: bodies.file };
    default:
      throw new BoxSdkError({ message: `Unsupported content type : ${contentType}` });
  }
}

/**
 * KitNetworkClient: the Box SDK's network client (its NetworkSession's `networkClient`, the
 * extension point the SDK documents for its HTTP layer) over the kit's fetch (../kit/fetch.ts),
 * in place of the SDK's BoxNetworkClient on node-fetch 2. Everything the SDK asks of a network
 * client is kept:
 * - the session's interceptors, before each attempt and after each answer;
 * - the request as the SDK builds it: the auth's Authorization, the SDK's User-Agent and
 *   X-Box-UA, the session's additional headers; a JSON, form or binary body, or a multipart
 *   form whose file part carries its SHA-1 in `content-md5` (what Box checks an upload against);
 * - the session's retry strategy (the target's RefreshOn401Strategy: one replay after a 401),
 *   every body kept to be sent again;
 * - redirects followed, Authorization only to the same origin;
 * - the answer's JSON as SerializedData, or its bytes as a stream (`binary`; an error answer
 *   to a binary request is read for its JSON, where the SDK's client left it unread);
 * - errors: BoxApiError for an answer ≥ 400 (status, headers, body, request id: what
 *   classify.ts reads), BoxSdkError with the fetch's error when no answer came.
 * What differs: the session's `timeoutConfig.timeoutMs` is the most the connection may stay
 * silent (the kit fetch's `timeout`), not a limit on the whole exchange, so a large part sent
 * over a slow link is not cut while it flows. A profile of Box uploads had the SDK's client and
 * node-fetch at a third of the daemon's main thread for Box (bench/HISTORY.md).
 */
export class KitNetworkClient implements NetworkClient {
  async fetch(input: FetchOptionsInput): Promise<FetchResponse> {
    return this.#attempt(input as FetchOptions, 1, 0, undefined);
  }

  /** One attempt; `read`: the bodies an earlier attempt read (a retry or a redirect sends the same bytes, as the SDK's client does). */
  async #attempt(options: FetchOptions, attempt: number, exceptions: number, read: Bodies | undefined): Promise<FetchResponse> {
    const session = options.networkSession;
    const interceptors = session?.interceptors ?? [];
    const retryStrategy = session?.retryStrategy ?? new BoxRetryStrategy({});
    const o = interceptors.reduce((acc, i) => i.beforeRequest(acc), options);
    const bodies: Bodies = read ?? {
      file: o.fileStream ? await readAll(o.fileStream as Readable) : undefined,
      parts: o.multipartData ? await Promise.all(o.multipartData.map((p) => (p.fileStream ? readAll(p.fileStream as Readable) : undefined))) : undefined,
    };

    const method = o.method ?? 'GET';
    const built = requestBody(o, bodies);
    const headers: Record<string, string> = {
      ...(method !== 'GET' ? built.headers : {}),
      ...o.headers,
      ...(o.auth ? { Authorization: await o.auth.retrieveAuthorizationHeader(session) } : {}),
      ...(shouldIncludeBoxUaHeader(o) ? { 'User-Agent': userAgentHeader, 'X-Box-UA': xBoxUaHeader } : {}),
      ...session?.additionalHeaders,
    };
    const params = o.params ?? {};
    const query = Object.keys(params).length === 0 || o.url.endsWith('?') ? '' : `?${new URLSearchParams(params as Record<string, string>).toString()}`;
    const timeoutMs = session?.timeoutConfig?.timeoutMs;

    let response: FetchResponse;
    let caught: Error | undefined;
    let rawBody: Buffer | undefined;
    try {
      const res = await fetch(`${o.url}${query}`, {
        method,
        headers,
        body: built.body,
        signal: (o.cancellationToken as AbortSignal | undefined) ?? null,
        redirect: 'manual',
        ...(timeoutMs !== undefined && timeoutMs !== null && timeoutMs > 0 ? { timeout: timeoutMs } : {}),
      });
      let data: SerializedData | undefined;
      let content: Readable = Readable.from([]);
      const redirected = res.status >= 300 && res.status < 400 && o.followRedirects !== false;
      // A body nobody reads is drained, so that its connection goes back to the pool.
      if (o.followRedirects === false || redirected) res.body?.resume();
      else if (o.responseFormat === 'json') {
        rawBody = await res.buffer();
        const text = rawBody.toString('utf8');
        if (text) data = jsonToSerializedData(text);
        content = Readable.from([rawBody]);
      } else if (o.responseFormat === 'binary' && res.status >= 400) {
        // An error instead of the bytes (a download's 404): read for its code, as a JSON answer is.
        rawBody = await res.buffer();
        try {
          data = jsonToSerializedData(rawBody.toString('utf8'));
        } catch {
          data = undefined;
        }
      } else if (o.responseFormat === 'binary') content = res.body ?? Readable.from([]);
      else res.body?.resume();
      response = { url: res.url, status: res.status, data, content, headers: Object.fromEntries(res.headers.entries()) } as FetchResponse;
      response = interceptors.reduce((acc, i) => i.afterRequest(acc), response);
    } catch (err) {
      caught = err instanceof Error ? err : new Error(String(err));
      exceptions++;
      response = { status: 0, headers: {} } as FetchResponse;
    }

    if (await retryStrategy.shouldRetry(o, response, caught ? exceptions : attempt)) {
      const wait = retryStrategy.retryAfter(o, response, caught ? exceptions : attempt);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait * 1000));
      return this.#attempt(options, attempt + 1, exceptions, bodies);
    }
    if (response.status >= 300 && response.status < 400 && o.followRedirects !== false) {
      const location = response.headers.location;
      if (!location) throw new BoxSdkError({ message: `Unable to follow redirect for ${o.url}` });
      const next = new URL(location, o.url);
      const sameOrigin = next.origin === new URL(o.url).origin;
      const moved = { ...options, params: undefined, url: next.href, ...(sameOrigin ? {} : { auth: undefined }) } as FetchOptions;
      return this.#attempt(moved, attempt, exceptions, bodies);
    }
    if (response.status >= 200 && response.status < 400) return response;
    if (response.status === 0) {
      throw new BoxSdkError({ message: caught?.message || 'Unexpected Error occurred', timestamp: `${Date.now()}`, ...(caught ? { error: caught } : {}) });
    }
    // As the SDK's client reads them: each field as JSON (a string keeps its quotes).
    const d = response.data;
    const get = (k: string): string | undefined => (sdIsMap(d) ? (sdToJson(d[k] as SerializedData) as string | undefined) : undefined);
    const code = get('code');
    const requestId = get('request_id');
    const error = get('error');
    const message = [
      [response.status, code, get('message')].filter(Boolean).join(' '),
      requestId && `Request ID: ${requestId}`,
      error && `${error} - ${get('error_description')}`,
    ]
      .filter(Boolean)
      .join('; ');
    throw new BoxApiError({
      message,
      timestamp: `${Date.now()}`,
      requestInfo: {
        contentType: o.contentType,
        method,
        url: o.url,
        queryParams: params,
        headers,
        body: typeof built.body === 'string' ? built.body : undefined,
      },
      responseInfo: {
        statusCode: response.status,
        headers: response.headers,
        body: d as SerializedData,
        rawBody: rawBody?.toString('utf8') ?? '',
        code,
        contextInfo: sdIsMap(d) && sdIsMap(d.context_info) ? (d.context_info as Record<string, unknown>) : undefined,
        requestId,
        helpUrl: get('help_url'),
      },
      dataSanitizer: session?.dataSanitizer ?? new DataSanitizer({}),
    } as ConstructorParameters<typeof BoxApiError>[0]);
  }
}
