import { describe, expect, test } from 'vitest';
import { parseDuration, parseSize } from '../../src/config/units.js';

describe('parseDuration', () => {
  test.each([
    [0, 0],
    [2000, 2000],
    ['2000', 2000],
    ['500ms', 500],
    ['2s', 2000],
    ['1.5s', 1500],
    [' 5 m ', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['0.0005s', 1],
  ])('%j is %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  test.each([[-1], [1.5], [Number.NaN], ['soon'], ['2 weeks'], ['1h30m'], ['-2s'], ['2S'], [''], ['s']])(
    '%j is not a duration',
    (input) => {
      expect(parseDuration(input)).toBeUndefined();
    },
  );
});

describe('parseSize', () => {
  test.each([
    [0, 0],
    [4096, 4096],
    ['4096', 4096],
    ['100B', 100],
    ['10KB', 10_000],
    ['10kb', 10_000],
    ['4 KiB', 4096],
    ['5 MiB', 5 * 1024 * 1024],
    ['10MB', 10_000_000],
    ['1GB', 1_000_000_000],
    ['1.5 GB', 1_500_000_000],
    ['2 GiB', 2 * 1024 ** 3],
    ['1 TiB', 1024 ** 4],
  ])('%j is %d bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  test.each([[-1], [0.5], ['ten'], ['10 parsecs'], ['10 K'], ['-4KB'], ['KB'], ['1e3'], ['9999999 TiB']])(
    '%j is not a size',
    (input) => {
      expect(parseSize(input)).toBeUndefined();
    },
  );
});
