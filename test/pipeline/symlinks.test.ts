import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Pipeline } from '../../src/pipeline/topology.js';
import { listFiles, tempDir, waitFor } from '../helpers/fs.js';
import { harness } from './helpers.js';

// Issue 14.5: symbolic links follow a documented policy. followSymlinks: false (default): not
// archived, each logged and counted in the root's status. true: a link to a file inside a
// watched root is archived under the link's path; links outside, to folders, or dangling are not.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(follow: boolean | null) {
  const t = await tempDir();
  const extra = `watcher: { rescanMs: 0 }`;
  const h = await harness(t.dir, extra, { stableMs: 100 });
  if (follow !== null) h.config.roots[0]!.followSymlinks = follow;
  const outside = path.join(t.dir, 'outside.txt');
  await writeFile(outside, 'secret outside the roots');
  await writeFile(path.join(h.inbox, 'real.txt'), 'real content');
  await mkdir(path.join(h.inbox, 'sub'));
  await writeFile(path.join(h.inbox, 'sub', 'inner.txt'), 'inner');
  await symlink('real.txt', path.join(h.inbox, 'link-in.txt'));
  await symlink(outside, path.join(h.inbox, 'link-out.txt'));
  await symlink('sub', path.join(h.inbox, 'link-dir'));
  await symlink('nowhere.txt', path.join(h.inbox, 'dangling.txt'));
  const p: Pipeline = await h.start();
  cleanups.push(async () => {
    await p.stop();
    await t.cleanup();
  });
  await p.watcher.source.live;
  return { h, p };
}

describe('symbolic links', () => {
  it('followSymlinks false (the default): none is archived, each is counted in the root status, at start and live', async () => {
    const { h, p } = await setup(null);
    expect(h.config.roots[0]!.followSymlinks).toBe(false);
    await waitFor('the real files archived', async () => (await listFiles(h.archive)).length === 2, 10_000);
    await symlink('real.txt', path.join(h.inbox, 'made-live.txt'));
    await waitFor('five links counted', () => p.watcher.source.roots()[0]!.skippedLinks === 5, 10_000);
    await p.idle();
    expect(await listFiles(h.archive)).toEqual(['inbox/real.txt', 'inbox/sub/inner.txt']);
  });

  it('followSymlinks true: a link to a file inside a root is archived under its own path; outside, folder and dangling links are not', async () => {
    const { h, p } = await setup(true);
    await waitFor('three archived', async () => (await listFiles(h.archive)).length === 3, 10_000);
    await p.idle();
    expect(await listFiles(h.archive)).toEqual(['inbox/link-in.txt', 'inbox/real.txt', 'inbox/sub/inner.txt']);
    expect(await readFile(path.join(h.archive, 'inbox', 'link-in.txt'), 'utf8')).toBe('real content');
    await waitFor('three links counted', () => p.watcher.source.roots()[0]!.skippedLinks === 3, 5_000);
  });
});
