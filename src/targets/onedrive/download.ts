/**
 * The OneDrive target's download: the item by path through the Graph SDK, whose
 * `@microsoft.graph.downloadUrl` is a pre-authenticated, short-lived URL; its bytes are then read
 * without Authorization, from `start` with a `Range` header. Both are documented:
 * https://learn.microsoft.com/en-us/graph/api/driveitem-get-content ("Partial range downloads",
 * and the 302 to a pre-authenticated URL that must not be sent an Authorization header).
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { DownloadRequest, RemoteDownload } from '../target.js';
import { checkStart } from '../kit/download.js';
import type { DriveItemJson } from './api-types.js';
import { OneDriveHttpError } from './classify.js';
import type { GraphApi } from './transport.js';
import { readBody, sendHttp, type UrlRewrite } from './transport.js';
import { encodePath } from './names.js';
import { remoteHash } from './upload.js';

export interface OneDriveDownloadDeps {
  api: GraphApi;
  id: string;
  /** The item's names from the drive root (remote root included). */
  names: readonly string[];
  rewrite: UrlRewrite | undefined;
  timeoutMs: number;
}

/** Null when nothing (or a folder) is at the path, or it went before its bytes were asked. */
export async function onedriveDownload(d: OneDriveDownloadDeps, req: DownloadRequest): Promise<RemoteDownload | null> {
  type WithUrl = DriveItemJson & { '@microsoft.graph.downloadUrl'?: string };
  const item = await d.api.getOrNull<WithUrl>(`${d.api.drive}/root:/${encodePath(d.names)}`, req.signal ? { signal: req.signal } : {});
  if (!item || item.folder || !item.file) return null;
  const size = item.size ?? 0;
  const start = checkStart(req.start, size, d.id);
  const url = item['@microsoft.graph.downloadUrl'];
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) {
    throw new OneDriveHttpError({ status: 502, message: 'Graph answered the item without a download URL' });
  }
  const base = { remoteId: item.id, size, hash: remoteHash(item) ?? null };
  if (start === size) return { ...base, stream: Readable.from([]) };
  const res: IncomingMessage = await sendHttp(new URL(url), {
    method: 'GET',
    headers: start > 0 ? { range: `bytes=${start}-` } : {},
    body: null,
    signal: req.signal,
    rewrite: d.rewrite,
    timeoutMs: d.timeoutMs,
  });
  const status = res.statusCode ?? 0;
  if (status === 404) {
    res.resume();
    return null;
  }
  if (status !== (start > 0 ? 206 : 200)) {
    const text = (await readBody(res).catch(() => Buffer.alloc(0))).toString('utf8').slice(0, 200);
    throw new OneDriveHttpError({ status, message: `the download answered ${status}${start > 0 && status === 200 ? ' (the range was not honoured)' : ''}: ${text}` });
  }
  return { ...base, stream: res };
}
