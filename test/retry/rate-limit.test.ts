import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TokenBucket, throttleStream } from '../../src/retry/rate-limit.js';

afterEach(() => vi.useRealTimers());

describe('TokenBucket', () => {
  it('lets a burst through, then paces at the rate', async () => {
    vi.useFakeTimers();
    const b = new TokenBucket(2); // 2 per second, burst 2
    const done: number[] = [];
    for (let i = 0; i < 5; i++) void b.take(1).then(() => done.push(i));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toEqual([0, 1]);
    await vi.advanceTimersByTimeAsync(499);
    expect(done).toEqual([0, 1]);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toEqual([0, 1, 2]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(done).toEqual([0, 1, 2, 3, 4]);
  });

  it('a take larger than the burst goes into debt and waits it off', async () => {
    vi.useFakeTimers();
    const b = new TokenBucket(100); // 100 bytes/s
    let done = false;
    void b.take(100).then(() => void b.take(300).then(() => (done = true)));
    await vi.advanceTimersByTimeAsync(2999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
  });

  it('stops waiting when the signal aborts', async () => {
    vi.useFakeTimers();
    const b = new TokenBucket(1, 1);
    await b.take(1);
    const ac = new AbortController();
    const p = b.take(1, ac.signal).catch((e: unknown) => e);
    ac.abort(new Error('shutdown'));
    expect(String(await p)).toMatch(/shutdown/);
  });
});

describe('throttleStream', () => {
  it('passes every byte through, paced by the bucket', async () => {
    vi.useFakeTimers();
    const chunks = [Buffer.alloc(1000, 1), Buffer.alloc(1000, 2), Buffer.alloc(1000, 3)];
    const out: Buffer[] = [];
    const s = Readable.from(chunks).pipe(throttleStream(new TokenBucket(1000)));
    s.on('data', (c: Buffer) => out.push(c));
    const ended = new Promise((r) => s.on('end', r));
    await vi.advanceTimersByTimeAsync(10);
    expect(out.length).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(out.length).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    await ended;
    expect(Buffer.concat(out)).toEqual(Buffer.concat(chunks));
  });
});
