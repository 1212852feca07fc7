import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes a secret (a token, a token cache) to `file` with mode 0600, atomically: a temp file
 * beside it (exclusive), fsync, rename over the file, then fsync of the folder. The folder is
 * created with mode 0700 if missing. A reader sees the old content or the new, never a part,
 * and a crash at any point leaves one of the two.
 *
 * `renameBeforeSync`: for a secret whose previous value is already dead (Box's rotated refresh
 * token: the old one stopped working when the new one was issued), the rename comes right after
 * the write and the fsyncs after it. A process killed at any moment after the write then leaves
 * the new value (the kernel holds it), where waiting for the fsync first — long on a busy disk —
 * left a window in which a kill kept only the dead one and lost the sign-in. A power cut before
 * the fsyncs may lose the new value either way.
 */
export async function writeSecretFile(file: string, content: string, opts: { renameBeforeSync?: boolean } = {}): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(content, 'utf8');
    if (opts.renameBeforeSync) await rename(tmp, file);
    else await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  try {
    if (opts.renameBeforeSync) await fh.sync();
  } finally {
    await fh.close();
  }
  if (!opts.renameBeforeSync) {
    try {
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
  const dh = await open(dir, 'r');
  try {
    // Some filesystems cannot fsync a folder; the rename is atomic there all the same.
    await dh.sync().catch(() => undefined);
  } finally {
    await dh.close();
  }
}
