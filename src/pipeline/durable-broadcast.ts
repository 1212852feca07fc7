import type { Dispatch, Dispatcher, SubId } from '../stage/dispatcher.js';

/**
 * The Archiver's dispatcher: a *durable* broadcast. Every file is journaled once with a pending
 * delivery per target; each subscriber (one uploader per target, its SubId the target id) is
 * served from its own pending deliveries, under its own demand, at its own pace. So unlike
 * GenStage's BroadcastDispatcher nothing is paced by the slowest subscriber and a subscriber
 * that restarts misses nothing: its backlog is on disk, not here.
 *
 * The events dispatched are deliveries the Archiver has just leased from the store for a
 * subscriber, never more than that subscriber's demand. Demand is not forwarded upstream (the
 * Archiver's intake from the watcher has its own subscription) and `available()` is unbounded.
 * A leased delivery whose subscriber left before it could be sent is an *orphan*: it is not a
 * leftover to buffer (the subscriber's successor is served from the store), the Archiver takes
 * orphans with `takeOrphans()` and puts them back to pending. The Archiver may lease more than
 * the demand in one transaction and `hold` the rest here for the subscriber; what is held when it
 * leaves goes back to pending at once, through the `release` callback.
 */
export class DurableBroadcastDispatcher<E extends { target: string }> implements Dispatcher<E> {
  private readonly demand = new Map<SubId, number>();
  private orphans: E[] = [];
  /** Leased ahead of a subscriber's demand, oldest first (see ArchiverOptions.leaseAhead). */
  private readonly held = new Map<SubId, E[]>();

  /**
   * `release`: called at once with what was held for a subscriber that leaves (an uploader that
   * stops, crashes or parks): those deliveries go back to pending before anything else can lease
   * them for its successor.
   */
  constructor(private readonly release: (events: E[]) => void = () => undefined) {}

  subscribe(sub: SubId): number {
    this.demand.set(sub, 0);
    return 0;
  }

  cancel(sub: SubId): number {
    this.demand.delete(sub);
    const held = this.held.get(sub);
    this.held.delete(sub);
    if (held !== undefined) this.release(held);
    return 0;
  }

  /** Deliveries leased past `sub`'s demand, held to hand out before leasing again (orphans if it left). */
  hold(sub: SubId, events: readonly E[]): void {
    if (events.length === 0) return;
    if (!this.demand.has(sub)) {
      this.orphans.push(...events);
      return;
    }
    const held = this.held.get(sub);
    if (held) held.push(...events);
    else this.held.set(sub, [...events]);
  }

  /** Up to `n` of the deliveries held for `sub`, taken out, oldest first. */
  takeHeld(sub: SubId, n: number): E[] {
    const held = this.held.get(sub);
    if (held === undefined || n <= 0) return [];
    const out = held.splice(0, n);
    if (held.length === 0) this.held.delete(sub);
    return out;
  }

  ask(sub: SubId, n: number): number {
    const d = this.demand.get(sub);
    if (d !== undefined) this.demand.set(sub, d + n);
    return 0;
  }

  available(): number {
    return Number.POSITIVE_INFINITY;
  }

  demandOf(sub: SubId): number {
    return this.demand.get(sub) ?? 0;
  }

  /** Subscribers with unmet demand. */
  hungry(): SubId[] {
    return [...this.demand].filter(([, d]) => d > 0).map(([s]) => s);
  }

  dispatch(events: E[]): Dispatch<E> {
    const bySub = new Map<SubId, E[]>();
    for (const e of events) {
      const d = this.demand.get(e.target) ?? 0;
      if (d <= 0) {
        this.orphans.push(e);
        continue;
      }
      this.demand.set(e.target, d - 1);
      const list = bySub.get(e.target);
      if (list) list.push(e);
      else bySub.set(e.target, [e]);
    }
    return { sends: [...bySub], leftovers: [] };
  }

  takeOrphans(): E[] {
    const o = this.orphans;
    this.orphans = [];
    return o;
  }
}
