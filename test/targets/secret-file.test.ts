/**
 * writeSecretFile (src/targets/secret-file.ts): when the file is in place against the fsync of
 * its content. By default only after (a crash leaves the old value or the new one, whole); with
 * `renameBeforeSync` (Box's rotated refresh token, whose old value is already dead) before, so a
 * process killed while the disk is slow to sync still leaves the new value.
 */
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { writeSecretFile } from '../../src/targets/secret-file.js';
import { tempDir } from '../helpers/fs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** What `file` holds each time a file handle is synced while `write` runs. */
async function contentAtEachSync(file: string, write: () => Promise<void>): Promise<string[]> {
  const probe = await open(file, 'r');
  const proto = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
  await probe.close();
  const seen: string[] = [];
  const sync = proto.sync;
  vi.spyOn(proto, 'sync').mockImplementation(async function (this: unknown) {
    seen.push(await readFile(file, 'utf8'));
    return sync.call(this);
  });
  await write();
  return seen;
}

describe('writeSecretFile', () => {
  it('by default puts the file in place only once its content is synced', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const file = path.join(t.dir, 'token.json');
    await writeFile(file, 'old');
    const seen = await contentAtEachSync(file, () => writeSecretFile(file, 'new'));
    expect(seen[0]).toBe('old');
    expect(await readFile(file, 'utf8')).toBe('new');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('with renameBeforeSync puts the new value in place before any fsync, then syncs it', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const file = path.join(t.dir, 'token.json');
    await writeFile(file, 'old');
    const seen = await contentAtEachSync(file, () => writeSecretFile(file, 'new', { renameBeforeSync: true }));
    expect(seen.length).toBeGreaterThanOrEqual(1);
    expect(seen.every((c) => c === 'new')).toBe(true);
    expect(await readFile(file, 'utf8')).toBe('new');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });
});
