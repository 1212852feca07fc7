import { StagecoachError } from '../../errors.js';
import type { Dispatch, Dispatcher, SubId } from '../dispatcher.js';
import { assertDemand } from './demand.js';

/**
 * GenStage's BroadcastDispatcher: every event goes to every subscriber, paced by the slowest.
 *
 * - `available()` is the minimum unmet demand over the subscribers (0 with none): an event is
 *   sent only when every subscriber can take it, so none ever gets more than it asked.
 * - `subscribe`, `ask` and `cancel` each return the change of that minimum: what upstream should
 *   add (or, negative, take back). A new subscriber starts at 0, so the minimum drops to 0 and
 *   upstream gets nothing more until the newcomer asks. Cancelling the slowest can raise it.
 * - `dispatch` sends the first `min(available, events.length)` events to everyone; the rest are
 *   leftovers, in order.
 *
 * Unlike GenStage, a late subscriber is not sent events that were asked for before it came.
 */
export class BroadcastDispatcher<E> implements Dispatcher<E> {
  readonly #demand = new Map<SubId, number>();

  subscribe(sub: SubId): number {
    if (this.#demand.has(sub)) throw new StagecoachError('stage.duplicate-subscriber', `subscriber ${sub} is already subscribed`);
    const before = this.available();
    this.#demand.set(sub, 0);
    return this.available() - before;
  }

  cancel(sub: SubId): number {
    if (!this.#demand.has(sub)) return 0;
    const before = this.available();
    this.#demand.delete(sub);
    return this.available() - before;
  }

  ask(sub: SubId, n: number): number {
    const current = this.#demand.get(sub);
    if (current === undefined) throw new StagecoachError('stage.unknown-subscriber', `subscriber ${sub} is not subscribed`);
    assertDemand(n);
    const before = this.available();
    this.#demand.set(sub, current + n);
    return this.available() - before;
  }

  available(): number {
    if (this.#demand.size === 0) return 0;
    let min = Infinity;
    for (const d of this.#demand.values()) min = Math.min(min, d);
    return min;
  }

  dispatch(events: E[]): Dispatch<E> {
    const n = Math.min(this.available(), events.length);
    if (n === 0) return { sends: [], leftovers: events.slice() };
    const now = events.slice(0, n);
    const sends: Array<[SubId, E[]]> = [];
    for (const [sub, d] of this.#demand) {
      this.#demand.set(sub, d - n);
      // Each subscriber gets its own array: one must not see another's mutations.
      sends.push([sub, now.slice()]);
    }
    return { sends, leftovers: events.slice(n) };
  }

  demandOf(sub: SubId): number {
    return this.#demand.get(sub) ?? 0;
  }
}
