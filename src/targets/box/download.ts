/**
 * The Box target's download: the file found as `stat` finds it, then `GET /files/:id/content`
 * through the SDK's DownloadsManager, which follows Box's redirect to dl.boxcloud.com. A start
 * past 0 is a `Range` header, which Box honours
 * (https://developer.box.com/reference/get-files-id-content/: "range: The byte range of the content to download").
 */
import { DownloadFileHeaders, DownloadsManager } from 'box-node-sdk/lib/managers/downloads';
import { Readable } from 'node:stream';
import type { DownloadRequest, RemoteDownload, RemoteStat } from '../target.js';
import { checkStart } from '../kit/download.js';
import { BoxHttpError } from './classify.js';
import type { BoxApi } from './transport.js';

/** Null when nothing is at the path, or the file went between lookup and download. Errors are converted (BoxHttpError…). */
export async function boxDownload(
  api: BoxApi,
  id: string,
  lookup: (remotePath: string) => Promise<RemoteStat | null>,
  req: DownloadRequest,
): Promise<RemoteDownload | null> {
  const found = await lookup(req.remotePath);
  if (!found) return null;
  const start = checkStart(req.start, found.size, id);
  // Nothing left to read: a range that starts at the end is answered 416.
  if (start === found.size && start > 0) return { ...found, stream: Readable.from([]) };
  const manager = new DownloadsManager({ auth: api.gate, networkSession: api.session });
  let stream: Readable | undefined;
  try {
    stream = (await manager.downloadFile(found.remoteId, {
      ...(start > 0 ? { headers: new DownloadFileHeaders({ range: `bytes=${start}-` }) } : {}),
      ...(req.signal ? { cancellationToken: req.signal } : {}),
    })) as Readable | undefined;
  } catch (err) {
    const e = api.convert(err);
    if (e instanceof BoxHttpError && e.status === 404) return null;
    throw e;
  }
  if (!stream) return null;
  return { remoteId: found.remoteId, size: found.size, hash: found.hash, stream };
}
