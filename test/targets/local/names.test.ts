import { describe, expect, test } from 'vitest';
import { TargetError } from '../../../src/errors.js';
import { isTempName, mapLocalPath, tempName, truncateUtf8, versionName, versionStamp } from '../../../src/targets/local/names.js';

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

describe('mapLocalPath', () => {
  test.each([
    ['a.txt', 'a.txt'],
    ['a/b/c/d.txt', 'a/b/c/d.txt'],
    ['Cafe\u0301.txt', 'Caf\u00e9.txt'],
    ['dir\u0308/x', 'dir\u0308'.normalize('NFC') + '/x'],
    [' lead/trail /x.txt ', ' lead/trail /x.txt '],
    ['q?<>"\':*|\\.txt', 'q?<>"\':*|\\.txt'],
    ['.hidden/..dots/...', '.hidden/..dots/...'],
    ['x'.repeat(255), 'x'.repeat(255)],
    ['日'.repeat(85), '日'.repeat(85)],
  ])('%j → %j', (input, out) => {
    expect(mapLocalPath(input)).toBe(out);
  });

  test.each([
    ['', 'empty'],
    ['/etc/passwd', 'absolute'],
    ['a\0b', 'nul'],
    ['a//b', 'empty-segment'],
    ['a/b/', 'empty-segment'],
    ['../escape', 'dot-segment'],
    ['a/../../escape', 'dot-segment'],
    ['a/./b', 'dot-segment'],
    ['..', 'dot-segment'],
    ['x'.repeat(256), 'name-too-long'],
    [`ok/${'日'.repeat(86)}`, 'name-too-long'],
  ])('%j is refused: %s', (input, rule) => {
    let err: unknown;
    try {
      mapLocalPath(input, 'arch');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TargetError);
    const te = err as TargetError;
    expect(te.kind).toBe('fail-item');
    expect(te.code).toBe(`local.${rule}`);
    expect(te.target).toBe('arch');
    expect(te.message).toContain(`[stagecoach] [arch] ${rule}: `);
  });

  test('the NFC form is measured: a name NFC makes short enough passes', () => {
    const nfd = 'e\u0301'.repeat(60); // 180 bytes NFD, 120 bytes NFC
    expect(mapLocalPath(nfd, 'l', 150)).toBe('\u00e9'.repeat(60));
  });
});

describe('truncateUtf8', () => {
  test.each([
    ['abc', 2, 'ab'],
    ['abc', 5, 'abc'],
    ['日本', 4, '日'],
    ['日本', 2, ''],
    ['a🚀b', 4, 'a'],
    ['a🚀b', 5, 'a🚀'],
  ])('%j to %i bytes → %j', (s, n, out) => {
    expect(truncateUtf8(s, n)).toBe(out);
  });
});

describe('tempName', () => {
  test('a dot, the name, the stagecoach tag, .tmp', () => {
    expect(tempName('photo.jpg', 'abc123')).toBe('.photo.jpg.stagecoach-abc123.tmp');
    expect(isTempName('.photo.jpg.stagecoach-abc123.tmp')).toBe(true);
    expect(isTempName('photo.jpg')).toBe(false);
  });
  test.each([
    ['x'.repeat(255)],
    ['日'.repeat(85)],
    ['🚀'.repeat(63) + 'abc'],
  ])('stays within 255 bytes for a %#th long name', (name) => {
    const t = tempName(name, 'a1b2c3d4e5f6');
    expect(bytes(t)).toBeLessThanOrEqual(255);
    expect(t.endsWith('.stagecoach-a1b2c3d4e5f6.tmp')).toBe(true);
    expect(isTempName(t)).toBe(true);
    // Never split a character: re-encoding loses nothing.
    expect(Buffer.from(t, 'utf8').toString('utf8')).toBe(t);
    expect(t).not.toContain('\ufffd');
  });
});

describe('versionName', () => {
  const when = new Date(Date.UTC(2024, 0, 2, 3, 4, 5));
  test('versionStamp is UTC yyyymmdd-hhmmss', () => {
    expect(versionStamp(when)).toBe('20240102-030405');
  });
  test.each([
    ['report.pdf', 0, 'report.20240102-030405.pdf'],
    ['report.pdf', 2, 'report.20240102-030405-2.pdf'],
    ['archive.tar.gz', 0, 'archive.tar.20240102-030405.gz'],
    ['README', 0, 'README.20240102-030405'],
    ['.bashrc', 0, '.bashrc.20240102-030405'],
    ['ends-with-dot.', 0, 'ends-with-dot..20240102-030405'],
  ])('%j attempt %i → %j', (name, attempt, out) => {
    expect(versionName(name, when, attempt)).toBe(out);
  });
  test('a 255-byte name is cut in the stem, keeping stamp and extension', () => {
    const name = `${'日'.repeat(83)}ab.jpg`;
    expect(bytes(name)).toBe(255);
    const v = versionName(name, when, 12);
    expect(bytes(v)).toBeLessThanOrEqual(255);
    expect(v.endsWith('.20240102-030405-12.jpg')).toBe(true);
    expect(v).not.toContain('\ufffd');
  });
});
