import type { Dispatcher, SubId } from './dispatcher.js';
import { DemandDispatcher } from './dispatchers/demand.js';
import { CTX, ENDS, OUTBOX, Stage, type Ends, type StageOptions } from './stage.js';
import { Outbox, type Source } from './subscription.js';

export interface ProducerOptions<E> extends StageOptions {
  /** How events are shared among subscribers. Default: a new DemandDispatcher. One per producer. */
  dispatcher?: Dispatcher<E>;
}

/**
 * A stage that emits events against its subscribers' demand.
 *
 * Callbacks:
 * - `handleDemand(n)` MUST be implemented. It is called with demand that the buffer could not
 *   serve, once per ask. It MAY emit at once, later, or never; the demand is kept (see
 *   `pendingDemand`) and met by whatever is emitted next. It MAY be async (a rejection crashes).
 * - `handleSubscriberDemand(sub, n)` MAY be implemented: told which subscriber asked `n`, after the
 *   dispatcher recorded it and the buffer was served, before `handleDemand`.
 *
 * Guarantees: `emit` never drops an event (what the dispatcher cannot assign is buffered, in
 * order, and served first when demand comes); no subscriber is sent more than it asked.
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
