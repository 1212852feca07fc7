/** A subscriber's id, unique within its producer (a target id for the uploaders). */
export type SubId = string;

/** What a dispatcher decided: events to send to each subscriber, and events to keep buffered. */
export interface Dispatch<E> {
  sends: Array<[SubId, E[]]>;
  leftovers: E[];
}

/**
 * How a producer hands events to its subscribers. A dispatcher is a pure state machine: it
 * holds each subscriber's unmet demand and decides; it never does I/O and never sends itself.
 *
 * Guarantees every dispatcher MUST keep:
 * - it never assigns a subscriber more events than that subscriber asked for, cumulatively;
 * - it never drops an event: what it cannot assign comes back in `leftovers`, in order;
 * - `ask` returns the demand the producer should add to its own (GenStage's counter).
 */
export interface Dispatcher<E> {
  /** A new subscriber, with no demand yet. Returns demand to add upstream (usually 0). */
  subscribe(sub: SubId): number;
  /** A subscriber left; its unmet demand is forgotten. Returns demand to add upstream (may be < 0). */
  cancel(sub: SubId): number;
  /** The subscriber asks n more. Returns the demand to add upstream. */
  ask(sub: SubId, n: number): number;
  /** How many events could be assigned right now. */
  available(): number;
  /** Assigns events to subscribers against their demand. */
  dispatch(events: E[]): Dispatch<E>;
  /** The subscriber's unmet demand (0 for unknown subscribers). */
  demandOf(sub: SubId): number;
}
