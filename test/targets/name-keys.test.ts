/**
 * Issue 13, item 2: each target's name comparison (`nameKey`), as its provider documents it:
 * Dropbox, Box and OneDrive are case-insensitive (PROVIDERS.md), every target stores NFC, OneDrive
 * maps characters it forbids to look-alikes, Drive and the local disk are case-sensitive.
 */
import { describe, expect, it } from 'vitest';
import { boxPathKey } from '../../src/targets/box/names.js';
import { dropboxPathKey } from '../../src/targets/dropbox/names.js';
import { drivePathKey } from '../../src/targets/gdrive/names.js';
import { localPathKey } from '../../src/targets/local/names.js';
import { oneDrivePathKey } from '../../src/targets/onedrive/names.js';

const same = (key: (p: string) => string, a: string, b: string) => key(a) === key(b);

describe('nameKey per provider', () => {
  const nfc = 'inbox/caf\u00e9.txt';
  const nfd = 'inbox/cafe\u0301.txt';
  it.each([
    ['local', localPathKey, false, false],
    ['gdrive', drivePathKey, false, false],
    ['dropbox', dropboxPathKey, true, false],
    ['box', boxPathKey, true, false],
    ['onedrive', oneDrivePathKey, true, true],
  ] as const)('%s: NFC = NFD; case-insensitive %s; look-alikes one name %s', (_id, key, caseless, lookalikes) => {
    expect(same(key, nfc, nfd)).toBe(true);
    expect(same(key, 'inbox/Case.txt', 'inbox/case.txt')).toBe(caseless);
    expect(same(key, 'inbox/a:b.txt', 'inbox/a\uff1ab.txt')).toBe(lookalikes);
    expect(same(key, 'x/same.txt', 'y/same.txt')).toBe(false);
  });

  it('never throws, even for a path the target refuses', () => {
    for (const key of [localPathKey, drivePathKey, dropboxPathKey, boxPathKey, oneDrivePathKey]) {
      expect(() => key('')).not.toThrow();
      expect(() => key('/abs/../CON')).not.toThrow();
    }
  });
});
