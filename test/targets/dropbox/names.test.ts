import { describe, expect, it } from 'vitest';
import { TargetError } from '../../../src/errors.js';
import { DISALLOWED_NAMES, MAX_NAME_CHARS, dropboxPath, mapDropboxName, mapDropboxPath } from '../../../src/targets/dropbox/names.js';
import { HOSTILE_NAMES } from '../../conformance/target-suite.js';
import { nameProblem } from '../../emulators/dropbox/model.js';

function refusal(fn: () => unknown): TargetError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TargetError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('mapDropboxName: what Dropbox refuses is mapped or refused, naming the rule', () => {
  const mapped: Array<[string, string, string]> = [
    ['plain name', 'report.pdf', 'report.pdf'],
    ['backslash → fullwidth reverse solidus', 'a\\b.txt', 'a\uFF3Cb.txt'],
    ['DEL → symbol for delete', 'x\u007Fy', 'x\u2421y'],
    ['trailing space → symbol for space', 'name.txt ', 'name.txt\u2420'],
    ['several trailing spaces', 'dir  ', 'dir\u2420\u2420'],
    ['trailing tab and CR → control pictures', 'a\t\r', 'a\u2409\u240D'],
    ['leading spaces are kept', '  lead', '  lead'],
    ['trailing dots are kept', 'dots...', 'dots...'],
    ['characters other clouds refuse are kept', 'all ?<>"\': *| of them.txt', 'all ?<>"\': *| of them.txt'],
    ['an inner control character is kept', 'a\rb', 'a\rb'],
    ['a name of exactly 255 UTF-16 units', 'a'.repeat(MAX_NAME_CHARS), 'a'.repeat(MAX_NAME_CHARS)],
    ['Icon with another tail is fine', 'Icon\r2', 'Icon\r2'],
  ];
  it.each(mapped)('%s', (_what, input, output) => {
    expect(mapDropboxName(input)).toBe(output);
  });

  const refused: Array<[string, string, string]> = [
    ['empty', '', 'empty-segment'],
    ['dot', '.', 'dot-segment'],
    ['dot dot', '..', 'dot-segment'],
    ['NUL', 'a\0b', 'nul'],
    ['an unpaired surrogate', 'a\uD800b', 'invalid-unicode'],
    ['trailing no-break space', 'name\u00A0', 'trailing-whitespace'],
    ['trailing ideographic space', 'name\u3000', 'trailing-whitespace'],
    ['256 UTF-16 units', 'a'.repeat(MAX_NAME_CHARS + 1), 'name-too-long'],
    ['255 astral characters (510 UTF-16 units)', '😀'.repeat(255), 'name-too-long'],
    ['thumbs.db', 'thumbs.db', 'disallowed-name'],
    ['Thumbs.db in another case', 'Thumbs.DB', 'disallowed-name'],
    ['desktop.ini', 'Desktop.ini', 'disallowed-name'],
    ['.DS_Store', '.DS_Store', 'disallowed-name'],
    ['Icon\\r (before its trailing CR could be mapped)', 'Icon\r', 'disallowed-name'],
    ['.dropbox', '.dropbox', 'disallowed-name'],
    ['.dropbox.attr', '.Dropbox.Attr', 'disallowed-name'],
  ];
  it.each(refused)('refuses %s', (_what, input, rule) => {
    const err = refusal(() => mapDropboxName(input, 'dbx'));
    expect(err.kind).toBe('fail-item');
    expect(err.code).toBe(`dropbox.${rule}`);
    expect(err.message).toMatch(new RegExp(`^\\[stagecoach\\] \\[dbx\\] ${rule}: `));
  });

  it('lists the same ignored names as the emulator refuses', () => {
    for (const name of DISALLOWED_NAMES) expect(nameProblem(name), name).toBe('disallowed_name');
  });

  it('every mapped name is one the emulator accepts', () => {
    const inputs = [...mapped.map((m) => m[1]), ...HOSTILE_NAMES.flatMap((n) => n.split('/')), 'a\\', 'tail\u007F', 'x \t '];
    for (const input of inputs) expect(nameProblem(mapDropboxName(input)), JSON.stringify(input)).toBeNull();
  });
});

describe('mapDropboxPath', () => {
  it('normalises to NFC first, so both spellings map alike', () => {
    const nfd = 'Cafe\u0301/Zu\u0308rich.txt';
    expect(mapDropboxPath(nfd)).toEqual(['Caf\u00e9', 'Z\u00fcrich.txt']);
    expect(mapDropboxPath(nfd.normalize('NFC'))).toEqual(mapDropboxPath(nfd));
  });

  it('maps every segment', () => {
    expect(mapDropboxPath(' spaced folder /inner file.txt')).toEqual([' spaced folder\u2420', 'inner file.txt']);
  });

  it.each([
    ['', 'empty'],
    ['/abs/path', 'absolute'],
    ['a//b', 'empty-segment'],
    ['a/', 'empty-segment'],
    ['a/../b', 'dot-segment'],
    ['photos/Thumbs.db', 'disallowed-name'],
  ])('refuses %j (%s)', (input, rule) => {
    expect(refusal(() => mapDropboxPath(input)).code).toBe(`dropbox.${rule}`);
  });

  it('dropboxPath joins segments as an API path; none is the root', () => {
    expect(dropboxPath(['a', 'b c'])).toBe('/a/b c');
    expect(dropboxPath([])).toBe('');
  });
});
