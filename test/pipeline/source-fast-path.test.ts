/**
 * Issue 19, item 1: once a root's real path is known, a source is opened without resolving the
 * root and its folder again (two realpath(3) calls, ~10 system calls per file), and kept only
 * when /proc says the descriptor's own path is the file's place under that real path. These
 * tests deliver a first file (the root's real path is then known) and change the path after:
 * the fast path must hand every doubt to the full check, which decides as before.
 */
import { linkSync, mkdirSync, renameSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { deliver } from '../../src/pipeline/deliver.js';
import { openSqliteStore } from '../../src/state/index.js';
import type { Store } from '../../src/state/store.js';
import { tempDir } from '../helpers/fs.js';
import { createScriptedTarget } from './scripted-target.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup() {
  const t = await tempDir();
  const store = await openSqliteStore({ dir: path.join(t.dir, 'state') });
  cleanups.push(async () => {
    await store.close();
    await t.cleanup();
  });
  const cloud = createScriptedTarget('cloud');
  const ctx = { target: cloud, store, retry: { retries: 0, minDelayMs: 1, maxDelayMs: 1 }, log: pino({ level: 'silent' }), signal: new AbortController().signal };
  return { dir: t.dir, store, cloud, ctx };
}

/** Journals `rels` under `rootPath` as they are now, one delivery each to `cloud`. */
async function journal(store: Store, rootPath: string, rels: string[]): Promise<void> {
  const items = rels.map((relPath) => {
    const st = statSync(path.join(rootPath, relPath));
    return { root: 'r', rootPath, relPath, size: st.size, mtimeMs: Math.floor(st.mtimeMs), ino: st.ino, dev: st.dev };
  });
  await store.recordItems(items.map((item) => ({ item, remotePath: item.relPath })), ['cloud']);
}

describe('deliver: the source fast path once the root\'s real path is known (issue 19)', () => {
  it('a folder swapped for a link to a folder outside the root holding the very file (a hard link): skipped as a link, nothing sent', async () => {
    const { dir, store, cloud, ctx } = await setup();
    const root = path.join(dir, 'root');
    mkdirSync(path.join(root, 'sub'), { recursive: true });
    writeFileSync(path.join(root, 'sub', 'a.txt'), 'first');
    writeFileSync(path.join(root, 'sub', 'b.txt'), 'second');
    await journal(store, root, ['sub/a.txt', 'sub/b.txt']);
    const [a, b] = await store.lease('cloud', 2);
    expect(await deliver(a!, ctx)).toBe('done');
    // Outside the root, the same inode (device, inode, size and mtime all match the journal's):
    // only the path check can tell that it is reached through a link now.
    const outside = path.join(dir, 'outside');
    mkdirSync(outside);
    renameSync(path.join(root, 'sub'), path.join(dir, 'moved'));
    linkSync(path.join(dir, 'moved', 'b.txt'), path.join(outside, 'b.txt'));
    symlinkSync(outside, path.join(root, 'sub'));
    expect(await deliver(b!, ctx)).toBe('skipped');
    const [skipped] = await store.recent({ status: 'skipped', target: 'cloud', limit: 1 });
    expect(skipped!.lastError).toMatch(/symbolic link/);
    expect(cloud.memory.readBack('sub/b.txt')).toBeNull();
  });

  it('a root that is a link, re-pointed to another folder holding the same files: the root is resolved again and the file delivered', async () => {
    const { dir, store, cloud, ctx } = await setup();
    const first = path.join(dir, 'first');
    const second = path.join(dir, 'second');
    mkdirSync(first);
    mkdirSync(second);
    writeFileSync(path.join(first, 'a.txt'), 'first');
    writeFileSync(path.join(first, 'b.txt'), 'second');
    // The same inodes in both folders: the journal's stat holds wherever the root points.
    linkSync(path.join(first, 'a.txt'), path.join(second, 'a.txt'));
    linkSync(path.join(first, 'b.txt'), path.join(second, 'b.txt'));
    const root = path.join(dir, 'root');
    symlinkSync(first, root);
    await journal(store, root, ['a.txt', 'b.txt']);
    const [a, b] = await store.lease('cloud', 2);
    expect(await deliver(a!, ctx)).toBe('done');
    unlinkSync(root);
    symlinkSync(second, root);
    expect(await deliver(b!, ctx)).toBe('done');
    expect(cloud.memory.readBack('b.txt')?.toString()).toBe('second');
  });
});
