import { describe, expect, it } from 'vitest';
import { escapeName, isUtf8Name, unescapeName } from '../../src/archive/raw-name.js';

describe('names that are not valid UTF-8', () => {
  it.each([
    ['Latin-1 café', Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]), 'caf%E9.txt'],
    ['a percent sign beside a bad byte', Buffer.concat([Buffer.from('100% '), Buffer.from([0xff])]), '100%25 %FF'],
    ['valid UTF-8 kept around a bad byte', Buffer.concat([Buffer.from('é☃'), Buffer.from([0xc3]), Buffer.from('😀')]), 'é☃%C3😀'],
    ['an overlong form', Buffer.from([0xc0, 0xaf]), '%C0%AF'],
    ['a UTF-16 surrogate in UTF-8 form', Buffer.from([0xed, 0xa0, 0x80]), '%ED%A0%80'],
    ['a truncated sequence at the end', Buffer.from([0x61, 0xe2, 0x98]), 'a%E2%98'],
  ])('%s: escaped deterministically and reversibly', (_, raw, escaped) => {
    expect(isUtf8Name(raw)).toBe(false);
    expect(escapeName(raw)).toBe(escaped);
    expect(unescapeName(escapeName(raw)).equals(raw)).toBe(true);
  });

  it('valid UTF-8 names are valid (never escaped by the walk)', () => {
    for (const n of ['café.txt', 'cafe\u0301.txt', ' lead and trail ', '? < > " \'', '100%']) expect(isUtf8Name(Buffer.from(n))).toBe(true);
  });
});
