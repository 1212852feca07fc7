import { describe, expect, it } from 'vitest';
import { TargetError } from '../../../src/errors.js';
import { MAX_NAME_BYTES, mapDrivePath, mapRemoteRoot, queryLiteral, truncateUtf8 } from '../../../src/targets/gdrive/names.js';

function refusal(path: string, max?: number): { kind: string; code: string } {
  try {
    mapDrivePath(path, 'gd', max);
  } catch (err) {
    expect(err).toBeInstanceOf(TargetError);
    const e = err as TargetError;
    expect(e.message.startsWith('[stagecoach] [gd] ')).toBe(true);
    return { kind: e.kind, code: e.code };
  }
  throw new Error(`expected ${JSON.stringify(path)} to be refused`);
}

describe('mapDrivePath: what Drive keeps as it is', () => {
  it.each([
    ['a/b/c.txt', ['a', 'b', 'c.txt']],
    [' leading space.txt', [' leading space.txt']],
    ['trailing space.txt ', ['trailing space.txt ']],
    [' spaced folder /inner.txt', [' spaced folder ', 'inner.txt']],
    ['all ?<>"\': *|\\ of them.txt', ['all ?<>"\': *|\\ of them.txt']],
    ['Case/MiXeD.TXT', ['Case', 'MiXeD.TXT']],
    ['ctrl\u0001char', ['ctrl\u0001char']],
    ['...', ['...']],
    ['.hidden/..dots', ['.hidden', '..dots']],
    ['thumbs.db', ['thumbs.db']],
    ['CON/desktop.ini', ['CON', 'desktop.ini']],
    ['日本語/🚀.bin', ['日本語', '🚀.bin']],
  ])('%j → %j', (input, out) => {
    expect(mapDrivePath(input)).toEqual(out);
  });

  it('normalises to NFC: the NFD spelling maps to the NFC one', () => {
    const nfd = 'Cafe\u0301/Zu\u0308rich.txt';
    expect(mapDrivePath(nfd)).toEqual(['Caf\u00e9', 'Z\u00fcrich.txt']);
    expect(mapDrivePath(nfd)).toEqual(mapDrivePath(nfd.normalize('NFC')));
  });

  it('keeps names of exactly 1024 bytes (the documented limit), counted in UTF-8 bytes', () => {
    expect(MAX_NAME_BYTES).toBe(1024);
    const ascii = 'a'.repeat(1024);
    const wide = '日'.repeat(341) + 'x';
    expect(Buffer.byteLength(wide)).toBe(1024);
    expect(mapDrivePath(ascii)).toEqual([ascii]);
    expect(mapDrivePath(wide)).toEqual([wide]);
  });
});

describe('mapDrivePath: refusals name their rule and fail the item', () => {
  it.each([
    ['', 'gdrive.empty'],
    ['/abs/path', 'gdrive.absolute'],
    ['nul\0byte', 'gdrive.nul'],
    ['lone\uD800surrogate', 'gdrive.invalid-unicode'],
    ['lone\uDC00low', 'gdrive.invalid-unicode'],
    ['a//b', 'gdrive.empty-segment'],
    ['a/b/', 'gdrive.empty-segment'],
    ['a/./b', 'gdrive.dot-segment'],
    ['a/../b', 'gdrive.dot-segment'],
    ['..', 'gdrive.dot-segment'],
    ['a'.repeat(1025), 'gdrive.name-too-long'],
    [`dir/${'日'.repeat(342)}`, 'gdrive.name-too-long'],
  ])('%j → %s', (input, code) => {
    expect(refusal(input)).toEqual({ kind: 'fail-item', code });
  });

  it('takes the byte limit as a parameter', () => {
    expect(mapDrivePath('abcd', 'gd', 4)).toEqual(['abcd']);
    expect(refusal('abcde', 4)).toEqual({ kind: 'fail-item', code: 'gdrive.name-too-long' });
  });

  it('keeps a paired surrogate (an emoji) and refuses only the lone one', () => {
    expect(mapDrivePath('\uD83D\uDE80')).toEqual(['🚀']);
  });
});

describe('mapRemoteRoot', () => {
  it.each([
    ['', []],
    ['/', []],
    ['Stagecoach', ['Stagecoach']],
    ['/Archives/NAS/', ['Archives', 'NAS']],
  ])('%j → %j', (input, out) => {
    expect(mapRemoteRoot(input)).toEqual(out);
  });
});

describe('queryLiteral escapes for the q language', () => {
  it.each([
    ['plain', "'plain'"],
    ["O'Brien", "'O\\'Brien'"],
    ['back\\slash', "'back\\\\slash'"],
    ["\\'", "'\\\\\\''"],
    ['all ?<>": of them', "'all ?<>\": of them'"],
  ])('%j → %s', (input, out) => {
    expect(queryLiteral(input)).toBe(out);
  });
});

describe('truncateUtf8', () => {
  it('never splits a character', () => {
    expect(truncateUtf8('日本語', 7)).toBe('日本');
    expect(truncateUtf8('abc', 10)).toBe('abc');
  });
});
