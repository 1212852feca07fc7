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
 * Implement `handleEvents(events, from)` (a rejection crashes the stage: per-item failures MUST be
 * caught inside); MAY implement `handleCancel`. The contract of each callback and GenStage's
 * demand, kept exactly: docs/architecture.md §2.2–2.3.
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
