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
    await pause(waitMs, signal);
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

/**
 * A TokenBucket shared by every daemon on one journal: `take` spends from the journal's bucket
 * (`take` of the store: one round trip) and waits for the debt it leaves, so the daemons together
 * keep to `perSecond`. Burst as TokenBucket's.
 */
export class SharedTokenBucket extends TokenBucket {
  readonly #burst: number;
  constructor(
    /** Spends n from the journal's bucket; resolves to the milliseconds to wait (store.takeTokens). */
    private readonly spend: (perSecond: number, burst: number, n: number) => Promise<number>,
    private readonly rate: number,
    burst?: number,
  ) {
    super(rate, burst);
    this.#burst = burst ?? rate;
  }

  override async take(n: number, signal?: AbortSignal): Promise<void> {
    const waitMs = await this.spend(this.rate, this.#burst, n);
    if (waitMs <= 0) return;
    await pause(waitMs, signal);
  }
}

/** Waits `ms`; an abort rejects at once with the signal's own reason. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
