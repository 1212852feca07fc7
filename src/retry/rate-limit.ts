import { Transform, type TransformCallback } from 'node:stream';

/**
 * A token bucket that may go into debt: `take(n)` spends n tokens at once and resolves when
 * the balance is back to zero or above, so a 1 MiB chunk on a 100 KB/s budget waits ~10 s
 * instead of being refused. Tokens refill at `perSecond`, up to `burst` (default one second's
 * worth). Waits are timers, so fake timers drive it in tests.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly burst: number;

  constructor(
    private readonly perSecond: number,
    burst?: number,
  ) {
    if (!(perSecond > 0)) throw new RangeError(`Expected \`perSecond\` to be > 0, got ${perSecond}`);
    this.burst = burst ?? perSecond;
    this.tokens = this.burst;
    this.last = Date.now();
  }

  /** Milliseconds `take(n)` would wait now (0 when n tokens are there). Pure apart from the refill. */
  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
  }

  async take(n: number, signal?: AbortSignal): Promise<void> {
    this.refill();
    this.tokens -= n;
    if (this.tokens >= 0) return;
    const waitMs = Math.ceil((-this.tokens / this.perSecond) * 1000);
    await new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, waitMs);
      const onAbort = () => {
        clearTimeout(t);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** A pass-through stream that spends a token per byte before handing each chunk on. */
export function throttleStream(bucket: TokenBucket, signal?: AbortSignal): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      bucket.take(chunk.length, signal).then(
        () => cb(null, chunk),
        (e: unknown) => cb(e as Error),
      );
    },
  });
}
