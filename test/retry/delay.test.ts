import { describe, expect, it } from 'vitest';
import { parseRetryAfter, retryDelay } from '../../src/retry/delay.js';

const policy = { minDelayMs: 1000, maxDelayMs: 8000 };

describe('retryDelay', () => {
  it.each([
    // attempt, random, retryAfter, expected
    [1, 0, undefined, 500],
    [1, 0.999999, undefined, 1000],
    [2, 0, undefined, 1000],
    [3, 0.5, undefined, 3000],
    [4, 1 - 1e-9, undefined, 8000],
    [9, 0, undefined, 4000], // capped at maxDelayMs before jitter
    [1, 0.5, 2500, 2500], // Retry-After wins
    [5, 0.5, 120_000, 120_000], // even above maxDelayMs: the provider said so
    [2, 0.5, 0, 0],
  ])('attempt %i random %f retryAfter %s -> %i ms', (attempt, random, retryAfter, expected) => {
    expect(retryDelay(attempt, policy, retryAfter, () => random)).toBe(expected);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-28T12:00:00Z');
  it.each([
    ['120', 120_000],
    ['0', 0],
    ['1.5', 1500],
    ['Sat, 28 Nov 2026 12:00:30 GMT', 30_000],
    ['Sat, 28 Nov 2026 11:00:00 GMT', 0],
    ['soon', undefined],
    ['', undefined],
    [null, undefined],
  ])('%s -> %s', (value, expected) => {
    expect(parseRetryAfter(value as string | null, now)).toBe(expected);
  });
});
