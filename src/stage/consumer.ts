import type { SubId } from './dispatcher.js';
import { CTX, ENDS, INBOX, Stage, type Ends, type StageOptions } from './stage.js';
import { Inbox, type Link, type Sink, type Subscription } from './subscription.js';

export interface ConsumerOptions extends StageOptions {
  /**
   * Call `handleEvents` with one event at a time (all of a batch at once, concurrently), each
   * acknowledged when its own promise settles. Default false: one call per batch received.
   */
  perEvent?: boolean;
}

/**
 * A stage that handles events under demand, concurrently, like GenStage's ConsumerSupervisor.
 *
 * Callbacks:
 * - `handleEvents(events, from)` MUST be implemented. It is called as soon as a batch arrives,
 *   even while earlier batches are still being handled, so up to `maxDemand` events per
 *   subscription are in flight at once. The events are acknowledged when it settles; a throw or
 *   rejection crashes the stage (failures that belong to an item MUST be caught inside).
 * - `handleCancel(subscription, reason)` MAY be implemented: a subscription ended while running
 *   (`cancel`, or the producer's `shutdown` / `crash`).
 *
 * Guarantees: GenStage demand (docs/architecture.md §2.3): it first asks `maxDemand`, then, once
 * its credit (asked − acknowledged) falls to `minDemand`, asks `maxDemand − credit`; it never
 * holds more than it asked (over-delivery crashes it with `stage.over-delivery`).
 */
export abstract class Consumer<E> extends Stage implements Sink<E> {
  /** @internal */
  readonly [INBOX]: Inbox<E>;
  readonly #perEvent: boolean;

  constructor(options: ConsumerOptions) {
    super(options);
    this.#perEvent = options.perEvent ?? false;
    this[INBOX] = new Inbox<E>(
      this[CTX],
      (link, events) => this.#receive(link, events),
      (subscription, reason) => this.handleCancel?.(subscription, reason),
    );
  }

  /** The subscriptions still active. */
  get subscriptions(): Subscription[] {
    return [...this[INBOX].links];
  }

  protected abstract handleEvents(events: E[], from: SubId): void | Promise<void>;
  protected handleCancel?(subscription: Subscription, reason: string): void;

  /** @internal */
  protected [ENDS](): Ends {
    return { inbox: this[INBOX] };
  }

  #receive(link: Link<E>, events: E[]): void {
    const ctx = this[CTX];
    const inbox = this[INBOX];
    if (this.#perEvent) {
      for (const event of events) ctx.invoke(() => this.handleEvents([event], link.id), () => inbox.ack(link, 1));
    } else {
      ctx.invoke(() => this.handleEvents(events, link.id), () => inbox.ack(link, events.length));
    }
  }
}
