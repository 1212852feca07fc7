/** The memory target's download: the stored bytes from `start`, as a stream. */
import { Readable } from 'node:stream';
import type { DownloadRequest, RemoteDownload } from '../target.js';
import { checkStart } from '../kit/download.js';

/** A copy of the bytes is streamed, so a put meanwhile does not change what is read. */
export function memoryDownload(id: string, found: { path: string; bytes: Buffer } | null, hash: (b: Buffer) => string, req: DownloadRequest): RemoteDownload | null {
  if (!found) return null;
  const bytes = Buffer.from(found.bytes);
  const start = checkStart(req.start, bytes.length, id);
  return { remoteId: found.path, size: bytes.length, hash: hash(bytes), stream: Readable.from([bytes.subarray(start)]) };
}
