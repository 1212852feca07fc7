/**
 * The Dropbox target's download: `files/download` through the SDK, which answers the bytes and
 * the file's metadata (https://www.dropbox.com/developers/documentation/http/documentation#files-download).
 * The SDK reads the whole answer into a Buffer and takes no Range header, so a start past 0 is
 * served by skipping bytes (no `rangedDownload`), and memory holds one file while it is read.
 */
import { Readable } from 'node:stream';
import type { DownloadRequest, RemoteDownload } from '../target.js';
import { checkStart } from '../kit/download.js';
import type { DropboxSession } from './auth.js';

/** What `filesDownload` resolves to in Node (the metadata plus `fileBinary`). */
interface DownloadResult {
  id: string;
  size: number;
  content_hash?: string;
  fileBinary: Buffer;
}

/**
 * Null when nothing (or a folder) is at `path`. `isNotFound` tells a path error from others;
 * other errors are the SDK's (the caller wraps them).
 */
export async function dropboxDownload(
  session: DropboxSession,
  id: string,
  path: string,
  isNotFound: (err: unknown) => boolean,
  req: DownloadRequest,
): Promise<RemoteDownload | null> {
  let got: DownloadResult;
  try {
    got = (await session.call((dbx) => dbx.filesDownload({ path }), req.signal)).result as unknown as DownloadResult;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
  const bytes = Buffer.isBuffer(got.fileBinary) ? got.fileBinary : Buffer.from(got.fileBinary as ArrayBuffer);
  const start = checkStart(req.start, bytes.length, id);
  return { remoteId: got.id, size: bytes.length, hash: got.content_hash ?? null, stream: Readable.from([bytes.subarray(start)]) };
}
