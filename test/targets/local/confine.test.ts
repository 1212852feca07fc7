/**
 * Issue 13, item 3: the local target writes only inside its root — no symlink below it is
 * followed — and copies keep the source's permission bits, in folders no wider than the source's.
 */
import { mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import { TargetError } from '../../../src/errors.js';
import { createLocalTarget } from '../../../src/targets/local/index.js';
import type { Target } from '../../../src/targets/target.js';
import { request } from '../../conformance/sources.js';
import { listFiles, tempDir } from '../../helpers/fs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(opts: { preserveOwner?: boolean } = {}) {
  const t = await tempDir();
  cleanups.push(t.cleanup);
  const root = path.join(t.dir, 'archive');
  const outside = path.join(t.dir, 'outside');
  await mkdir(root);
  await mkdir(outside);
  const target: Target = createLocalTarget({ id: 'local', path: root, ...opts }, { log: pino({ level: 'silent' }), stateDir: t.dir });
  cleanups.push(() => target.close());
  return { dir: t.dir, root, outside, target };
}

async function rejection(p: Promise<unknown>): Promise<TargetError> {
  try {
    await p;
  } catch (e) {
    return e as TargetError;
  }
  throw new Error('expected a rejection');
}

const source = (mode: number, dirMode: number) => ({ mode, uid: 0, gid: 0, dirMode });

describe('local target: no link below the root is followed', () => {
  test('a folder of the archive tree swapped for a link out: the put fails with a reason, nothing written outside', async () => {
    const s = await setup();
    await symlink(s.outside, path.join(s.root, 'inbox'));
    const err = await rejection(s.target.put(request('inbox/a.txt', Buffer.from('secret copy'))));
    expect(err).toBeInstanceOf(TargetError);
    expect(err.message).toMatch(/symbolic link/);
    expect(s.target.classify(err).kind).toBe('fail-item');
    expect(await readdir(s.outside)).toEqual([]);
  });

  test('a link deeper in the tree, planted after the folder was used: still refused, nothing written outside', async () => {
    const s = await setup();
    await s.target.put(request('inbox/sub/a.txt', Buffer.from('first')));
    const sub = path.join(s.root, 'inbox', 'sub');
    await import('node:fs/promises').then((fs) => fs.rm(sub, { recursive: true }));
    await symlink(s.outside, sub);
    const err = await rejection(s.target.put(request('inbox/sub/b.txt', Buffer.from('second'))));
    expect(err.message).toMatch(/symbolic link/);
    expect(await readdir(s.outside)).toEqual([]);
  });

  test('a link at the file\'s own name: refused, its target untouched', async () => {
    const s = await setup();
    const victim = path.join(s.outside, 'victim.txt');
    await writeFile(victim, 'keep me');
    await mkdir(path.join(s.root, 'inbox'));
    await symlink(victim, path.join(s.root, 'inbox', 'a.txt'));
    const err = await rejection(s.target.put(request('inbox/a.txt', Buffer.from('overwrite!'))));
    expect(err.message).toMatch(/symbolic link/);
    expect(await import('node:fs/promises').then((fs) => fs.readFile(victim, 'utf8'))).toBe('keep me');
  });
});

describe('local target: a root reached through a link', () => {
  test('the archive folder named by a link (its real path elsewhere): small and large puts land, in the real folder', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const real = path.join(t.dir, 'real-archive');
    await mkdir(real);
    const viaLink = path.join(t.dir, 'archive-link');
    await symlink(real, viaLink);
    const target: Target = createLocalTarget({ id: 'local', path: viaLink }, { log: pino({ level: 'silent' }), stateDir: t.dir });
    cleanups.push(() => target.close());
    await target.put(request('inbox/a.txt', Buffer.from('small copy')));
    await target.put(request('inbox/big.bin', Buffer.alloc(200 * 1024, 7)));
    expect((await listFiles(real)).sort()).toEqual(['inbox/a.txt', 'inbox/big.bin']);
  });
});

describe('local target: permissions', () => {
  test('a 0600 file in a 0700 folder is archived 0600 in 0700 folders, even under umask 000', async () => {
    const s = await setup();
    const old = process.umask(0);
    try {
      await s.target.put({ ...request('inbox/private/a.txt', Buffer.from('mine')), source: source(0o600, 0o700) });
    } finally {
      process.umask(old);
    }
    expect((await stat(path.join(s.root, 'inbox', 'private', 'a.txt'))).mode & 0o7777).toBe(0o600);
    expect((await stat(path.join(s.root, 'inbox', 'private'))).mode & 0o7777).toBe(0o700);
    expect((await stat(path.join(s.root, 'inbox'))).mode & 0o7777).toBe(0o700);
  });

  test('a 0644 file in a 0755 folder keeps 0644, folders as wide as the source folder; set-id bits are dropped', async () => {
    const s = await setup();
    await s.target.put({ ...request('pub/a.txt', Buffer.from('shared')), source: source(0o644, 0o755) });
    await s.target.put({ ...request('pub/tool', Buffer.from('#!/bin/sh\n')), source: source(0o4755, 0o755) });
    expect((await stat(path.join(s.root, 'pub', 'a.txt'))).mode & 0o7777).toBe(0o644);
    expect((await stat(path.join(s.root, 'pub', 'tool'))).mode & 0o7777).toBe(0o755);
    expect((await stat(path.join(s.root, 'pub'))).mode & 0o7777).toBe(0o755);
  });

  test('a put without source information is stored 0600', async () => {
    const s = await setup();
    await s.target.put(request('x.txt', Buffer.from('x')));
    expect((await stat(path.join(s.root, 'x.txt'))).mode & 0o7777).toBe(0o600);
  });

  test.skipIf(process.getuid?.() !== 0)('preserveOwner, as root: the copy gets the source\'s owner and group; without it, the daemon\'s', async () => {
    const s = await setup({ preserveOwner: true });
    await s.target.put({ ...request('o.txt', Buffer.from('o')), source: { mode: 0o640, uid: 1234, gid: 2345, dirMode: 0o700 } });
    const st = await stat(path.join(s.root, 'o.txt'));
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([1234, 2345, 0o640]);
    const plain = await setup();
    await plain.target.put({ ...request('o.txt', Buffer.from('o')), source: { mode: 0o640, uid: 1234, gid: 2345, dirMode: 0o700 } });
    expect((await stat(path.join(plain.root, 'o.txt'))).uid).toBe(0);
  });

  test('puts of one name at once use temp names of their own: every one succeeds, one whole copy stays, no temp left', async () => {
    const s = await setup();
    const bodies = Array.from({ length: 6 }, (_, i) => Buffer.alloc(300_000, i + 1));
    const results = await Promise.allSettled(bodies.map((b) => s.target.put(request('d/same.bin', b))));
    expect(results.map((r) => r.status)).toEqual(bodies.map(() => 'fulfilled'));
    expect(await listFiles(s.root)).toEqual(['d/same.bin']);
    const stored = await import('node:fs/promises').then((fs) => fs.readFile(path.join(s.root, 'd', 'same.bin')));
    expect(bodies.some((b) => b.equals(stored))).toBe(true);
  });

  test('temp files another process left (a put cut by SIGKILL) go at the first put into their folder', async () => {
    const s = await setup();
    await mkdir(path.join(s.root, 'd'));
    const leftovers = ['.a.txt.stagecoach-00000001aabbccddeeff.tmp', '.a.txt.stagecoach-0000.tmp'];
    for (const n of leftovers) await writeFile(path.join(s.root, 'd', n), 'part');
    await s.target.put(request('d/b.txt', Buffer.from('b')));
    expect(await listFiles(s.root)).toEqual(['d/b.txt']);
  });
});
