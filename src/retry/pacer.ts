import { setTimeout as delay } from 'node:timers/promises';
import pRetry, { AbortError } from 'p-retry';
import type { Classified } from '../targets/target.js';
import { type DelayPolicy, retryDelay } from './delay.js';

export interface RetryOptions extends DelayPolicy {
  /** Retries after the first attempt. */
  retries: number;
  classify(error: unknown): Classified;
  signal?: AbortSignal;
  /**
   * Aborting it stops the wait between attempts, not an attempt under way (shutdown: an upload
   * only sleeping in back-off need not hold the stop up); `withRetry` then rejects with its reason.
   */
  waitSignal?: AbortSignal;
  /** Told of every failed attempt that will be retried, with the wait chosen. */
  onRetry?(info: { attempt: number; error: unknown; classified: Classified; delayMs: number }): void | Promise<void>;
  random?: () => number;
  /**
   * The wait between attempts; an abort of `signal` rejects it. Default: node:timers/promises'
   * `setTimeout` (tests pass one on the global timers, which vitest's fake timers govern and the
   * promise API, bound at import, escapes).
   */
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The last error of an operation whose retries ran out, with its classification. */
export class RetriesExhaustedError extends Error {
  constructor(
    readonly classified: Classified,
    readonly attempts: number,
    options: { cause: unknown },
  ) {
    super(`gave up after ${attempts} attempts: ${classified.reason}`, options);
    this.name = 'RetriesExhaustedError';
  }
}

/** Waits `ms`; an abort of `signal` rejects with the signal's own reason (not Node's AbortError). */
async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}

/**
 * Runs `fn` under the project's one retry policy (p-retry does the counting): errors classified
 * `retry` are retried after the provider's Retry-After when given, else after jittered exponential
 * backoff; `fail-item` and `fatal` errors are thrown at once, unchanged. When the retries run out
 * the last error is thrown wrapped in RetriesExhaustedError. An aborted signal stops the waiting.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  // The first attempt runs without p-retry, which sets up (copies and checks its options, reads
  // the clock) on every call: most operations succeed at once (a 10,000-file backfill makes
  // 10,000 calls). A first attempt that fails is handed to p-retry as its attempt 1, so the policy
  // from there on is exactly p-retry's.
  let first: { error: unknown } | null = null;
  if (!opts.signal?.aborted) {
    try {
      const result = await fn(1);
      // As p-retry does: a signal aborted while the attempt ran rejects with its reason.
      opts.signal?.throwIfAborted();
      return result;
    } catch (error) {
      // Aborted: the attempt's own error, as below.
      if (opts.signal?.aborted) throw error instanceof Error ? error : new Error(String(error), { cause: error });
      first = { error };
    }
  }
  let last: Classified | null = null;
  let attempts = 0;
  try {
    return await pRetry(
      async (attempt) => {
        attempts = attempt;
        try {
          if (attempt === 1 && first) throw first.error;
          return await fn(attempt);
        } catch (error) {
          // p-retry only handles Error instances; wrap anything else so the policy still applies.
          const err = error instanceof Error ? error : new Error(String(error), { cause: error });
          if (opts.signal?.aborted) throw new AbortError(err);
          const c = opts.classify(error);
          last = c;
          if (c.kind !== 'retry') throw new AbortError(err);
          throw err;
        }
      },
      {
        retries: opts.retries,
        minTimeout: 0,
        factor: 1,
        signal: opts.signal,
        // The wait happens here so that Retry-After can set it; p-retry's own timeout is 0.
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          if (retriesLeft <= 0) return;
          const c = last ?? opts.classify(error);
          const delayMs = retryDelay(attemptNumber, opts, c.retryAfterMs, opts.random);
          await opts.onRetry?.({ attempt: attemptNumber, error, classified: c, delayMs });
          await (opts.sleep ?? sleep)(delayMs, opts.waitSignal && opts.signal ? AbortSignal.any([opts.signal, opts.waitSignal]) : (opts.waitSignal ?? opts.signal));
        },
      },
    );
  } catch (error) {
    if (error instanceof AbortError) throw error.originalError;
    const l = last as Classified | null;
    if (l && l.kind === 'retry' && !opts.signal?.aborted && !opts.waitSignal?.aborted) throw new RetriesExhaustedError(l, attempts, { cause: error });
    throw error;
  }
}
