import { describe, expect, test } from 'vitest';
import { TargetError } from '../../../src/errors.js';
import { MAX_NAME_CHARS, boxNameLength, mapBoxName, mapBoxPath, nameKey } from '../../../src/targets/box/names.js';
import { nameError } from '../../emulators/box/model.js';

describe('mapBoxName', () => {
  test.each([
    ['plain.txt', 'plain.txt'],
    ['back\\slash.txt', 'back\uFF3Cslash.txt'],
    ['tab\there.txt', 'tab\u2409here.txt'],
    ['nul\u0000byte', 'nul\u2400byte'],
    ['unit\u001fsep', 'unit\u241fsep'],
    ['del\u007fete', 'del\u2421ete'],
    ['trailing space.txt ', 'trailing space.txt\u2420'],
    ['two trailing  ', 'two trailing \u2420'],
    [' leading space.txt', ' leading space.txt'],
    ['.', '\uFF0E'],
    ['..', '\uFF0E\uFF0E'],
    ['...', '...'],
    ['.hidden', '.hidden'],
    ['all ?<>"\': of them.txt', 'all ?<>"\': of them.txt'],
    ['Cafe\u0301', 'Caf\u00e9'],
    ['Ünïcödé 日本語 🚀.bin', 'Ünïcödé 日本語 🚀.bin'],
  ])('%j → %j', (input, stored) => {
    const out = mapBoxName(input);
    expect(out).toBe(stored);
    // Whatever the mapping gives, Box (the emulator's rules) accepts it.
    expect(nameError(out)).toBeNull();
    expect(boxNameLength(out)).toBe(boxNameLength(input.normalize('NFC')));
  });

  test('the unmapped names that need it are refused by Box (the emulator agrees with the table)', () => {
    for (const bad of ['back\\slash', 'tab\there', 'trailing ', '.', '..', 'del\u007f']) expect(nameError(bad)).not.toBeNull();
  });
});

describe('mapBoxPath', () => {
  test('maps every segment, NFC', () => {
    expect(mapBoxPath(' spaced folder /inner file.txt')).toEqual([' spaced folder\u2420', 'inner file.txt']);
    expect(mapBoxPath('a\\b/Cafe\u0301.txt')).toEqual(['a\uFF3Cb', 'Caf\u00e9.txt']);
  });

  test.each([
    ['', 'empty'],
    ['/abs/x', 'absolute'],
    ['a//b', 'empty-segment'],
    ['a/b/', 'empty-segment'],
    ['a/../b', 'dot-segment'],
    ['./b', 'dot-segment'],
    [`dir/${'a'.repeat(MAX_NAME_CHARS + 1)}`, 'name-too-long'],
    [`${'日'.repeat(MAX_NAME_CHARS + 1)}/x`, 'name-too-long'],
  ])('%j fails the item: %s', (path, rule) => {
    let err: unknown;
    try {
      mapBoxPath(path, 'box1');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TargetError);
    const te = err as TargetError;
    expect(te.kind).toBe('fail-item');
    expect(te.code).toBe(`box.${rule}`);
    expect(te.message).toMatch(new RegExp(`^\\[stagecoach\\] \\[box1\\] ${rule}: `));
  });

  test('255 characters are allowed whatever their bytes; Box counts code points', () => {
    expect(mapBoxPath('a'.repeat(MAX_NAME_CHARS))).toHaveLength(1);
    expect(mapBoxPath('日'.repeat(MAX_NAME_CHARS))).toHaveLength(1);
    expect(mapBoxPath('🚀'.repeat(MAX_NAME_CHARS))).toHaveLength(1);
    // A mapped trailing space stays one character.
    expect(mapBoxPath(`${'a'.repeat(MAX_NAME_CHARS - 1)} `)[0]).toBe(`${'a'.repeat(MAX_NAME_CHARS - 1)}\u2420`);
  });
});

describe('nameKey', () => {
  test('case-insensitive and NFC, as Box compares siblings', () => {
    expect(nameKey('Mixed.TXT')).toBe(nameKey('mIXED.txt'));
    expect(nameKey('Cafe\u0301')).toBe(nameKey('CAF\u00c9'));
    expect(nameKey('a.txt')).not.toBe(nameKey('b.txt'));
  });
});
