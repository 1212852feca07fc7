import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes a secret (a token, a token cache) to `file` with mode 0600, atomically: a temp file
 * beside it (exclusive), fsync, rename over the file, then fsync of the folder. The folder is
 * created with mode 0700 if missing. A reader sees the old content or the new, never a part,
 * and a crash at any point leaves one of the two.
 */
export async function writeSecretFile(file: string, content: string): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(content, 'utf8');
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dh = await open(dir, 'r');
  try {
    // Some filesystems cannot fsync a folder; the rename is atomic there all the same.
    await dh.sync().catch(() => undefined);
  } finally {
    await dh.close();
  }
}
