/**
 * The Dropbox target's download: `files/download`
 * (https://www.dropbox.com/developers/documentation/http/documentation#files-download), the bytes
 * in the body and the file's metadata in the `Dropbox-API-Result` header. The SDK's
 * `filesDownload` reads the whole answer into a Buffer and sends no Range header, so the request
 * is made here, through the session's own transport (endpoints, proxy agent, cancellation:
 * transport.ts's `createDropboxStream`) with the SDK's current access token (refreshed through its auth first, and once
 * more on a 401 `expired_access_token` as every call is): from `start` on with a `Range` header,
 * which Dropbox's content-download endpoints accept ("These endpoints also support HTTP GET along
 * with ETag-based caching (If-None-Match) and HTTP range requests",
 * https://www.dropbox.com/developers/documentation/http/documentation#formats). The body is
 * streamed, never held whole. A server that ignores the range (200) has the bytes before `start`
 * skipped here.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { DropboxResponseError } from 'dropbox';
import type { DownloadRequest, RemoteDownload } from '../target.js';
import { checkStart } from '../kit/download.js';
import type { DropboxSession } from './auth.js';

/** The content-download endpoint (rewritten to `endpoints.content` by the session's fetch). */
const DOWNLOAD_URL = 'https://content.dropboxapi.com/2/files/download';

/** The part of `Dropbox-API-Result` read here. */
interface DownloadResult {
  id: string;
  size: number;
  content_hash?: string;
}

/** `Dropbox-API-Arg`'s encoding: JSON with every character past U+007E as `\uXXXX` (the SDK's `httpHeaderSafeJson`). */
function headerArg(v: unknown): string {
  return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The SDK's error for an error answer, so classify.ts and the session's refresh read it as theirs. */
async function responseError(res: IncomingMessage): Promise<DropboxResponseError<unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res) {
    // An error body is a line of JSON or text: the first 64 KiB are plenty.
    if (size < 65_536) chunks.push(c as Buffer);
    size += (c as Buffer).length;
  }
  const text = Buffer.concat(chunks).toString('utf8');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (a 400's plain text, a 5xx page): kept as text, as the SDK does.
  }
  return new DropboxResponseError(res.statusCode ?? 0, new Headers(Object.entries(res.headers).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)] as [string, string]]))), body);
}

/** The bytes of `body` past its first `n`. */
async function* skip(body: AsyncIterable<Buffer>, n: number): AsyncGenerator<Buffer> {
  let left = n;
  for await (const chunk of body) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
}

/**
 * Null when nothing (or a folder) is at `path`. `isNotFound` tells a path error from others;
 * other errors are the SDK's DropboxResponseError or the session's network errors (the caller
 * wraps them).
 */
export async function dropboxDownload(
  session: DropboxSession,
  id: string,
  path: string,
  isNotFound: (err: unknown) => boolean,
  req: DownloadRequest,
): Promise<RemoteDownload | null> {
  const start = req.start ?? 0;
  if (!Number.isSafeInteger(start) || start < 0) checkStart(req.start, 0, id);
  let res: IncomingMessage;
  try {
    res = await session.call(async (_dbx, send) => {
      await session.auth.checkAndRefreshAccessToken();
      const headers: Record<string, string> = { Authorization: `Bearer ${session.auth.getAccessToken()}`, 'Dropbox-API-Arg': headerArg({ path }) };
      if (start > 0) headers.Range = `bytes=${start}-`;
      const r = await send(DOWNLOAD_URL, { method: 'POST', headers });
      const status = r.statusCode ?? 0;
      // 416: nothing from `start` on; the size tells whether that is the end or past it.
      if ((status < 200 || status > 299) && status !== 416) throw await responseError(r);
      return r;
    }, req.signal);
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
  if (res.statusCode === 416) {
    res.resume();
    let meta;
    try {
      meta = (await session.call((dbx) => dbx.filesGetMetadata({ path }), req.signal)).result as { '.tag'?: string } & DownloadResult;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
    if (meta['.tag'] !== 'file') return null;
    checkStart(start, meta.size, id);
    return { remoteId: meta.id, size: meta.size, hash: meta.content_hash ?? null, stream: Readable.from([]) };
  }
  const body: Readable = res;
  let meta: DownloadResult;
  try {
    meta = JSON.parse(String(res.headers['dropbox-api-result'] ?? '')) as DownloadResult;
  } catch (err) {
    body.destroy();
    throw new Error(`[stagecoach] [${id}] files/download answered without a readable Dropbox-API-Result header`, { cause: err });
  }
  try {
    checkStart(start, meta.size, id);
  } catch (err) {
    body.destroy();
    throw err;
  }
  // The request carries the signal: an abort destroys it, and its body with it.
  const stream = res.statusCode === 200 && start > 0 ? Readable.from(skip(body, start)) : body;
  if (stream !== body) stream.once('close', () => body.destroy());
  return { remoteId: meta.id, size: meta.size, hash: meta.content_hash ?? null, stream };
}
