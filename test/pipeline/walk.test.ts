import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPathFilter, type FilterOptions } from '../../src/archive/filters.js';
import { escapeName, isUtf8Name } from '../../src/archive/raw-name.js';
import { walkTree } from '../../src/pipeline/walk.js';
import { tempDir } from '../helpers/fs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Every path under `root` (files, folders, links, others) by a plain recursive lstat walk. */
function everything(root: string, rel = ''): Array<{ rel: string; kind: 'file' | 'dir' | 'link' | 'other' }> {
  const out: Array<{ rel: string; kind: 'file' | 'dir' | 'link' | 'other' }> = [];
  const abs = rel ? Buffer.concat([Buffer.from(`${root}/`), Buffer.from(rel, 'latin1')]) : root;
  for (const b of readdirSync(abs, { encoding: 'buffer' })) {
    const childBytes = rel ? Buffer.concat([Buffer.from(rel, 'latin1'), Buffer.from('/'), b]) : b;
    const child = childBytes.toString('latin1');
    const s = lstatSync(Buffer.concat([Buffer.from(`${root}/`), childBytes]));
    const kind = s.isDirectory() ? 'dir' : s.isFile() ? 'file' : s.isSymbolicLink() ? 'link' : 'other';
    out.push({ rel: child, kind });
    if (kind === 'dir') out.push(...everything(root, child));
  }
  return out;
}

/** A latin1-carried byte path as the walk names it (each segment escaped when not UTF-8). */
const shown = (latin1: string) =>
  latin1
    .split('/')
    .map((seg) => {
      const b = Buffer.from(seg, 'latin1');
      return isUtf8Name(b) ? b.toString('utf8') : escapeName(b);
    })
    .join('/');

describe('walkTree', () => {
  // The filter is asked of each name as the walk descends (byChild / skipsChildDir); what it
  // keeps must be what the whole-path filter (byPath / skipsDir) keeps of the same tree.
  it.each<[string, Partial<FilterOptions>]>([
    ['defaults', {}],
    ['exclude and include globs', { exclude: ['skip/**', '**/*.log'], include: ['**/*.txt', '**/*.jpg', '*.txt'] }],
    ['hidden and temp names kept', { ignoreHidden: false, ignoreTemp: false }],
  ])('reports the files and links the whole-path filter keeps, and no other (%s)', async (_label, opts) => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const root = t.dir;
    for (const d of ['a/b/c', '.git/objects', 'a/.cache/x', 'skip/deep', 'a/tmp.tmp/in', 'caf\u00e9/sub', '@eaDir/x']) await mkdir(path.join(root, d), { recursive: true });
    for (const f of [
      'top.txt',
      'a/one.jpg',
      'a/b/two.txt',
      'a/b/c/three.txt',
      'a/b/c/notes.log',
      '.git/objects/blob.txt',
      'a/.cache/x/cached.txt',
      'a/.hidden.txt',
      'skip/deep/kept-out.txt',
      'skip/top.txt',
      'a/tmp.tmp/in/inside.txt',
      'a/b/draft.txt.swp',
      'a/b/~$report.txt',
      'caf\u00e9/sub/menu.txt',
      '@eaDir/x/thumb.jpg',
      // Valid UTF-8 that holds U+FFFD, what a name that is not UTF-8 becomes when read as a string.
      'a/b/odd\ufffd.txt',
    ]) {
      await writeFile(path.join(root, f), f);
    }
    await symlink('one.jpg', path.join(root, 'a/link.jpg'));
    await symlink('b', path.join(root, 'a/dirlink'));
    // A name that is not valid UTF-8 (Latin-1 é), in a folder so named too.
    const latin = Buffer.from('lat\xe9', 'latin1');
    await mkdir(Buffer.concat([Buffer.from(`${root}/a/`), latin]));
    await writeFile(Buffer.concat([Buffer.from(`${root}/a/`), latin, Buffer.from('/'), latin, Buffer.from('.txt')]), 'x');
    execFileSync('mkfifo', [path.join(root, 'a/b/pipe.txt')]);

    const filter = createPathFilter({ include: [], exclude: [], minSize: 0, maxSize: null, ignoreHidden: true, ignoreTemp: true, ...opts });
    const files: Array<{ relPath: string; raw: string | undefined; size: number }> = [];
    const links: string[] = [];
    const dirs: string[] = [];
    await walkTree(
      root,
      filter,
      (relPath, stats, raw) => files.push({ relPath, raw: raw?.toString('latin1'), size: stats.size }),
      (rel, e) => {
        throw new Error(`${rel}: ${e.message}`);
      },
      { onLink: ({ relPath }) => links.push(relPath), onDir: (rel) => dirs.push(rel) },
    );

    // What the whole-path filter keeps: a file or link under no skipped folder, kept by byPath.
    const all = everything(root).map((e) => ({ ...e, shown: shown(e.rel) }));
    const underKept = (rel: string) => {
      const segs = rel.split('/');
      for (let i = 1; i < segs.length; i++) if (filter.skipsDir(segs.slice(0, i).join('/'))) return false;
      return true;
    };
    const want = (kind: string) =>
      all
        .filter((e) => e.kind === kind && underKept(e.shown) && (kind === 'dir' ? !filter.skipsDir(e.shown) : filter.byPath(e.shown) === null))
        .map((e) => e.shown)
        .sort();
    expect(files.map((f) => f.relPath).sort()).toEqual(want('file'));
    expect(links.sort()).toEqual(want('link'));
    expect(dirs.sort()).toEqual(want('dir'));
    // The walk found something to compare (the tree is not filtered away whole).
    expect(files.length).toBeGreaterThan(0);
    // Each file with its own lstat (every file here holds its path, the Latin-1 one 'x').
    for (const f of files) expect(f.size).toBe(f.raw ? 1 : Buffer.byteLength(f.relPath));
    const latinFile = files.find((f) => f.relPath === 'a/lat%E9/lat%E9.txt');
    if (opts.include === undefined) expect(latinFile?.raw).toBe('a/lat\xe9/lat\xe9.txt');
  });

  it('walks nothing from a folder the filter skips as a whole', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    await mkdir(path.join(t.dir, 'a/.hidden/b'), { recursive: true });
    await writeFile(path.join(t.dir, 'a/.hidden/b/f.txt'), 'x');
    await writeFile(path.join(t.dir, 'a/.hidden/g.txt'), 'x');
    const filter = createPathFilter({ include: [], exclude: [], minSize: 0, maxSize: null, ignoreHidden: true, ignoreTemp: true });
    const found: string[] = [];
    await walkTree(t.dir, filter, (rel) => found.push(rel), undefined, { from: 'a/.hidden/b' });
    expect(found).toEqual([]);
    await walkTree(t.dir, filter, (rel) => found.push(rel), undefined, { from: 'a' });
    expect(found).toEqual([]);
  });
});
