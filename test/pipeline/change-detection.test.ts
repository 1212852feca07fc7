import { readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Pipeline } from '../../src/pipeline/topology.js';
import { tempDir, waitFor } from '../helpers/fs.js';
import { harness } from './helpers.js';

// Issue 14.4: a same-size rewrite whose mtime was put back (rsync --inplace -t, cp -p, touch -r)
// changes only the ctime; a rename-over with the same size and mtime changes only inode and
// ctime. Both are archived, live and across a restart, with the periodic rescan off.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup() {
  const t = await tempDir();
  const h = await harness(t.dir, 'watcher: { rescanMs: 0 }', { stableMs: 100 });
  const pipelines: Pipeline[] = [];
  cleanups.push(async () => {
    for (const p of pipelines) await p.stop();
    await t.cleanup();
  });
  return {
    ...h,
    async run() {
      const p = await h.start();
      pipelines.push(p);
      await p.watcher.source.live;
      return p;
    },
  };
}

const archived = (archive: string, name: string) => readFile(path.join(archive, 'inbox', name), 'utf8').catch(() => null);
const old = new Date('2024-05-01T12:00:00Z');

/** Writes `content` over `file` in place and puts its mtime back, as `touch -r` does. */
async function rewriteKeepingMtime(file: string, content: string): Promise<void> {
  const before = await stat(file);
  await writeFile(file, content);
  await utimes(file, before.atime, before.mtime);
  const after = await stat(file);
  expect([after.size, after.mtimeMs]).toEqual([before.size, before.mtimeMs]);
}

describe('change detection by ctime and inode', () => {
  it('a same-size rewrite with its mtime restored is archived by the live watcher', async () => {
    const h = await setup();
    const f = path.join(h.inbox, 'doc.txt');
    await writeFile(f, 'version one');
    await utimes(f, old, old);
    await h.run();
    await waitFor('first version archived', async () => (await archived(h.archive, 'doc.txt')) === 'version one', 10_000);
    await rewriteKeepingMtime(f, 'version two');
    await waitFor('second version archived', async () => (await archived(h.archive, 'doc.txt')) === 'version two', 10_000);
  });

  it('a same-size rewrite with its mtime restored while the daemon was stopped is archived at the next start', async () => {
    const h = await setup();
    const f = path.join(h.inbox, 'doc.txt');
    await writeFile(f, 'version one');
    await utimes(f, old, old);
    const first = await h.run();
    await waitFor('first version archived', async () => (await archived(h.archive, 'doc.txt')) === 'version one', 10_000);
    await first.idle();
    await first.stop();
    await rewriteKeepingMtime(f, 'version two');
    await h.run();
    await waitFor('second version archived', async () => (await archived(h.archive, 'doc.txt')) === 'version two', 10_000);
  });

  it('a file renamed over another with the same size and mtime is seen live, not only by the rescan', async () => {
    const h = await setup();
    const f = path.join(h.inbox, 'photo.jpg');
    await writeFile(f, 'picture AAA');
    await utimes(f, old, old);
    await h.run();
    await waitFor('first version archived', async () => (await archived(h.archive, 'photo.jpg')) === 'picture AAA', 10_000);
    const staged = path.join(h.dir, 'staged.jpg');
    await writeFile(staged, 'picture BBB');
    // Read since it was made (atime after mtime), as most files are: chokidar then reports no
    // change for a same-mtime file (it takes that for an access).
    await utimes(staged, new Date(), old);
    await rename(staged, f);
    await waitFor('second version archived', async () => (await archived(h.archive, 'photo.jpg')) === 'picture BBB', 10_000);
  });
});
