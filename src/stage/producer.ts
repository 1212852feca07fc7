import type { Dispatcher, SubId } from './dispatcher.js';
import { DemandDispatcher } from './dispatchers/demand.js';
import { CTX, ENDS, OUTBOX, Stage, type Ends, type StageOptions } from './stage.js';
import { Outbox, type Source } from './subscription.js';

export interface ProducerOptions<E> extends StageOptions {
  /** How events are shared among subscribers. Default: a new DemandDispatcher. One per producer. */
  dispatcher?: Dispatcher<E>;
}

/**
 * A stage that emits events against its subscribers' demand. Implement `handleDemand(n)`; MAY
 * implement `handleSubscriberDemand(sub, n)`; `emit` never drops an event. The contract of each
 * callback (MUST/MAY) and the guarantees: docs/architecture.md §2.2–2.3.
 */
export abstract class Producer<E> extends Stage implements Source<E> {
  /** @internal */
  readonly [OUTBOX]: Outbox<E>;

  constructor(options: ProducerOptions<E>) {
    super(options);
    this[OUTBOX] = new Outbox<E>(this[CTX], options.dispatcher ?? new DemandDispatcher<E>(), {
      demand: (n) => this.handleDemand(n),
      subscriberDemand: (sub, n) => this.handleSubscriberDemand?.(sub, n),
      demandChanged: () => undefined,
    });
  }

  /** Demand asked of this producer (downstream of buffered events) and not yet met by `emit`. */
  get pendingDemand(): number {
    return this[OUTBOX].pendingDemand;
  }

  /** Events emitted that no subscriber could take yet. */
  get buffered(): number {
    return this[OUTBOX].buffered;
  }

  protected abstract handleDemand(n: number): void | Promise<void>;
  protected handleSubscriberDemand?(sub: SubId, n: number): void;

  /** Sends events to subscribers with demand at once; buffers the rest. Callable at any time. */
  protected emit(events: readonly E[]): void {
    this[OUTBOX].emit(events);
  }

  /** @internal */
  protected [ENDS](): Ends {
    return { outbox: this[OUTBOX] };
  }
}
