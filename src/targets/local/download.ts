/**
 * The local target's download: the archived file read from byte `start` (a plain ranged read).
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { DownloadRequest, RemoteDownload } from '../target.js';
import { checkStart } from '../kit/download.js';
import { mapLocalPath } from './names.js';

/**
 * Opens the file under `root` (refusing a symlink or a folder: null) and streams it from that
 * descriptor (closed with the stream), so a rename meanwhile cannot swap what is read. `hash` is null: hashing here would
 * read the file twice; the caller hashes what it reads.
 */
export async function localDownload(root: string, id: string, req: DownloadRequest): Promise<RemoteDownload | null> {
  const path = join(root, mapLocalPath(req.remotePath, id));
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return null;
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      return null;
    }
    const start = checkStart(req.start, st.size, id);
    const stream = fh.createReadStream({ start, ...(req.signal ? { signal: req.signal } : {}) });
    return { remoteId: path, size: st.size, hash: null, stream };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}
