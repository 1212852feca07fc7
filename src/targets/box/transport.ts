/**
 * Requests to Box through box-node-sdk's network client: the SDK's auth, base URLs, the 401
 * refresh-and-replay, and its error parsing, without its response deserialisers (which reject the
 * partial objects `fields=` returns) and with the status and headers kept (a commit's 202 carries
 * Retry-After, which the SDK's own method drops).
 *
 * Every error leaving here is a BoxHttpError or BoxNetworkError (classify.ts): the SDK's errors
 * carry the request, whose Authorization header holds the token, and are never passed on.
 */
import { Readable } from 'node:stream';
// The uploads manager alone, not BoxClient: the client builds every manager of the API and its
// import is most of a second at each start; the target's only SDK calls are multipart uploads.
import { UploadsManager } from 'box-node-sdk/lib/managers/uploads';
import { FetchOptions } from 'box-node-sdk/lib/networking/fetchOptions';
import type { NetworkSession } from 'box-node-sdk/lib/networking/network';
import type { SerializedData } from 'box-node-sdk/lib/serialization/json';
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
