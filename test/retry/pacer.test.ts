import { afterEach, describe, expect, it, vi } from 'vitest';
import { RetriesExhaustedError, withRetry } from '../../src/retry/pacer.js';
import type { Classified } from '../../src/targets/target.js';

class Flaky extends Error {
  constructor(readonly c: Classified) {
    super(c.reason);
  }
}
const classify = (e: unknown): Classified => (e instanceof Flaky ? e.c : { kind: 'fail-item', reason: String(e) });

afterEach(() => vi.useRealTimers());

/** withRetry's wait on the global timers, which vi.useFakeTimers() governs (node:timers/promises, bound at import, it does not). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });
}

describe('withRetry', () => {
  it('waits exactly the Retry-After the provider gave before retrying', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const p = withRetry(
      async () => {
        calls++;
        if (calls === 1) throw new Flaky({ kind: 'retry', retryAfterMs: 7000, reason: '429' });
        return 'ok';
      },
      { retries: 3, minDelayMs: 10, maxDelayMs: 100, classify, sleep },
    );
    await vi.advanceTimersByTimeAsync(6999);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(2);
    await expect(p).resolves.toBe('ok');
  });

  it('backs off exponentially without Retry-After and gives up after the retries', async () => {
    vi.useFakeTimers();
    const waits: number[] = [];
    let calls = 0;
    const p = withRetry(
      async () => {
        calls++;
        throw new Flaky({ kind: 'retry', reason: '503' });
      },
      { retries: 3, minDelayMs: 100, maxDelayMs: 1000, classify, sleep, random: () => 0.999999, onRetry: ({ delayMs }) => void waits.push(delayMs) },
    );
    const caught = p.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10_000);
    const err = await caught;
    expect(err).toBeInstanceOf(RetriesExhaustedError);
    expect((err as RetriesExhaustedError).attempts).toBe(4);
    expect(calls).toBe(4);
    expect(waits).toEqual([100, 200, 400]);
  });

  it('runs a first attempt that succeeds once, and one that fails is attempt 1 of the retries (fn is not called again for it)', async () => {
    const seen: number[] = [];
    const retries: Array<{ attempt: number; reason: string }> = [];
    await expect(withRetry(async (a) => (seen.push(a), 'once'), { retries: 3, minDelayMs: 0, maxDelayMs: 0, classify, sleep })).resolves.toBe('once');
    expect(seen).toEqual([1]);
    seen.length = 0;
    const r = await withRetry(
      async (a) => {
        seen.push(a);
        if (a < 3) throw new Flaky({ kind: 'retry', reason: `503 #${a}` });
        return 'third';
      },
      { retries: 3, minDelayMs: 0, maxDelayMs: 0, classify, sleep, onRetry: ({ attempt, classified }) => void retries.push({ attempt, reason: classified.reason }) },
    );
    expect(r).toBe('third');
    expect(seen).toEqual([1, 2, 3]);
    expect(retries).toEqual([
      { attempt: 1, reason: '503 #1' },
      { attempt: 2, reason: '503 #2' },
    ]);
  });

  it('a first attempt that fails after the signal aborted throws its own error, untried again', async () => {
    const ac = new AbortController();
    let calls = 0;
    const own = new Flaky({ kind: 'retry', reason: 'reset' });
    const p = withRetry(
      async () => {
        calls++;
        ac.abort(new Error('shutdown'));
        throw own;
      },
      { retries: 3, minDelayMs: 0, maxDelayMs: 0, classify, sleep, signal: ac.signal },
    );
    await expect(p).rejects.toBe(own);
    expect(calls).toBe(1);
  });

  it('does not retry fail-item or fatal errors and throws them unchanged', async () => {
    for (const kind of ['fail-item', 'fatal'] as const) {
      let calls = 0;
      const e = new Flaky({ kind, reason: kind });
      await expect(
        withRetry(
          async () => {
            calls++;
            throw e;
          },
          { retries: 5, minDelayMs: 1, maxDelayMs: 1, classify, sleep },
        ),
      ).rejects.toBe(e);
      expect(calls).toBe(1);
    }
  });

  it('stops waiting when the signal aborts', async () => {
    vi.useFakeTimers();
    const ac = new AbortController();
    const p = withRetry(
      async () => {
        throw new Flaky({ kind: 'retry', retryAfterMs: 60_000, reason: '429' });
      },
      { retries: 5, minDelayMs: 1, maxDelayMs: 1, classify, sleep, signal: ac.signal },
    );
    const caught = p.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1000);
    ac.abort(new Error('shutdown'));
    await vi.advanceTimersByTimeAsync(1);
    expect(String(await caught)).toMatch(/shutdown/);
  });

  it('the default wait (node:timers/promises) ends with the signal\'s own reason when it aborts', async () => {
    const ac = new AbortController();
    let calls = 0;
    const p = withRetry(
      async () => {
        calls++;
        throw new Flaky({ kind: 'retry', retryAfterMs: 60_000, reason: '429' });
      },
      { retries: 5, minDelayMs: 1, maxDelayMs: 1, classify, signal: ac.signal, onRetry: () => void ac.abort(new Error('shutdown')) },
    );
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe('shutdown');
    expect(calls).toBe(1);
  });

  it('waitSignal ends a back-off wait at once, and leaves an attempt under way alone', async () => {
    vi.useFakeTimers();
    const stop = new AbortController();
    let calls = 0;
    let finishAttempt: () => void = () => undefined;
    const p = withRetry(
      async () => {
        calls++;
        if (calls === 1) throw new Flaky({ kind: 'retry', retryAfterMs: 60_000, reason: 'ECONNREFUSED' });
        await new Promise<void>((r) => (finishAttempt = r));
        return 'sent';
      },
      { retries: 5, minDelayMs: 1, maxDelayMs: 1, classify, sleep, waitSignal: stop.signal },
    );
    const caught = p.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1000);
    const reason = new Error('shutting down');
    stop.abort(reason);
    await vi.advanceTimersByTimeAsync(1);
    // Not RetriesExhaustedError: the caller puts the delivery back to pending.
    expect(await caught).toBe(reason);
    expect(calls).toBe(1);

    // An attempt already under way is not cut by it.
    const stop2 = new AbortController();
    let n = 0;
    const q = withRetry(
      async () => {
        n++;
        await new Promise<void>((r) => (finishAttempt = r));
        return 'sent';
      },
      { retries: 5, minDelayMs: 1, maxDelayMs: 1, classify, sleep, waitSignal: stop2.signal },
    );
    stop2.abort(new Error('shutting down'));
    finishAttempt();
    expect(await q).toBe('sent');
    expect(n).toBe(1);
  });
});
