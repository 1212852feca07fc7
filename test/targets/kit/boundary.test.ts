import { describe, expect, it } from 'vitest';
import { multipartBoundary } from '../../../src/targets/kit/boundary.js';

describe('multipartBoundary', () => {
  it('never the same twice, and never one the contents hold', () => {
    const first = multipartBoundary('x-', []);
    expect(first).toMatch(/^x-[0-9a-f]{18}[0-9a-z]+$/);
    const part = first.slice(2, 20);
    const n = Number.parseInt(first.slice(20), 36);
    // The next two boundaries it would give are in the body: it steps past both.
    const body = Buffer.from(`a x-${part}${(n + 1).toString(36)} b x-${part}${(n + 2).toString(36)} c`);
    const next = multipartBoundary('x-', [Buffer.from('other'), body]);
    expect(next).toBe(`x-${part}${(n + 3).toString(36)}`);
    expect(body.includes(next)).toBe(false);
    expect(new Set(Array.from({ length: 100 }, () => multipartBoundary('x-', []))).size).toBe(100);
  });
});
