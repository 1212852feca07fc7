import { describe, expect, it } from 'vitest';
import { collisionName, renderRemotePath, validateTemplate } from '../../src/archive/remote-path.js';

const mtimeMs = new Date(2026, 2, 7, 12, 0, 0).getTime(); // local time, 7 March 2026

describe('renderRemotePath', () => {
  it.each([
    ['{root}/{path}', 'a/b/c.txt', 'inbox/a/b/c.txt'],
    ['{path}', 'c.txt', 'c.txt'],
    ['{root}/{yyyy}/{mm}/{dd}/{name}', 'a/b/c.txt', 'inbox/2026/03/07/c.txt'],
    ['{host}/{root}/{dir}/{name}', 'a/c.tar.gz', 'nas/inbox/a/c.tar.gz'],
    ['{root}/{ext}/{name}', 'a/c.tar.gz', 'inbox/gz/c.tar.gz'],
    ['{root}/{dir}/{name}', 'top.txt', 'inbox/top.txt'],
    ['/photos//{path}/', 'x.jpg', 'photos/x.jpg'],
  ])('%s with %s -> %s', (template, relPath, expected) => {
    expect(renderRemotePath(template, { root: 'inbox', relPath, mtimeMs, host: 'nas' })).toBe(expected);
  });

  it.each([['..'], ['.'], ['a\u0000b'], ['a\\b']])('refuses a path that could leave the root: %j', (name) => {
    expect(() => renderRemotePath('{root}/{path}', { root: 'inbox', relPath: `x/${name}`, mtimeMs, host: 'h' })).toThrow(/unsafe/);
  });

  it('refuses a root or host token that climbs out', () => {
    expect(() => renderRemotePath('{host}/{path}', { root: 'r', relPath: 'f', mtimeMs, host: '..' })).toThrow(/unsafe/);
  });
});

describe('validateTemplate', () => {
  it('rejects unknown tokens and templates without the file name', () => {
    expect(() => validateTemplate('{root}/{file}')).toThrow(/unknown token \{file\}/);
    expect(() => validateTemplate('{root}/{yyyy}')).toThrow(/must contain/);
    expect(() => validateTemplate('../{path}')).toThrow(/unsafe/);
    expect(() => validateTemplate('{root}/{path}')).not.toThrow();
  });
});

describe('collisionName', () => {
  it('puts a stable 6-hex suffix of the owner before the extension of the last segment', () => {
    const a = collisionName('inbox/x/Report.final.pdf', 'inbox/y/Report.final.pdf');
    expect(a).toMatch(/^inbox\/x\/Report\.final~[0-9a-f]{6}\.pdf$/);
    expect(collisionName('inbox/x/Report.final.pdf', 'inbox/y/Report.final.pdf')).toBe(a);
    expect(collisionName('inbox/x/Report.final.pdf', 'inbox/z/Report.final.pdf')).not.toBe(a);
    expect(collisionName('.bashrc', 'r/.bashrc')).toMatch(/^\.bashrc~[0-9a-f]{6}$/);
    expect(collisionName('d.v/README', 'r/README')).toMatch(/^d\.v\/README~[0-9a-f]{6}$/);
    expect(collisionName('a.txt', 'o', 2)).toMatch(/^a~[0-9a-f]{6}-2\.txt$/);
  });
});
