/**
 * The Drive target's download: the file found by path as `stat` finds it, then its bytes by
 * `files.get` with `alt=media` through the SDK, a `Range` header asking from `start` on.
 * Drive documents ranged media downloads: https://developers.google.com/drive/api/guides/manage-downloads#partial_download
 */
import { Readable } from 'node:stream';
import type { DownloadRequest, RemoteDownload } from '../target.js';
import { checkStart } from '../kit/download.js';
import type { DriveApi } from './transport.js';
import type { DriveFolders } from './folders.js';
import { mapDrivePath } from './names.js';

export interface DriveDownloadDeps {
  id: string;
  api: DriveApi;
  folders: DriveFolders;
  rootSegments: readonly string[];
}

/** Null when the file or a folder on its way is missing. Errors are the SDK's (the caller wraps them). */
export async function driveDownload(d: DriveDownloadDeps, req: DownloadRequest): Promise<RemoteDownload | null> {
  const segments = [...d.rootSegments, ...mapDrivePath(req.remotePath, d.id)];
  const opts = req.signal ? { signal: req.signal } : {};
  const parentId = await d.folders.resolve(segments.slice(0, -1), false, req.signal);
  if (parentId === null) return null;
  const f = await d.folders.findFile(parentId, segments[segments.length - 1]!, req.signal);
  if (!f?.id) return null;
  const size = Number(f.size ?? 0);
  const start = checkStart(req.start, size, d.id);
  const fileId = f.id;
  let stream: Readable;
  if (start === size) {
    // Nothing left to read: Drive answers 416 to a range that starts at the end.
    stream = Readable.from([]);
  } else {
    const res = await d.api.authed(() =>
      d.api.drive.files.get(
        { fileId, alt: 'media', supportsAllDrives: true },
        { ...d.api.callOptions({ ...opts, bytes: size - start }), responseType: 'stream', ...(start > 0 ? { headers: { Range: `bytes=${start}-` } } : {}) },
      ),
    );
    stream = res.data as unknown as Readable;
  }
  return { remoteId: fileId, size, hash: f.md5Checksum ?? null, stream };
}
