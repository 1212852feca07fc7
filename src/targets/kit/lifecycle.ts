import { TargetError } from '../../errors.js';

/**
 * The life of a target, the same in every provider: the calls in flight, and a close that waits
 * for them.
 */
export interface Lifecycle {
  /**
   * Runs one call of the target. Once `close` has begun it is refused with a TargetError fatal
   * `<provider>.closed`; otherwise it is tracked, so that `close` waits for it, and what it
   * throws goes through `wrap` (the provider's conversion to TargetError).
   */
  run<T>(fn: () => Promise<T>, wrap: (err: unknown) => unknown): Promise<T>;
  /**
   * An iteration (a listing) whose every step is a call as `run` makes it: refused once `close`
   * has begun, waited for by `close`, its errors through `wrap`. `make` runs at the first step.
   */
  iterate<T>(make: () => AsyncIterable<T>, wrap: (err: unknown) => unknown): AsyncIterable<T>;
  /** The error a call after `close` gets. */
  closedError(): TargetError;
  /** Idempotent (the promise is memoised): resolves once every call in flight has settled. */
  close(): Promise<void>;
}

export function createLifecycle(targetId: string, provider: string): Lifecycle {
  const inFlight = new Set<Promise<unknown>>();
  let closing: Promise<void> | null = null;
  const closedError = (): TargetError => new TargetError(targetId, 'fatal', 'closed: the target is closed', { code: `${provider}.closed` });
  function run<T>(fn: () => Promise<T>, wrap: (err: unknown) => unknown): Promise<T> {
    if (closing !== null) return Promise.reject(closedError());
    const p = (async () => fn())().catch((err: unknown) => {
      throw wrap(err);
    });
    inFlight.add(p);
    const untrack = (): void => void inFlight.delete(p);
    p.then(untrack, untrack);
    return p;
  }
  return {
    run,
    iterate<T>(make: () => AsyncIterable<T>, wrap: (err: unknown) => unknown): AsyncIterable<T> {
      return {
        [Symbol.asyncIterator](): AsyncIterator<T> {
          let it: AsyncIterator<T> | null = null;
          return {
            next: () =>
              run(() => {
                it ??= make()[Symbol.asyncIterator]();
                return it.next();
              }, wrap),
            return: async (): Promise<IteratorResult<T>> => {
              await it?.return?.();
              return { done: true, value: undefined };
            },
          };
        },
      };
    },
    closedError,
    close(): Promise<void> {
      closing ??= Promise.allSettled([...inFlight]).then(() => undefined);
      return closing;
    },
  };
}
