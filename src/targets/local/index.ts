/**
 * The local target: archives into a folder on a local or mounted disk. The embedded default,
 * and the reference the cloud targets are measured against by the conformance suite. The put
 * path is upload.ts (atomic and durable), the folders folders.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat as fsStat, statfs, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { hashFile } from '../../archive/hash.js';
import { SourceError, describe, passThrough } from '../kit/classify.js';
import { createLifecycle } from '../kit/lifecycle.js';
import { checkOptions } from '../kit/options.js';
import type { DownloadRequest, Features, PutRequest, PutResult, RemoteDownload, RemoteStat, Target, TargetContext } from '../target.js';
import { localDownload } from './download.js';
import type { LocalOptions } from './api-types.js';
import { classify, classifyRule, localError } from './classify.js';
import { LocalFolders, listArchive } from './folders.js';
import { localPathKey, mapLocalPath } from './names.js';
import { provider } from './provider.js';
import { COPY_BUDGET, CopyBudget, SmallPuts, fsyncFile, lstatOrNull, putFile, type UploadContext } from './upload.js';

export type { LocalOptions } from './api-types.js';

/** What the local target declares: sha256, case-sensitive names, no chunking, no resume. */
export const LOCAL_FEATURES: Features = Object.freeze({
  hashKind: 'sha256',
  caseInsensitive: false,
  simpleUploadMax: Number.POSITIVE_INFINITY,
  chunkSize: 1024 * 1024,
  resumable: false,
  rangedDownload: true,
});

/**
 * Makes a local target archiving under `options.path`.
 *
 * - `put` maps `remotePath` with `mapLocalPath` (NFC; refuses `..`, absolute, NUL, empty
 *   segments, names over 255 bytes), creates the parent folders, and writes atomically (see
 *   the module comment). When a regular file of the same size is already there, the source is
 *   hashed first and compared with it: same sha256 → `unchanged`, nothing written, the source
 *   read once; different → the source is opened a second time to write it.
 * - Before the rename, the temp file is read back and compared with the bytes read from the
 *   source (a large file chunk by chunk as it is written), whose sha256 is the hash recorded.
 *   This costs one more read of every file written, usually served from the page cache: it
 *   proves the write path (short or lost writes, a file altered under us), not the platters.
 * - `keepVersions`: a replaced copy is kept beside as `<stem>.<yyyymmdd-hhmmss>.<ext>` (its own
 *   mtime, UTC), by a hard link made before the rename, so the final name never goes missing;
 *   on filesystems without hard links, by an exclusive copy. Never overwrites a kept version.
 * - The mtime of the stored file is `req.mtimeMs`, set before the rename; its permission bits
 *   are the source's (`req.source.mode & 0o777`; 0600 without `source`), and with
 *   `preserveOwner`, when running as root, its owner and group too. Folders the put makes get
 *   0700, or the source folder's bits when wider, set exactly whatever the umask.
 * - Nothing below the root is followed: a symbolic link on the way to the file or at its name
 *   fails the put (`archive-path-link`, fail-item); the temp file is opened O_EXCL under a name
 *   of its own per upload, and its descriptor's real path checked to be under the root.
 * - The archive root is created on first use. If it disappears later (an unmounted disk) puts
 *   fail `fatal` rather than writing into the empty mount point.
 * - `stat` hashes the whole file (sha256 is what the target verifies with): one read of it.
 * - `close` resolves once the puts in flight have settled and the small puts' worker thread has
 *   ended; later puts fail `fatal` (`closed`).
 * - Errors are TargetErrors with code `local.<rule>` (see classify.ts), ShortReadError when the
 *   source's length differs from `size`, or an AbortError when `req.signal` fired; in every case
 *   the temp file is removed and the previous copy is untouched.
 */
export function createLocalTarget(options: LocalOptions, ctx: TargetContext): Target {
  checkOptions(provider.schema, options, ['path', 'keepVersions', 'preserveOwner']);
  const id = options.id;
  const root = resolve(options.path);
  const folders = new LocalFolders(id, root, ctx.log);
  const uctx: UploadContext = {
    targetId: id,
    log: ctx.log,
    folders,
    keepVersions: options.keepVersions ?? false,
    preserveOwner: (options.preserveOwner ?? false) && process.getuid?.() === 0,
    small: new SmallPuts(ctx.log, root),
    copies: new CopyBudget(COPY_BUDGET),
  };
  const life = createLifecycle(id, 'local');
  let closing: Promise<void> | null = null;

  /** Every error leaving the target goes through here, so `classify` sees only known shapes. */
  function wrap(err: unknown, signal?: AbortSignal): unknown {
    const known = passThrough(err, id, signal);
    if (known !== undefined) return known;
    const { kind, rule } = classifyRule(err);
    const detail = err instanceof SourceError ? `source: ${describe(err.cause)}` : describe(err);
    return localError(id, rule, kind, detail, err);
  }

  const target: Target = {
    id,
    type: 'local',
    features: LOCAL_FEATURES,
    nameKey: localPathKey,

    put(req: PutRequest): Promise<PutResult> {
      return life.run(() => putFile(uctx, req), (err) => wrap(err, req.signal));
    },

    stat(remotePath: string): Promise<RemoteStat | null> {
      return life.run(async () => {
        const path = join(root, mapLocalPath(remotePath, id));
        const st = await lstatOrNull(path);
        if (!st?.isFile()) return null;
        return { remoteId: path, size: st.size, hash: await hashFile('sha256', path) };
      }, wrap);
    },

    download(req: DownloadRequest): Promise<RemoteDownload | null> {
      return life.run(() => localDownload(root, id, req), (err) => wrap(err, req.signal));
    },

    list: () => listArchive(root),

    ensureFolder(remotePath: string): Promise<string> {
      return life.run(async () => {
        const path = remotePath === '' ? root : join(root, mapLocalPath(remotePath, id));
        await folders.ensureDir(path);
        return path;
      }, wrap);
    },

    classify,

    async check(): Promise<string> {
      const probe = join(root, `.stagecoach-probe-${randomBytes(6).toString('hex')}`);
      try {
        await mkdir(root, { recursive: true });
        const st = await fsStat(root);
        if (!st.isDirectory()) throw Object.assign(new Error(`${root} is not a folder`), { code: 'ENOTDIR' });
        const body = `stagecoach probe ${probe}\n`;
        await writeFile(probe, body, { flag: 'wx' });
        await fsyncFile(probe);
        if ((await readFile(probe, 'utf8')) !== body) throw new Error(`the probe file ${probe} read back different`);
        await unlink(probe);
        const fs = await statfs(root);
        const free = fs.bavail * fs.bsize;
        return `local folder ${root} is writable, ${(free / 2 ** 30).toFixed(1)} GiB free`;
      } catch (err) {
        await rm(probe, { force: true }).catch(() => undefined);
        const { rule } = classifyRule(err);
        throw localError(id, rule === 'unknown' ? 'archive-unusable' : rule, 'fatal', `the archive root ${root} is not usable: ${describe(err)}`, err);
      }
    },

    // The small puts' worker thread ends once the puts in flight have settled.
    close: () => (closing ??= life.close().then(() => uctx.small.close())),
  };
  return target;
}

/** The local target's factory, as the registry knows it. */
