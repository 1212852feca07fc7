import { StagecoachError } from '../../errors.js';
import type { Dispatch, Dispatcher, SubId } from '../dispatcher.js';

/**
 * GenStage's DemandDispatcher: each event goes to exactly one subscriber, the one with the most
 * unmet demand (ties: the one that subscribed first), in batches as large as that demand.
 *
 * - `ask(sub, n)` returns `n`: every subscriber's demand goes upstream in full.
 * - `cancel(sub)` returns minus the subscriber's unmet demand: upstream no longer owes it.
 * - `available()` is the sum of the unmet demands.
 */
export class DemandDispatcher<E> implements Dispatcher<E> {
  // A Map keeps subscription order, which breaks ties.
  readonly #demand = new Map<SubId, number>();

  subscribe(sub: SubId): number {
    if (this.#demand.has(sub)) throw new StagecoachError('stage.duplicate-subscriber', `subscriber ${sub} is already subscribed`);
    this.#demand.set(sub, 0);
    return 0;
  }

  cancel(sub: SubId): number {
    const unmet = this.#demand.get(sub);
    if (unmet === undefined) return 0;
    this.#demand.delete(sub);
    return -unmet;
  }

  ask(sub: SubId, n: number): number {
    const current = this.#demand.get(sub);
    if (current === undefined) throw new StagecoachError('stage.unknown-subscriber', `subscriber ${sub} is not subscribed`);
    assertDemand(n);
    this.#demand.set(sub, current + n);
    return n;
  }

  available(): number {
    let sum = 0;
    for (const d of this.#demand.values()) sum += d;
    return sum;
  }

  dispatch(events: E[]): Dispatch<E> {
    const sends: Array<[SubId, E[]]> = [];
    let at = 0;
    while (at < events.length) {
      let best: SubId | undefined;
      let most = 0;
      for (const [sub, d] of this.#demand) {
        if (d > most) {
          best = sub;
          most = d;
        }
      }
      if (best === undefined) break;
      // A subscriber is chosen at most once per dispatch: it either gets all it asked or all that is left.
      const n = Math.min(most, events.length - at);
      sends.push([best, events.slice(at, at + n)]);
      this.#demand.set(best, most - n);
      at += n;
    }
    return { sends, leftovers: events.slice(at) };
  }

  demandOf(sub: SubId): number {
    return this.#demand.get(sub) ?? 0;
  }
}

/** Throws unless `n` is a whole number of events >= 0. */
export function assertDemand(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new StagecoachError('stage.invalid-demand', `Expected demand to be an integer >= 0, got ${String(n)}`);
  }
}
