import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { countWatched, inotifyAdvice, inotifyLimitOf } from '../../src/pipeline/inotify-limits.js';
import { tempDir } from '../helpers/fs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('inotify limit advice', () => {
  it('maps the watcher\'s errors to the limit that ran out', () => {
    expect([inotifyLimitOf('ENOSPC'), inotifyLimitOf('EMFILE'), inotifyLimitOf('EACCES'), inotifyLimitOf(undefined)]).toEqual(['max_user_watches', 'max_user_instances', null, null]);
  });

  it('watches: the limit now plus what the root needs, rounded up to 8192; instances: twice the limit', () => {
    expect(inotifyAdvice('max_user_watches', 8192, 1_010_100)).toEqual({
      limit: 'max_user_watches',
      current: 8192,
      wanted: 1_024_000,
      sysctl: 'sysctl fs.inotify.max_user_watches=1024000',
      persist: 'fs.inotify.max_user_watches=1024000',
    });
    expect(inotifyAdvice('max_user_watches', null, 10).wanted).toBe(16384); // unknown: the kernel's default 8192
    expect(inotifyAdvice('max_user_instances', 128, 5).sysctl).toBe('sysctl fs.inotify.max_user_instances=8192');
  });

  it('counts the folders (root included) and files under a root, skipping the folders the watcher skips', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    for (const d of ['a/b', 'c', 'node_modules/x']) await mkdir(path.join(t.dir, d), { recursive: true });
    for (const f of ['a/1', 'a/b/2', 'c/3', 'node_modules/x/4']) await writeFile(path.join(t.dir, f), '');
    expect(await countWatched(t.dir, (rel) => rel === 'node_modules')).toEqual({ folders: 4, files: 3 });
  });
});
