/**
 * Pure delay calculators for the retry policy. The pacer (pacer.ts) owns the sleeping.
 */

export interface DelayPolicy {
  /** First backoff delay. */
  minDelayMs: number;
  /** No computed backoff exceeds this (a provider's Retry-After may: it is honoured as given). */
  maxDelayMs: number;
}

/**
 * The wait before retry number `attempt` (1 = the first retry). A provider's Retry-After wins when
 * given; otherwise exponential backoff with "full jitter": a uniform draw in [base/2, base], where
 * base = min(maxDelayMs, minDelayMs * 2^(attempt-1)). `random` returns [0, 1).
 */
export function retryDelay(attempt: number, policy: DelayPolicy, retryAfterMs: number | undefined, random: () => number = Math.random): number {
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs >= 0) return Math.ceil(retryAfterMs);
  const exp = Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (exp / 2) * random());
}

/**
 * Parses an HTTP Retry-After value: delta-seconds ("120", "1.5") or an HTTP-date. Returns
 * milliseconds from `now`, never negative, or undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = String(value).trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
