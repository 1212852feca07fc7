import { describe, expect, it } from 'vitest';
import { createPathFilter, type FilterOptions } from '../../src/archive/filters.js';

const defaults: FilterOptions = { include: [], exclude: [], minSize: 0, maxSize: null, ignoreHidden: true, ignoreTemp: true };

describe('path filter', () => {
  const f = createPathFilter(defaults);
  it.each([
    ['photo.jpg', null],
    ['a/b/report.pdf', null],
    ['.hidden', 'hidden'],
    ['a/.git/config', 'hidden'],
    ['doc.txt.swp', 'temp'],
    ['a/doc.txt~', 'temp'],
    ['.~lock.report.odt#', 'hidden'],
    ['film.mkv.part', 'temp'],
    ['setup.exe.crdownload', 'temp'],
    ['~$report.docx', 'temp'],
    ['photos/@eaDir/x.jpg', 'temp'],
    ['#recycle/old.txt', 'temp'],
    ['Thumbs.db', 'temp'],
    ['4913', 'temp'],
    ['a/.photo.jpg.Ab12Cd', 'hidden'],
  ])('%s -> %s', (p, reason) => {
    expect(f.byPath(p)).toBe(reason);
  });

  it('finds rsync temp names even when hidden files are wanted', () => {
    const g = createPathFilter({ ...defaults, ignoreHidden: false });
    expect(g.byPath('a/.photo.jpg.Ab12Cd')).toBe('temp');
    expect(g.byPath('.profile')).toBe(null);
  });

  it('applies include, exclude and sizes', () => {
    const g = createPathFilter({ ...defaults, include: ['**/*.jpg', '*.jpg'], exclude: ['cache/**'], minSize: 10, maxSize: 100 });
    expect(g.check('a.jpg', 50)).toBe(null);
    expect(g.check('a.png', 50)).toBe('not-included');
    expect(g.check('cache/a.jpg', 50)).toBe('excluded');
    expect(g.check('a.jpg', 5)).toBe('too-small');
    expect(g.check('a.jpg', 101)).toBe('too-large');
    expect(g.skipsDir('cache')).toBe(true);
    expect(g.skipsDir('photos')).toBe(false);
    expect(g.skipsDir('.git')).toBe(true);
  });

  it('keeps temp names when ignoreTemp is off', () => {
    expect(createPathFilter({ ...defaults, ignoreTemp: false }).byPath('x.tmp')).toBe(null);
  });
});
