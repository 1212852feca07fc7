/** names.ts: OneDrive's name rules as a table, mapped or refused with the rule named. */
import { describe, expect, it } from 'vitest';
import { TargetError } from '../../../src/errors.js';
import {
  MAX_NAME_CHARS,
  MAX_PATH_CHARS,
  encodePath,
  mapOneDriveName,
  mapOneDrivePath,
  mapRemoteRoot,
  nameKey,
} from '../../../src/targets/onedrive/names.js';
import { checkName } from '../../emulators/onedrive/model.js';

const MAPPED: Array<[string, string, string]> = [
  ['plain', 'report.pdf', 'report.pdf'],
  ['colon', 'a:b.txt', 'a\uFF1Ab.txt'],
  ['question mark', 'why?.txt', 'why\uFF1F.txt'],
  ['double quote', 'say "hi".txt', 'say \uFF02hi\uFF02.txt'],
  ['asterisk', 'a*b', 'a\uFF0Ab'],
  ['less / greater', '<tag>', '\uFF1Ctag\uFF1E'],
  ['back slash', 'a\\b', 'a\uFF3Cb'],
  ['pipe', 'a|b', 'a\uFF5Cb'],
  ['all forbidden at once', '"*:<>?\\|', '\uFF02\uFF0A\uFF1A\uFF1C\uFF1E\uFF1F\uFF3C\uFF5C'],
  ['leading space', ' lead.txt', '\u2420lead.txt'],
  ['trailing space', 'trail.txt ', 'trail.txt\u2420'],
  ['spaces both ends', ' both ', '\u2420both\u2420'],
  ['two leading spaces: only the edge one', '  two', '\u2420 two'],
  ['a single space', ' ', '\u2420'],
  ['leading no-break space', '\u00A0nb', '\u2420nb'],
  ['trailing ideographic space', 'x\u3000', 'x\u2420'],
  ['tab (control character)', 'a\tb', 'a\u2409b'],
  ['NUL and US', '\u0000x\u001F', '\u2400x\u241F'],
  ['DEL', 'a\u007Fb', 'a\u2421b'],
  ['newline at the end', 'x\n', 'x\u240A'],
  ['~$ office lock name', '~$report.docx', '\uFF5E$report.docx'],
  ['a leading ~ alone is fine', '~backup', '~backup'],
  ['$ first is fine', '$money', '$money'],
  ['trailing period', 'etc.', 'etc\uFF0E'],
  ['inner periods kept', 'a.b.c', 'a.b.c'],
  ['unicode kept', 'Ünïcödé 日本語 🚀.bin', 'Ünïcödé 日本語 🚀.bin'],
  ['quote, hash, percent, ampersand kept', "it's #1 100% & more", "it's #1 100% & more"],
  ['CON with an extension is allowed', 'CON.txt', 'CON.txt'],
];

describe('mapOneDriveName', () => {
  it.each(MAPPED)('%s: %j → %j', (_what, input, expected) => {
    expect(mapOneDriveName(input)).toBe(expected);
  });

  it.each(MAPPED)('%s: the emulator (OneDrive rules) accepts the mapped name, file and folder', (_what, input) => {
    const mapped = mapOneDriveName(input);
    expect(checkName(mapped, false)).toBeNull();
    expect(checkName(mapped, true)).toBeNull();
  });

  it('is idempotent', () => {
    for (const [, input] of MAPPED) expect(mapOneDriveName(mapOneDriveName(input))).toBe(mapOneDriveName(input));
  });
});

function refusal(fn: () => unknown): TargetError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TargetError);
    return err as TargetError;
  }
  throw new Error('expected a refusal');
}

const REFUSED: Array<[string, string, string]> = [
  ['empty path', '', 'empty'],
  ['absolute path', '/a/b', 'absolute'],
  ['empty segment', 'a//b', 'empty-segment'],
  ['trailing slash', 'a/b/', 'empty-segment'],
  ['dot segment', 'a/./b', 'dot-segment'],
  ['dot-dot segment', 'a/../b', 'dot-segment'],
  ['CON', 'dir/CON', 'reserved-name'],
  ['con (any case)', 'dir/con', 'reserved-name'],
  ['PRN', 'PRN', 'reserved-name'],
  ['AUX', 'AUX', 'reserved-name'],
  ['NUL', 'NUL', 'reserved-name'],
  ['COM0', 'COM0', 'reserved-name'],
  ['com9', 'com9', 'reserved-name'],
  ['LPT0', 'LPT0', 'reserved-name'],
  ['LPT9', 'LPT9', 'reserved-name'],
  ['.lock', '.lock', 'reserved-name'],
  ['desktop.ini', 'photos/Desktop.ini', 'reserved-name'],
  ['a reserved folder name', 'CON/file.txt', 'reserved-name'],
  ['_vti_ anywhere', 'site/my_vti_file.txt', 'reserved-vti'],
  ['_vti_ (any case)', '_VTI_cnf', 'reserved-vti'],
  ['a name of 256 characters', `d/${'a'.repeat(252)}.bin`, 'name-too-long'],
];

describe('mapOneDrivePath refusals (fail-item, the rule named)', () => {
  it.each(REFUSED)('%s: %j → %s', (_what, input, rule) => {
    const err = refusal(() => mapOneDrivePath(input, 'od'));
    expect(err.kind).toBe('fail-item');
    expect(err.code).toBe(`onedrive.${rule}`);
    expect(err.message).toMatch(new RegExp(`^\\[stagecoach\\] \\[od\\] ${rule}: `));
  });

  it('refuses what the emulator (OneDrive rules) refuses as a reserved name', () => {
    for (const [, input, rule] of REFUSED) {
      if (!rule.startsWith('reserved')) continue;
      const last = input.split('/').find((seg) => checkName(seg, false) !== null);
      expect(last, `the emulator refuses a segment of ${input}`).toBeDefined();
    }
  });
});

describe('mapOneDrivePath', () => {
  it('maps every segment, NFC first', () => {
    const nfd = 'Cafe\u0301/Zu\u0308rich?.txt';
    expect(mapOneDrivePath(nfd)).toEqual(['Caf\u00E9', 'Z\u00FCrich\uFF1F.txt']);
    expect(mapOneDrivePath(nfd)).toEqual(mapOneDrivePath(nfd.normalize('NFC')));
  });

  it('maps folder segments too (a trailing space or period in a folder)', () => {
    expect(mapOneDrivePath(' spaced folder /inner file.txt')).toEqual(['\u2420spaced folder\u2420', 'inner file.txt']);
    expect(mapOneDrivePath('v1./x')).toEqual(['v1\uFF0E', 'x']);
  });

  it(`a name of exactly ${MAX_NAME_CHARS} characters is kept (ASCII and CJK)`, () => {
    const ascii = `${'a'.repeat(MAX_NAME_CHARS - 4)}.bin`;
    expect(mapOneDrivePath(`d/${ascii}`)).toEqual(['d', ascii]);
    const wide = '日'.repeat(MAX_NAME_CHARS);
    expect(mapOneDrivePath(wide)).toEqual([wide]);
  });

  it(`the whole path from the drive root must be under ${MAX_PATH_CHARS} characters, the remote root included`, () => {
    // `/` + 2 names of 199 + `/` = 400 characters: one too many.
    const a = 'a'.repeat(199);
    expect(mapOneDrivePath(`${a}/${'b'.repeat(198)}`)).toHaveLength(2);
    const err = refusal(() => mapOneDrivePath(`${a}/${'b'.repeat(199)}`, 'od'));
    expect(err.code).toBe('onedrive.path-too-long');
    expect(err.kind).toBe('fail-item');
    // The same relative path fits alone but not under a remote root.
    const rel = `${'c'.repeat(200)}/${'d'.repeat(190)}`;
    expect(mapOneDrivePath(rel)).toHaveLength(2);
    expect(refusal(() => mapOneDrivePath(rel, 'od', ['Stagecoach'])).code).toBe('onedrive.path-too-long');
  });
});

describe('mapRemoteRoot, nameKey, encodePath', () => {
  it('maps the remote root like a path; empty and slashes only are the drive root', () => {
    expect(mapRemoteRoot('')).toEqual([]);
    expect(mapRemoteRoot('/')).toEqual([]);
    expect(mapRemoteRoot('/Backups/NAS: main/')).toEqual(['Backups', 'NAS\uFF1A main']);
    expect(refusal(() => mapRemoteRoot('Backups/CON', 'od')).code).toBe('onedrive.reserved-name');
  });

  it('nameKey folds case (OneDrive is case-insensitive)', () => {
    expect(nameKey('Mixed.TXT')).toBe(nameKey('mixed.txt'));
    expect(nameKey('ÄÖÜ')).toBe(nameKey('äöü'));
  });

  it('encodePath percent-encodes each name on its own', () => {
    expect(encodePath(['a b', "it's #1 100%", 'ü?'])).toBe("a%20b/it's%20%231%20100%25/%C3%BC%3F");
  });
});
