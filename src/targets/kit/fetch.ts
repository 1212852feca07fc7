/**
 * The `fetch` the Drive and Dropbox SDKs are given (gaxios's `fetchImplementation`, the Dropbox
 * SDK's `fetch`) and the Box SDK's network client sends through (../box/transport.ts): one
 * node:http/https exchange, with the part of the WHATWG fetch these SDKs use and nothing per
 * request that can be done once. It stands in for node-fetch (v3 under gaxios, v2 under the
 * Dropbox and Box SDKs), which for each request made an AbortController, wired its signal
 * through an event target, piped the answer through a PassThrough with `stream.pipeline` and,
 * when the answer ended, built a DOMException it never threw; with four clouds at once that was a
 * tenth of the daemon's main thread (bench/HISTORY.md).
 *
 * What it does, as fetch and node-fetch do:
 * - **Bodies**: a string, Buffer or typed array (sent with its Content-Length), URLSearchParams
 *   (as a form), a Node Readable or any async iterable of chunks (streamed, chunked unless the
 *   caller set a Content-Length). A stream's error fails the request with that error.
 * - **Answers**: `status`, `ok`, `statusText`, `headers` (get/has/set/append/delete/forEach and
 *   iteration, names case-insensitive), `url`, `redirected`; the body as `text()`, `json()`,
 *   `arrayBuffer()`, `buffer()` (node-fetch 2), `blob()`, or `body`, a Node Readable. An answer
 *   whose connection closed short of its Content-Length fails its body (Node's `aborted`), where
 *   node-fetch 2 ended it short without a word.
 * - **gzip, deflate and br** answers are inflated unless `compress: false`, and Accept-Encoding
 *   offers them unless the caller set it.
 * - **Redirects** are followed (at most `follow`, 20 by default; `redirect: 'manual'` hands the
 *   3xx back, `'error'` fails): a 303, or a 301/302 to a POST, becomes a GET without a body; a
 *   streamed body cannot be sent twice, so a 307/308 after one fails; Authorization and cookies
 *   are not carried to another host.
 * - **Cancellation**: the signal cuts the request (also one whose body is still being sent after
 *   an early answer), and the answer's body once it flows; both reject with an AbortError ("The
 *   operation was aborted.", node-fetch's), and a signal aborted before the call sends nothing.
 *   A request cut or failed destroys its body stream, as a pipeline would.
 * - **Failures** reject with a FetchError (`type: 'system'`, `code` and `errno` the system's
 *   ECONNRESET…, as node-fetch's); its message names the URL without its query.
 * - `timeout` (ms, node-fetch 2's option): the exchange fails (`type` `request-timeout` before
 *   the answer, `body-timeout` while its body is read) when the connection stays silent that
 *   long; 0: never.
 * - The agent is the caller's, or the proxy variables' choice for the URL (./proxy.ts), whose
 *   agents keep connections alive.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { readAll } from './chunks.js';
import { agentFor } from './proxy.js';

/** An error of the exchange, shaped as node-fetch's (`type`, and `code`/`errno` for a system error). */
export class FetchError extends Error {
  readonly type: string;
  readonly code: string | undefined;
  readonly errno: string | undefined;
  constructor(message: string, type: string, cause?: NodeJS.ErrnoException) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'FetchError';
    this.type = type;
    this.code = cause?.code;
    this.errno = this.code;
  }
}

function abortError(): Error {
  const err = new Error('The operation was aborted.');
  err.name = 'AbortError';
  (err as { type?: string }).type = 'aborted';
  return err;
}

/** Header names the fetch standard joins with ", " — all but Set-Cookie, kept apart. */
const SET_COOKIE = 'set-cookie';

/** Headers, case-insensitive, in the order first set. */
export class FetchHeaders {
  readonly #map = new Map<string, string>();
  readonly #cookies: string[] = [];

  constructor(init?: unknown) {
    if (init === undefined || init === null) return;
    if (typeof (init as { forEach?: unknown }).forEach === 'function' && !Array.isArray(init) && !(init instanceof Map)) {
      (init as { forEach(cb: (v: string, k: string) => void): void }).forEach((v, k) => this.append(k, v));
    } else if (Array.isArray(init) || init instanceof Map) {
      for (const [k, v] of init as Iterable<[string, string]>) this.append(k, v);
    } else {
      for (const k of Object.keys(init as object)) {
        const v = (init as Record<string, unknown>)[k];
        if (v === undefined) continue;
        if (Array.isArray(v)) for (const one of v) this.append(k, String(one));
        else this.append(k, String(v));
      }
    }
  }

  /** From Node's raw header list (name, value, name, value…). */
  static fromRaw(raw: readonly string[]): FetchHeaders {
    const h = new FetchHeaders();
    for (let i = 0; i + 1 < raw.length; i += 2) h.append(raw[i]!, raw[i + 1]!);
    return h;
  }

  get(name: string): string | null {
    const k = name.toLowerCase();
    if (k === SET_COOKIE) return this.#cookies.length > 0 ? this.#cookies.join(', ') : null;
    return this.#map.get(k) ?? null;
  }

  has(name: string): boolean {
    const k = name.toLowerCase();
    return k === SET_COOKIE ? this.#cookies.length > 0 : this.#map.has(k);
  }

  set(name: string, value: string): void {
    const k = name.toLowerCase();
    if (k === SET_COOKIE) this.#cookies.splice(0, this.#cookies.length, String(value));
    else this.#map.set(k, String(value));
  }

  append(name: string, value: string): void {
    const k = name.toLowerCase();
    if (k === SET_COOKIE) {
      this.#cookies.push(String(value));
      return;
    }
    const prev = this.#map.get(k);
    this.#map.set(k, prev === undefined ? String(value) : `${prev}, ${value}`);
  }

  delete(name: string): void {
    const k = name.toLowerCase();
    if (k === SET_COOKIE) this.#cookies.length = 0;
    else this.#map.delete(k);
  }

  getSetCookie(): string[] {
    return [...this.#cookies];
  }

  forEach(cb: (value: string, name: string, headers: FetchHeaders) => void): void {
    for (const [k, v] of this.entries()) cb(v, k, this);
  }

  *entries(): IterableIterator<[string, string]> {
    yield* this.#map.entries();
    for (const c of this.#cookies) yield [SET_COOKIE, c];
  }

  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): IterableIterator<string> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  /** node-fetch 2's view: each name's values. */
  raw(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [k, v] of this.#map) out[k] = [v];
    if (this.#cookies.length > 0) out[SET_COOKIE] = [...this.#cookies];
    return out;
  }

  /** A plain object for node:http (Set-Cookie as a list). */
  toNode(): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = Object.fromEntries(this.#map);
    if (this.#cookies.length > 0) out[SET_COOKIE] = [...this.#cookies];
    return out;
  }
}

/** What `FetchResponse` is built from: headers of any kind FetchHeaders takes. */
interface ResponseParts {
  status: number;
  statusText: string;
  headers: unknown;
  url: string;
  redirected: boolean;
}

/** An answer: its head, and its body read once, as a stream or whole. */
export class FetchResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: FetchHeaders;
  readonly url: string;
  readonly redirected: boolean;
  readonly type = 'default';
  readonly #body: Readable | null;
  #used = false;

  constructor(body: Readable | Buffer | string | null, parts: Partial<ResponseParts> & { status: number }) {
    this.status = parts.status;
    this.statusText = parts.statusText ?? http.STATUS_CODES[parts.status] ?? '';
    this.headers = parts.headers instanceof FetchHeaders ? parts.headers : new FetchHeaders(parts.headers);
    this.url = parts.url ?? '';
    this.redirected = parts.redirected ?? false;
    this.#body = body === null ? null : body instanceof Readable ? body : Readable.from([Buffer.from(body)]);
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /** The body as a stream (null when the answer has none). */
  get body(): Readable | null {
    return this.#body;
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  /** The whole body. Fails once read, or when it fails (cut short, aborted, timed out). */
  async buffer(): Promise<Buffer> {
    if (this.#used) throw new TypeError('body used already');
    this.#used = true;
    return this.#body === null ? Buffer.alloc(0) : readAll(this.#body);
  }

  async text(): Promise<string> {
    return (await this.buffer()).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = await this.buffer();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }

  async blob(): Promise<Blob> {
    const b = await this.buffer();
    return new Blob([b], { type: this.headers.get('content-type') ?? '' });
  }
}

/** The part of fetch's init (and node-fetch's) the SDKs pass. */
export interface FetchInit {
  method?: string | undefined;
  headers?: unknown;
  body?: unknown;
  signal?: AbortSignal | null | undefined;
  redirect?: 'follow' | 'manual' | 'error' | undefined;
  /** Most redirects followed (node-fetch's option). */
  follow?: number | undefined;
  /** Silence (ms) after which the exchange fails; 0 or absent: never (node-fetch 2's option). */
  timeout?: number | undefined;
  /** Offer and inflate gzip, deflate, br (default true). */
  compress?: boolean | undefined;
  agent?: http.Agent | ((url: URL) => http.Agent) | null | undefined;
}

/** A request body ready to send: bytes (with their length) or a stream. */
type Outgoing = { bytes: Buffer; stream: null } | { bytes: null; stream: Readable } | { bytes: null; stream: null };

function outgoing(body: unknown, headers: FetchHeaders): Outgoing {
  if (body === undefined || body === null) return { bytes: null, stream: null };
  if (typeof body === 'string') return { bytes: Buffer.from(body), stream: null };
  if (Buffer.isBuffer(body)) return { bytes: body, stream: null };
  if (ArrayBuffer.isView(body)) return { bytes: Buffer.from(body.buffer, body.byteOffset, body.byteLength), stream: null };
  if (body instanceof ArrayBuffer) return { bytes: Buffer.from(body), stream: null };
  if (body instanceof URLSearchParams) {
    if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
    return { bytes: Buffer.from(body.toString()), stream: null };
  }
  if (body instanceof Readable) return { bytes: null, stream: body };
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' || typeof (body as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return { bytes: null, stream: Readable.from(body as AsyncIterable<unknown>, { objectMode: false }) };
  }
  throw new TypeError(`fetch: a body of type ${Object.prototype.toString.call(body)} cannot be sent`);
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Headers not carried to another host on a redirect (node-fetch's list). */
const CREDENTIALS = ['authorization', 'www-authenticate', 'cookie', 'cookie2'];
const ACCEPT_ENCODING = 'gzip, deflate, br';

/** The inflater for a Content-Encoding, or null to pass the body as it is. */
function inflater(encoding: string | null): NodeJS.ReadWriteStream | null {
  switch (encoding?.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      // Lenient as browsers are: a gzip stream whose trailer was cut still gives what came.
      return zlib.createGunzip({ flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    case 'deflate':
      return zlib.createInflate({ flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      return null;
  }
}

/** Where an error message points: the URL without its query (which may carry a secret). */
function where(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** One exchange, redirects included: see the module comment. */
export function fetch(input: string | URL, init: FetchInit = {}): Promise<FetchResponse> {
  const signal = init.signal ?? null;
  if (signal?.aborted) return Promise.reject(abortError());
  let url: URL;
  let headers: FetchHeaders;
  let body: Outgoing;
  try {
    url = typeof input === 'string' ? new URL(input) : new URL(input.href);
    headers = new FetchHeaders(init.headers);
    body = outgoing(init.body, headers);
  } catch (err) {
    return Promise.reject(err);
  }
  const compress = init.compress !== false;
  if (compress && !headers.has('accept-encoding')) headers.set('accept-encoding', ACCEPT_ENCODING);
  if (!headers.has('accept')) headers.set('accept', '*/*');
  const follow = init.follow ?? 20;
  const redirectMode = init.redirect ?? 'follow';
  const timeoutMs = init.timeout ?? 0;
  let method = (init.method ?? 'GET').toUpperCase();

  return new Promise<FetchResponse>((resolve, reject) => {
    let redirects = 0;
    let settled = false;
    let current: http.ClientRequest | null = null;
    let answer: Readable | null = null;
    // The signal is heard until the request is done (its body may still be sent after the
    // answer, which the signal must be able to cut) and the answer's body closed.
    let requestClosed = false;
    let answerClosed = false;

    const onAbort = (): void => {
      const err = abortError();
      current?.destroy(err);
      body.stream?.destroy();
      answer?.destroy(err);
      finish(err);
    };
    const stopListening = (): void => signal?.removeEventListener('abort', onAbort);
    signal?.addEventListener('abort', onAbort, { once: true });

    function finish(err: unknown, res?: FetchResponse): void {
      if (settled) return;
      settled = true;
      if (err !== undefined) {
        stopListening();
        reject(err);
      } else resolve(res!);
    }

    function send(): void {
      const agent = typeof init.agent === 'function' ? init.agent(url) : (init.agent ?? agentFor(url));
      const nodeHeaders = headers.toNode();
      if (body.bytes !== null) nodeHeaders['content-length'] = String(body.bytes.length);
      else if (body.stream === null && (method === 'POST' || method === 'PUT' || method === 'PATCH')) nodeHeaders['content-length'] = '0';
      const mod = url.protocol === 'https:' ? https : http;
      let req: http.ClientRequest;
      try {
        req = mod.request(url, { method, headers: nodeHeaders, agent }, onResponse);
      } catch (err) {
        finish(err);
        return;
      }
      current = req;
      requestClosed = false;
      req.once('close', () => {
        if (current !== req) return;
        requestClosed = true;
        if (answerClosed) stopListening();
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        // A request cut or failed reads no more of its body (as a pipeline would, and fetch does).
        body.stream?.destroy();
        if (err.name === 'AbortError' || err instanceof FetchError) finish(err);
        else finish(new FetchError(`request to ${where(url)} failed, reason: ${err.message}`, 'system', err));
      });
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () => req.destroy(new FetchError(`network timeout at: ${where(url)}`, 'request-timeout')));
      }
      const stream = body.stream;
      if (stream !== null) {
        // `on`: the stream may fail again once the request is cut, and an unheard 'error' throws.
        stream.on('error', (err) => {
          req.destroy(err);
          finish(err);
        });
        stream.pipe(req);
      } else req.end(body.bytes ?? undefined);
    }

    function onResponse(res: http.IncomingMessage): void {
      const status = res.statusCode ?? 0;
      const resHeaders = FetchHeaders.fromRaw(res.rawHeaders);
      const location = resHeaders.get('location');
      if (REDIRECTS.has(status) && location !== null && redirectMode !== 'manual') {
        res.resume();
        // A redirect not followed ends the request, and a body stream still being sent with it.
        const refuse = (err: FetchError): void => {
          current?.destroy();
          body.stream?.destroy();
          finish(err);
        };
        if (redirectMode === 'error') {
          refuse(new FetchError(`redirect mode is set to error: ${where(url)}`, 'no-redirect'));
          return;
        }
        if (redirects >= follow) {
          refuse(new FetchError(`maximum redirect reached at: ${where(url)}`, 'max-redirect'));
          return;
        }
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          refuse(new FetchError(`the redirect from ${where(url)} points nowhere valid`, 'invalid-redirect'));
          return;
        }
        if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
          // The body sent with the redirected request is done with: the next one has none.
          body.stream?.destroy();
          method = 'GET';
          body = { bytes: null, stream: null };
          headers.delete('content-length');
          headers.delete('content-type');
        } else if (body.stream !== null) {
          refuse(new FetchError('Cannot follow redirect with body being a readable stream', 'unsupported-redirect'));
          return;
        }
        if (next.host !== url.host || next.protocol !== url.protocol) for (const h of CREDENTIALS) headers.delete(h);
        redirects++;
        url = next;
        send();
        return;
      }

      // The body: inflated when encoded; a connection closed short fails it (Node's 'aborted').
      let stream: Readable = res;
      const hasBody = method !== 'HEAD' && status !== 204 && status !== 304;
      const inflate = compress && hasBody ? inflater(resHeaders.get('content-encoding')) : null;
      if (inflate !== null) {
        const out = inflate as unknown as Readable;
        res.on('error', (err) => out.destroy(err));
        res.on('aborted', () => out.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
        res.pipe(inflate as unknown as NodeJS.WritableStream);
        stream = out;
      }
      answer = stream;
      if (timeoutMs > 0) {
        res.setTimeout(timeoutMs, () => stream.destroy(new FetchError(`network timeout at: ${where(url)}`, 'body-timeout')));
      }
      stream.once('close', () => {
        answerClosed = true;
        if (requestClosed) stopListening();
      });
      if (!hasBody) res.resume();
      finish(undefined, new FetchResponse(hasBody ? stream : null, { status, statusText: res.statusMessage ?? '', headers: resHeaders, url: url.href, redirected: redirects > 0 }));
    }

    send();
  });
}
